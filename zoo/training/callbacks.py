"""Keras callbacks for tracked training, the per-epoch checkpoint a killed training resumes
from, and how a training stops on SIGTERM or SIGINT."""

import contextlib
import json
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import keras
import mlflow


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `minutes` of wall-clock time have passed (0 = no budget).

    With a `schedule` (`WarmupCosineDecay`), it also fits the decay to the budget, so a
    budget-stopped run still finishes at its low learning rate: after the first
    `measure_after` steps of an attempt (compilation is over by then), it measures the step
    rate over every window of `measure_after` steps inside an epoch (the epoch ends'
    evaluations are not steps) and refits the decay to end at the step the budget allows (never
    later than planned) whenever that moves it by more than `tolerance`. A slow stretch (a busy
    machine, a first epoch of retracing) therefore no longer fixes a short schedule for the
    whole run: the next windows lengthen it again, with no jump in the learning rate.
    `reserve` is the fraction of the budget kept for evaluations at epoch ends.

    A resumed training (`restore`) counts the time and steps of the attempts before it.
    """

    def __init__(self, minutes, schedule=None, measure_after=150, reserve=0.08,
                 tolerance=0.02):
        super().__init__()
        self.seconds = minutes * 60.0
        self.schedule = schedule
        self.measure_after = measure_after
        self.reserve = reserve
        self.tolerance = tolerance
        self.start = None
        self.exhausted = False
        self.steps = 0            # optimizer steps, counting those of earlier attempts
        self.previous_seconds = 0.0
        self.first_step = 0       # `steps` when this attempt began
        self.mark = None          # (steps, time) at the start of the current rate window
        self.planned = None       # the decay's end before any refit
        self.reported = None      # the end last printed

    def restore(self, state):
        """Continue from `state()` of an earlier attempt."""
        self.steps = self.first_step = int(state.get("steps", 0))
        self.previous_seconds = float(state.get("elapsed_seconds", 0.0))
        self.exhausted = bool(state.get("exhausted", False))
        total = state.get("schedule_total_steps")
        if self.schedule is not None and total is not None:
            anchor = state.get("schedule_anchor") or self.schedule.state()[1:]
            self.schedule.set_state((float(total), *anchor))
        self.planned = state.get("schedule_planned_steps")

    def state(self):
        state = {"steps": self.steps, "elapsed_seconds": self.elapsed(),
                 "exhausted": self.exhausted}
        if self.schedule is not None:
            total, *anchor = self.schedule.state()
            state |= {"schedule_total_steps": total, "schedule_anchor": anchor,
                      "schedule_planned_steps": self.planned}
        return state

    def elapsed(self):
        """Training seconds so far, this attempt and the earlier ones."""
        current = time.monotonic() - self.start if self.start is not None else 0.0
        return self.previous_seconds + current

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()
        if self.schedule is not None and self.planned is None:
            self.planned = self.schedule.state()[0]

    def on_epoch_begin(self, epoch, logs=None):
        self.mark = None  # a rate window never spans an epoch end's evaluation

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        now = time.monotonic()
        if not self.seconds:
            return
        if self.schedule is not None and self.steps - self.first_step >= self.measure_after:
            if self.mark is None:
                self.mark = (self.steps, now)
            elif self.steps - self.mark[0] >= self.measure_after:
                rate = (self.steps - self.mark[0]) / max(now - self.mark[1], 1e-9)
                self.mark = (self.steps, now)
                self._fit_decay(rate)
        if self.elapsed() > self.seconds:
            self.exhausted = True
            self.model.stop_training = True

    def _fit_decay(self, rate):
        """End the decay where `rate` steps/s lets the budget reach (at most as planned)."""
        remaining = self.seconds * (1.0 - self.reserve) - self.elapsed()
        end = min(self.steps + max(remaining, 0.0) * rate, self.planned)
        current = self.schedule.state()[0]
        if abs(end - current) <= self.tolerance * current:
            return
        self.schedule.refit(self.steps, end)
        if self.reported is None or abs(end - self.reported) > 0.1 * self.reported:
            self.reported = end
            print(f"time budget: {rate:.2f} steps/s, cosine decay now ends at step {end:.0f} "
                  f"(planned {self.planned:.0f})", flush=True)


class Stopped(KeyboardInterrupt):
    """The training was stopped by a signal (`signum`): SIGTERM, or SIGINT (Ctrl-C).

    A KeyboardInterrupt, so that nothing that catches `Exception` (TensorFlow, Keras, MLflow)
    swallows it and the trainer's Ctrl-C path marks the run KILLED.
    """

    def __init__(self, signum):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_stop = {"signal": None, "deferred": 0}


@contextlib.contextmanager
def stop_on_signals():
    """SIGTERM and SIGINT raise `Stopped` in the main thread for the duration of the block.

    Raised from the Python handler at once: the interpreter runs it between two bytecodes of
    the main thread, i.e. after the current training step (Keras `fit` returns to Python every
    step), so a training stops within a step. A flag checked at batch end (`StopOnSignal`)
    backs it up where the exception got lost (raised inside a `__del__`, which Python only
    prints), and `signals_deferred` holds it back while a checkpoint is written. Outside the
    main thread (where Python delivers no signal) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _on_signal) for number in STOP_SIGNALS}
    _stop["signal"] = None
    try:
        yield
    finally:
        for number, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(number, handler)
        _stop["signal"] = None


def _on_signal(signum, frame):
    if _stop["signal"] is not None:
        return  # stopping already: let the run be marked KILLED and the lock released
    _stop["signal"] = signum
    if not _stop["deferred"]:
        raise Stopped(signum)


@contextlib.contextmanager
def signals_deferred():
    """A stop signal that arrives in the block raises `Stopped` when the block is done."""
    _stop["deferred"] += 1
    try:
        yield
    finally:
        _stop["deferred"] -= 1
    raise_if_stopped()


def raise_if_stopped():
    """Raise `Stopped` if a stop signal came and was not acted on."""
    if _stop["signal"] is not None and not _stop["deferred"]:
        raise Stopped(_stop["signal"])


class StopOnSignal(keras.callbacks.Callback):
    """Stops `fit` at the next batch end if a stop signal's exception got lost."""

    def on_train_batch_end(self, batch, logs=None):
        raise_if_stopped()


class RunCheckpoint:
    """The training state at the end of each epoch, in `directory`, written atomically.

    Each epoch goes to `epoch-NNNN/` (`state.weights.h5`: the model's weights and the
    optimizer's state, `state.json`: epoch, per-epoch metrics, best epoch, time budget),
    built under a temporary name and renamed into place; then `latest.json` (replaced
    atomically) points at it. A process killed at any moment leaves the previous complete
    checkpoint as the latest. Only the latest and the best epochs (lowest validation loss, or
    the `best_by` score) are kept: the best epoch's `state.weights.h5` holds the best weights.
    """

    POINTER = "latest.json"
    WEIGHTS = "state.weights.h5"
    STATE = "state.json"

    def __init__(self, directory):
        self.directory = Path(directory)

    def latest(self):
        """The newest complete checkpoint's state (with `path`), or None."""
        try:
            pointer = json.loads((self.directory / self.POINTER).read_text())
        except FileNotFoundError:
            return None
        path = self.directory / pointer["directory"]
        state = json.loads((path / self.STATE).read_text())
        state["path"] = str(path)
        return state

    def epoch_dir(self, epoch):
        return self.directory / f"epoch-{epoch:04d}"

    def best_weights(self, state=None):
        """Path of the best epoch's weights (None before the first checkpoint)."""
        state = state or self.latest()
        if not state or not state.get("best_epoch"):
            return None
        return self.epoch_dir(state["best_epoch"]) / self.WEIGHTS

    def save(self, model, state):
        # Atomic without this too; deferred so a stopped training leaves no half-written
        # temporary directory and its last epoch checkpointed.
        with signals_deferred():
            return self._save(model, state)

    def _save(self, model, state):
        epoch = int(state["epoch"])
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.epoch_dir(epoch)
        temporary = self.directory / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        model.save_weights(temporary / self.WEIGHTS)
        _write_synced(temporary / self.STATE, json.dumps(state, indent=1, default=float))
        _fsync_path(temporary / self.WEIGHTS)
        _fsync_path(temporary)
        if final.exists():  # left by an attempt killed before it moved the pointer
            shutil.rmtree(final)
        os.replace(temporary, final)
        _fsync_path(self.directory)
        pointer = self.directory / f".{self.POINTER}.tmp-{os.getpid()}"
        _write_synced(pointer, json.dumps({"directory": final.name, "epoch": epoch}))
        os.replace(pointer, self.directory / self.POINTER)
        _fsync_path(self.directory)
        keep = {final.name, f"epoch-{int(state.get('best_epoch') or 0):04d}"}
        for path in self.directory.iterdir():
            stale_epoch = path.name.startswith("epoch-") and path.name not in keep
            if stale_epoch or (path.name.startswith(".") and ".tmp-" in path.name):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        return final

    def restore(self, model):
        """Load the latest checkpoint's weights and optimizer state into the compiled `model`;
        return its state, or None when there is no checkpoint."""
        state = self.latest()
        if state is None:
            return None
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(Path(state["path"]) / self.WEIGHTS)
        return state


def _write_synced(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_path(path):
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class EpochTracker(keras.callbacks.Callback):
    """At each epoch end: task metric, learning rate, tokens/s; the training state checkpointed
    (`RunCheckpoint`, with this epoch's metrics), and only then the metrics → MLflow (step =
    epoch), so a resumed training neither loses nor repeats an epoch's metrics.

    Args:
        evaluate: callable `() -> dict` of task metrics on the validation set (e.g. BLEU).
        tokens_per_epoch: target tokens in one epoch, for throughput.
        checkpoint: a `RunCheckpoint` (or None: no checkpoints).
        time_budget: the `TimeBudget` callback (its state goes into the checkpoint).
        log_metrics: callable `(metrics, step)`; default `mlflow.log_metrics`.
        best_by: the epoch metric that picks the best epoch: `val_loss` (lowest) or a
            validation task score such as `val_rouge1` (highest).
    """

    def __init__(self, evaluate, tokens_per_epoch, checkpoint=None, time_budget=None,
                 log_metrics=None, best_by="val_loss"):
        super().__init__()
        self.evaluate = evaluate
        self.best_by = best_by
        self.tokens_per_epoch = tokens_per_epoch
        self.checkpoint = checkpoint
        self.time_budget = time_budget
        self.log_metrics = log_metrics or (
            lambda metrics, step: mlflow.log_metrics(metrics, step=step))
        self.best_value = None
        self.best_epoch = None
        self.history = []

    def restore(self, state):
        """Continue from a checkpoint's state."""
        self.history = list(state.get("history", []))
        self.best_epoch = state.get("best_epoch")
        # A run resumes with its own config, so its own `best_by`; checkpoints written before
        # that key ranked by the loss and stored it as `best_val_loss`.
        self.best_value = state.get("best_value", state.get("best_val_loss"))

    def is_better(self, value):
        """`value` of `best_by` beats the best so far: a lower loss, a higher task score."""
        if value is None or math.isnan(value):
            return False
        if self.best_value is None:
            return True
        return value < self.best_value if self.best_by == "val_loss" else value > self.best_value

    def state(self, epoch):
        state = {"epoch": epoch, "history": self.history, "best_epoch": self.best_epoch,
                 "best_by": self.best_by, "best_value": self.best_value}
        if self.time_budget is not None:
            state["time_budget"] = self.time_budget.state()
        return state

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.monotonic()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self.epoch_start
        metrics = {k: float(v) for k, v in (logs or {}).items() if k in ("loss", "val_loss")}
        learning_rate = self.model.optimizer.learning_rate
        metrics["learning_rate"] = float(keras.ops.convert_to_numpy(learning_rate))
        metrics["epoch_seconds"] = seconds
        # A budget-stopped epoch trained on part of the data: scale the token count by steps.
        fraction = 1.0
        if self.time_budget is not None and self.time_budget.exhausted and self.params:
            total = self.params.get("steps") or self.steps
            fraction = min(1.0, self.steps / max(total, 1))
        metrics["target_tokens_per_second"] = self.tokens_per_epoch * fraction / seconds
        metrics.update(self.evaluate())
        self.history.append({"epoch": epoch + 1, **metrics})
        if self.is_better(metrics.get(self.best_by)):
            self.best_value = metrics[self.best_by]
            self.best_epoch = epoch + 1
        if self.checkpoint is not None:
            self.checkpoint.save(self.model, self.state(epoch + 1))
        self.log_metrics(metrics, epoch + 1)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        print(f"epoch {epoch + 1}: {summary}", flush=True)


def save_weights_atomically(model, path):
    """A reader never sees a half-written checkpoint: write beside it, then rename."""
    temporary = f"{path}.tmp-{os.getpid()}.weights.h5"
    model.save_weights(temporary)
    os.replace(temporary, path)
