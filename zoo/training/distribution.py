"""Training on several devices or machines with `tf.distribute`: the `strategy` config key.

* `default`: one device (TensorFlow's default strategy).
* `mirrored`: `tf.distribute.MirroredStrategy`, one replica per local GPU (the CPU when none).
* `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`, one process per machine, the
  cluster read from `TF_CONFIG` (without it: a cluster of this process alone). Gradients are
  all-reduced every step, so every worker holds the same weights.

Batch and learning rate: `batch_size` is the global batch of one optimizer step, split evenly
among the replicas, so a config trains the same model on 1 or N workers. With
`per_replica_batch: true` it is each replica's batch instead (global = batch_size × replicas),
and `learning_rate_scaling` (`linear`: lr × replicas, Goyal et al. 2017; `sqrt`: lr × √replicas;
`none`) adapts the learning rate to that larger global batch. Warm-up and decay stay in steps.

Data: auto-sharded by data (`AutoShardPolicy.DATA`): every worker runs the whole input pipeline
and keeps its part of each global batch, so workers see distinct examples of the same batches.

Outputs: only the chief (task `chief`, else worker 0) logs to MLflow and writes checkpoints,
the `.keras` model and the registered export. Every other worker runs the same code against a
throwaway MLflow store and run directory in a temporary directory, removed when it finishes;
on `--resume` it reads the chief's checkpoint (the run directory must be on storage all
workers share).

Failures: a worker that dies is noticed by TensorFlow's coordination service (no heartbeat
for `heartbeat_timeout_seconds`, or at once when its connection drops mid-collective); the
collectives of the others are aborted, they raise `DistributionError`, the chief's run is
marked FAILED, and `zoo train --resume RUN_ID` continues from the last epoch checkpoint.
"""

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading

import tensorflow as tf

from zoo.config import ConfigError

# The distribution keys (strategy, per_replica_batch, learning_rate_scaling and the two
# timeouts), their defaults and checks are defined with every other option in zoo/options.py.

_COORDINATED_JOBS = ("chief", "worker")
_strategies = {}


class DistributionError(RuntimeError):
    """A worker was lost, or the workers disagree on what they train."""


def get_strategy(config):
    """The process's strategy for `config["strategy"]` (made once: a multi-worker strategy
    starts this task's gRPC server and must come before TensorFlow runs anything)."""
    name = config.get("strategy", "default")
    resolver = _resolver()
    tasks = _task_count(resolver.cluster_spec())
    if tasks > 1 and name != "multi_worker":
        raise ConfigError(f"TF_CONFIG describes a cluster of {tasks} tasks but key 'strategy' is "
                          f"{name!r}: set strategy=multi_worker, or unset TF_CONFIG")
    if name == "default":
        return tf.distribute.get_strategy()
    if name not in _strategies:
        if name == "mirrored":
            _strategies[name] = _KerasMirroredStrategy()
        else:
            _strategies[name] = _multi_worker(config, resolver)
    return _strategies[name]


def _resolver():
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    try:  # TF_CONFIG is read lazily
        resolver.cluster_spec()
        resolver.task_type  # noqa: B018
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"TF_CONFIG is not valid: {error}") from None
    return resolver


def _task_count(cluster_spec):
    return sum(cluster_spec.num_tasks(job) for job in _COORDINATED_JOBS
               if job in cluster_spec.jobs)


def _multi_worker(config, resolver):
    cluster_spec = resolver.cluster_spec()
    unsupported = sorted(set(cluster_spec.jobs) - set(_COORDINATED_JOBS))
    if unsupported:
        raise ConfigError(f"TF_CONFIG: strategy=multi_worker takes 'chief' and 'worker' tasks, "
                          f"not {', '.join(map(repr, unsupported))}")
    if _task_count(cluster_spec) > 1:
        _configure_failure_detection(cluster_spec, config["heartbeat_timeout_seconds"])
    with _startup_deadline(config["cluster_timeout_seconds"], resolver), _keep_sigterm():
        try:
            return _KerasMultiWorkerStrategy(cluster_resolver=resolver)
        except RuntimeError as error:
            raise DistributionError(
                "strategy=multi_worker must be set up before TensorFlow runs anything in the "
                f"process ({error}); start the training in a fresh process (zoo train, "
                "zoo cluster-local)") from error


@contextlib.contextmanager
def _keep_sigterm():
    """The process's SIGTERM handler as it was before the block.

    With a coordination service (a cluster of several tasks) TensorFlow installs its own C++
    SIGTERM handler (a preemption notifier this trainer does not use), which would swallow
    the signal: without this, neither the trainer's stop (run marked KILLED) nor the default
    termination would happen.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _configure_failure_detection(cluster_spec, heartbeat_seconds):
    """The coordination service MultiWorkerMirroredStrategy would start itself, with our
    heartbeat timeout: a task silent that long is declared dead and every collective aborted.

    `configure_coordination_service` is the eager context's (internal) method the strategy
    calls; the strategy keeps a service configured before it is made.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    jobs = [job for job in _COORDINATED_JOBS if job in cluster_spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{jobs[0]}/replica:0/task:0",
        heartbeat_timeout_in_ms=int(heartbeat_seconds * 1000),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(
            name=job, num_tasks=cluster_spec.num_tasks(job)) for job in jobs])


# Run by a helper process: the strategy's wait holds the GIL in C++, so no Python thread or
# signal handler of the waiting process runs (and TensorFlow catches SIGTERM).
_WATCHDOG = """
import os, select, signal, sys
pid, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], seconds)[0]:  # our stdin closes when pid is done
    sys.stderr.write(message + "\\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
"""


@contextlib.contextmanager
def _startup_deadline(seconds, resolver):
    """The strategy waits for every task of TF_CONFIG without a limit: a helper process kills
    this one after `seconds` (nothing is tracked yet) unless the cluster formed before."""
    message = (f"zoo train: error: strategy=multi_worker: the cluster did not form within "
               f"cluster_timeout_seconds={seconds:g} (this is task {resolver.task_type}:"
               f"{resolver.task_id} of {_task_count(resolver.cluster_spec())}); start every task "
               "of TF_CONFIG and check that they reach each other's addresses")
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds),
                                 message], stdin=subprocess.PIPE)
    try:
        yield
    finally:
        watchdog.stdin.close()
        watchdog.wait()


class _KerasReduce:
    """`strategy.reduce` as Keras 3's `fit` and `evaluate` call it.

    Keras 3.15 reduces, before it builds the model, a whole `(inputs, targets)` batch only to
    read its shapes: MultiWorkerMirroredStrategy rejects the nested structure and
    MirroredStrategy fails when the batch split unevenly (a partial validation batch). It also
    reduces each replica's scalar metrics with `axis=0`, which MultiWorkerMirroredStrategy
    rejects (keras-team/keras#20585, tensorflow/tensorflow#72388). Here the first gets this
    replica's own batch (no collective: shapes are all Keras reads), the second the mean over
    the replicas.
    """

    def reduce(self, reduce_op, value, axis=None):
        if tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda v: self.experimental_local_results(v)[0], value)
        local = self.experimental_local_results(value)[0]
        if axis is not None and getattr(local, "shape", None) is not None and \
                local.shape.rank == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)


class _KerasMultiWorkerStrategy(_KerasReduce, tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy for Keras 3's `fit` (see `_KerasReduce`)."""


class _KerasMirroredStrategy(_KerasReduce, tf.distribute.MirroredStrategy):
    """MirroredStrategy for Keras 3's `fit` (see `_KerasReduce`)."""


def worker_count(strategy):
    """Processes training together (1 unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return max(1, _task_count(resolver.cluster_spec())) if resolver is not None else 1


def worker_index(strategy):
    """This process's place in the cluster: 0 for the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or worker_count(strategy) == 1 or resolver.task_type == "chief":
        return 0
    return resolver.task_id + (1 if "chief" in resolver.cluster_spec().jobs else 0)


def is_chief(strategy):
    """Whether this process tracks the run and writes its outputs."""
    return worker_index(strategy) == 0


def is_chief_task():
    """`is_chief` from TF_CONFIG alone, before the strategy is made."""
    resolver = _resolver()
    cluster_spec = resolver.cluster_spec()
    if _task_count(cluster_spec) <= 1 or resolver.task_type == "chief":
        return True
    return "chief" not in cluster_spec.jobs and resolver.task_id == 0


def training_config(config, strategy):
    """`config` with the global `batch_size` and the (scaled) `learning_rate` one step uses."""
    replicas = strategy.num_replicas_in_sync
    growth = replicas if config.get("per_replica_batch", False) else 1
    batch_size = config["batch_size"] * growth
    if batch_size % replicas:
        raise ConfigError(f"key 'batch_size' ({batch_size}, the global batch) must split evenly "
                          f"among the {replicas} replicas")
    if config.get("jit_compile") and replicas > 1 and not tf.config.list_logical_devices("GPU"):
        raise ConfigError(f"key 'jit_compile': XLA cannot compile the all-reduce of {replicas} "
                          "replicas on CPUs (TensorFlow: collectives are not implemented for CPU "
                          "devices under XLA); set jit_compile: false (the exported serving core "
                          "is XLA-compiled either way)")
    scaling = config.get("learning_rate_scaling", "none")
    factor = {"none": 1.0, "linear": growth, "sqrt": growth ** 0.5}[scaling]
    return {**config, "batch_size": batch_size, "learning_rate": config["learning_rate"] * factor}


def distribute_data(prepared):
    """`PreparedData` whose datasets shard by data across workers.

    tf.data's default (AUTO) would try to shard by file first; these pipelines start from
    tensors. With DATA each worker keeps its replicas' slices of every global batch (after
    tf.distribute splits the batch), so workers train on distinct examples and bucketed batches
    keep one padded shape across workers.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataclasses.replace(prepared, train=prepared.train.with_options(options),
                               valid=prepared.valid.with_options(options))


