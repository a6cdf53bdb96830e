"""Keeping the workers of a multi-worker training together: they check that they train the
same thing, stop on the same step, and report a lost peer as one clear error."""

import contextlib
import hashlib
import json
import re

import keras
import numpy as np
import tensorflow as tf

from zoo.training.distribution import DistributionError, is_chief, worker_count, worker_index

_gathers = {}


def synchronize(strategy, run_id, model, **values):
    """Check that every worker trains the same thing — `model`'s weights (the chief's initial
    values are broadcast; a builder that re-draws them, or a worker that restored another
    checkpoint, would make replicas drift apart) and `values` (e.g. config, data hash,
    tokenizer, restored epoch) — and return the chief's run id (on the chief: `run_id`).

    Raises:
        DistributionError: naming the values that differ from the chief's.
    """
    if worker_count(strategy) < 2:
        return run_id
    values = {**values, "weights": weights_digest(model)}
    names = sorted(values)
    row = [_fingerprint(values[name]) for name in names]
    row += [float(ord(character)) for character in run_id.ljust(64)[:64]]
    table = gather(strategy, row)
    differing = [name for column, name in enumerate(names)
                 if np.any(table[:, column] != table[0, column])]
    if differing:
        mine = "this worker's" if not is_chief(strategy) else "some worker's"
        raise DistributionError(
            f"multi_worker: {mine} {', '.join(differing)} differ from the chief's: every worker "
            "must get the same config and data (and, to resume, see the chief's run directory: "
            "put --output-dir on storage all workers share)")
    return "".join(chr(int(code)) for code in table[0, len(names):]).rstrip()


def weights_digest(model):
    """SHA-256 (hex) of a model's weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _fingerprint(value):
    """48 bits of a value's hash, exact in a float64."""
    data = value if isinstance(value, bytes) else json.dumps(
        value, sort_keys=True, default=str).encode()
    return float(int.from_bytes(hashlib.sha256(data).digest()[:6], "big"))


def gather(strategy, row):
    """`row` (floats) of every replica, stacked: `[replicas, len(row)]`, the chief's first."""
    if id(strategy) not in _gathers:  # one traced function: eager collectives cost ~0.3 s each
        _gathers[id(strategy)] = tf.function(lambda x: strategy.gather(x, axis=0))
    return _gathers[id(strategy)](tf.constant([row], tf.float64)).numpy()


def callbacks(strategy, budget):
    """The Keras callbacks multi-worker training adds after the trainer's own."""
    if worker_count(strategy) < 2:
        return []
    extra = [_WeightsDigest(strategy)]
    if budget.seconds:
        extra.insert(0, _AgreeOnBudget(strategy, budget))
    return extra


class _AgreeOnBudget(keras.callbacks.Callback):
    """Each worker's `TimeBudget` measures its own clock: after every step the workers stop
    if any of them ran out of time, and take the shortest cosine schedule any of them fitted
    to its budget (its end and anchor), so they stop on the same step with the same learning
    rate (a worker that
    stopped alone would leave the others waiting in a collective)."""

    def __init__(self, strategy, budget):
        super().__init__()
        self.strategy = strategy
        self.budget = budget

    def on_train_batch_end(self, batch, logs=None):
        schedule = self.budget.schedule
        fitted = list(schedule.state()) if schedule else [0.0, 0.0, 0.0]
        table = gather(self.strategy, [float(bool(self.model.stop_training)), *fitted])
        if table[:, 0].max() > 0:
            self.model.stop_training = True
            self.budget.exhausted = True
        shortest = table[int(table[:, 1].argmin()), 1:]
        if schedule is not None and list(shortest) != fitted:
            schedule.set_state(shortest)  # that worker's refit: its end and its anchor


class _WeightsDigest(keras.callbacks.Callback):
    """Prints a hash of the weights when training ends: equal on every worker when the
    replicas stayed in sync."""

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy

    def on_train_end(self, logs=None):
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        role = " (chief)" if is_chief(self.strategy) else ""
        print(f"worker {worker_index(self.strategy)} of {worker_count(self.strategy)}{role}: "
              f"weights sha256 {weights_digest(self.model)[:16]} after {steps} optimizer steps",
              flush=True)


_LOST_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.AbortedError, tf.errors.CancelledError)


@contextlib.contextmanager
def worker_failures(strategy, run_id):
    """Turns TensorFlow's collective errors after a lost worker into a `DistributionError`
    that names the lost task and the run to resume."""
    try:
        yield
    except _LOST_ERRORS as error:
        if worker_count(strategy) < 2:
            raise
        resolver = strategy.cluster_resolver
        me = f"/job:{resolver.task_type}/replica:0/task:{resolver.task_id}"
        tasks = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", str(error))) - {me})
        lost = ", ".join(tasks) if tasks else "a peer"
        # The first line, without the name of the collective op that noticed it.
        message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(error)).strip()
        cause = message.splitlines()[0] if message else type(error).__name__
        if is_chief(strategy):
            after = (f"MLflow run {run_id} is marked FAILED; once every worker is back, "
                     f"continue it with `zoo train --resume {run_id}` on each worker (or "
                     f"`zoo cluster-local {worker_count(strategy)} --resume {run_id}`)")
        else:
            run_id = run_id or "RUN_ID"
            after = (f"the chief's run can be continued with `zoo train --resume {run_id}` on "
                     "each worker")
        raise DistributionError(
            f"multi_worker training stopped: lost contact with {lost} ({type(error).__name__}: "
            f"{cause[:300]}); {after}") from error


def finish_together(strategy, run_id):
    """Workers leave together: the coordination service reports a worker whose process ended
    (its heartbeats stop) as crashed to those still working, e.g. the chief exporting."""
    if worker_count(strategy) > 1:
        with worker_failures(strategy, run_id):
            gather(strategy, [0.0])
