"""The time budget fits the cosine decay to the step rate it measures, window by window, and
refits it without a jump in the learning rate."""

import math
import types

import numpy as np
import pytest

from zoo.training import callbacks
from zoo.training.callbacks import TimeBudget
from zoo.training.schedules import WarmupCosineDecay


def reference(step, peak=1.0, warmup=10, total=100, final=0.05):
    """The schedule before any refit, in plain Python."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
    return peak * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))


def rate(schedule, step):
    return float(np.asarray(schedule(step)))


def test_schedule_is_warmup_then_cosine():
    schedule = WarmupCosineDecay(1.0, 10, 100)
    for step in (0, 5, 9, 10, 40, 99, 100, 150):
        assert rate(schedule, step) == pytest.approx(reference(step), rel=1e-5)


def test_refit_moves_the_end_without_a_jump():
    schedule = WarmupCosineDecay(1.0, 10, 100)
    before = rate(schedule, 50)
    schedule.refit(50, 200)  # later: the rest of the decay spread over 150 steps
    assert rate(schedule, 50) == pytest.approx(before, rel=1e-5)
    assert rate(schedule, 120) > reference(120)  # decays slower than before
    assert rate(schedule, 200) == pytest.approx(0.05, rel=1e-4)
    schedule.refit(120, 130)  # sooner again, still continuous
    continuous = rate(schedule, 120)
    assert rate(schedule, 121) < continuous and rate(schedule, 130) == pytest.approx(0.05)
    again = WarmupCosineDecay.from_config(schedule.get_config())
    assert rate(again, 125) == pytest.approx(rate(schedule, 125), rel=1e-6)
    during_warmup = WarmupCosineDecay(1.0, 10, 100)
    during_warmup.refit(5, 60)  # the decay has not begun: it just ends sooner
    assert rate(during_warmup, 35) == pytest.approx(reference(35, total=60), rel=1e-5)


def test_a_slow_stretch_shortens_the_decay_and_faster_windows_lengthen_it(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock["now"])
    schedule = WarmupCosineDecay(1.0, 10, 10_000)
    budget = TimeBudget(10.0, schedule, measure_after=50, reserve=0.0)  # 600 s
    budget.set_model(types.SimpleNamespace(stop_training=False))
    budget.on_train_begin()
    budget.on_epoch_begin(0)
    learning_rates = []

    def steps(count, seconds_each):
        for _ in range(count):
            if budget.model.stop_training:  # as Keras's fit loop does
                return
            clock["now"] += seconds_each
            learning_rates.append(rate(schedule, budget.steps))
            budget.on_train_batch_end(0)

    steps(150, 1.0)  # 1 step/s: 150 s gone, 450 s left → the decay must end near step 600
    assert schedule.state()[0] == pytest.approx(150 + 450 * 1.0, rel=0.01)
    steps(100, 0.1)  # 10 steps/s now: 440 s left → about 4,550 steps
    end = schedule.state()[0]
    assert 4000 < end < 10_000, end
    assert np.all(np.abs(np.diff(learning_rates[10:])) < 0.01)  # after the warm-up: no jump
    budget.on_epoch_begin(1)  # an evaluation between epochs: not part of any window
    clock["now"] += 100.0
    steps(60, 0.1)
    assert schedule.state()[0] < end  # 100 s less to spend, the same rate: a shorter decay
    steps(100_000, 0.1)
    assert budget.exhausted and budget.model.stop_training
    assert learning_rates[-1] == pytest.approx(0.05, abs=0.01)  # the decay ended in time
    state = budget.state()
    assert state["schedule_planned_steps"] == 10_000
    assert state["schedule_anchor"] == list(schedule.state()[1:])


def test_a_budget_that_fits_keeps_the_planned_decay(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: clock["now"])
    schedule = WarmupCosineDecay(1.0, 10, 500)
    budget = TimeBudget(10.0, schedule, measure_after=50)
    budget.set_model(types.SimpleNamespace(stop_training=False))
    budget.on_train_begin()
    budget.on_epoch_begin(0)
    for _ in range(400):
        clock["now"] += 0.1
        budget.on_train_batch_end(0)
    assert schedule.state() == (500.0, 10.0, 0.0)
