"""`zoo train`: one MLflow-tracked training of a registered model."""

import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import mlflow
import tensorflow as tf
import yaml

from zoo import tracking
from zoo.config import ConfigError
from zoo.models import catalog
from zoo.tasks import get_task
from zoo.text import TOKENIZERS, tokenizer_from_bytes, train_tokenizer
from zoo.tracking import registry
from zoo.tracking.loading import load
from zoo.training import distribution, run_lock, worker_sync
from zoo.training.callbacks import (
    EpochTracker,
    RunCheckpoint,
    StopOnSignal,
    Stopped,
    TimeBudget,
    stop_on_signals,
)
from zoo.training.precision import training_precision
from zoo.training.schedules import WarmupCosineDecay
from zoo.training.tracked_run import tracked_run

RUNS_DIR = Path("runs")


@dataclasses.dataclass
class TrainingResult:
    run_id: str
    model: keras.Model
    config: dict
    metrics: dict
    model_path: Path
    history: list
    model_version: str | None = None  # the run's version of the registered model


def configure_threads(config):
    """Intra/inter-op threads from the config (0 = TensorFlow's default: one per core)."""
    try:
        if config.get("intra_op_threads"):
            tf.config.threading.set_intra_op_parallelism_threads(config["intra_op_threads"])
        if config.get("inter_op_threads"):
            tf.config.threading.set_inter_op_parallelism_threads(config["inter_op_threads"])
    except RuntimeError:
        pass  # the runtime is already initialised in this process; keep its setting


def train(config_or_name: str | os.PathLike | None = None,
          overrides: Mapping[str, Any] | None = None,
          output_dir: str | os.PathLike = RUNS_DIR, verbose: int = 1,
          resume: str | None = None) -> TrainingResult:
    """Train the model a config names; every step tracked in one MLflow run.

    Args:
        config_or_name: a registered model name or a YAML config path.
        overrides: dict of config keys to override.
        output_dir: local directory for the run directories (`<output_dir>/<run_id>/`: config,
            tokenizer, per-epoch checkpoints, the trained `.keras` model).
        resume: a run id: continue that (killed or failed) run from its last checkpoint, in
            the same MLflow run, with its own config and tokenizer (`config_or_name` and
            `overrides` must then be left out).

    SIGTERM or SIGINT (in the main thread) stops the training within a step: the run is marked
    KILLED, its last epoch checkpoint kept for `resume`, and `Stopped` raised. While it trains
    the run, the process holds its run directory's lock (`run_lock`).

    Returns:
        `TrainingResult`.

    Raises:
        run_lock.RunLockedError: (a ValueError) `resume` names a run another process holds.
        Stopped: a signal stopped the training.
    """
    if resume is not None:
        if config_or_name is not None or overrides:
            raise ValueError("resume: a resumed run keeps its own config; give no config "
                             "and no overrides")
    elif config_or_name is None:
        raise ValueError("train: give a config (a registered model name or a YAML path)")
    with stop_on_signals():
        if resume is not None:
            return resume_training(resume, output_dir, verbose)
        return _train_new(config_or_name, overrides, output_dir, verbose)


def _train_new(config_or_name, overrides, output_dir, verbose):
    config = catalog.resolve_config(config_or_name, overrides)
    configure_threads(config)
    strategy = distribution.get_strategy(config)  # before TensorFlow runs anything
    keras.utils.set_random_seed(config["seed"])
    tracking.configure()
    data = _read_data(config)

    # Only the chief tracks the run; other workers get a throwaway store and directory.
    with tracked_run(strategy, config, output_dir) as (run_id, run_dir):
        mlflow.set_tag("mlflow.runName", tracking.run_name(config, run_id[:8]))
        mlflow.set_tags(tracking.run_tags(config, data["hash"]) | {"zoo.run_dir": str(run_dir)})
        mlflow.log_params(tracking.flatten_params(config))
        run_dir.mkdir(parents=True, exist_ok=True)
        return _train_guarded(config, run_id, run_dir, data, verbose)


def resume_training(run_id, output_dir=RUNS_DIR, verbose=1):
    """Continue run `run_id` from its last checkpoint (see `train(resume=...)`).

    The run directory is `<output_dir>/<run_id>`, else the one the run's `zoo.run_dir` tag
    names. Its config and tokenizer come from there, else from the run's artifacts; without
    a checkpoint (killed in its first epoch) the run trains again from epoch 1.
    """
    tracking.configure()
    client = mlflow.MlflowClient()
    run_dir = _run_dir(_get_run(client, run_id), output_dir)
    chief = distribution.is_chief_task()
    # Before anything in the run directory is written or deleted: a second resumer of the
    # same run stops here. The other workers of a multi-worker run only read the chief's.
    with run_lock.hold(run_dir, run_id) if chief else contextlib.nullcontext():
        run = _get_run(client, run_id)  # its status now that nobody else can resume it
        if run.info.status == "FINISHED":
            raise ValueError(f"resume: run {run_id} ({run.info.run_name}) has already finished")
        if run.info.status == "RUNNING" and chief:
            print(f"resume: run {run_id} is RUNNING in MLflow but no live process holds it "
                  "(killed outright, e.g. out of memory): resuming it", flush=True)
        return _resume_held(client, run, run_dir, output_dir, verbose)


def _get_run(client, run_id):
    try:
        return client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise ValueError(f"resume: no run {run_id!r} in {tracking.tracking_uri()}") from None


def _run_dir(run, output_dir):
    """`<output_dir>/<run_id>`, else the directory the run's `zoo.run_dir` tag names."""
    run_dir = Path(output_dir).resolve() / run.info.run_id
    tagged = run.data.tags.get("zoo.run_dir")
    if not run_dir.is_dir() and tagged and Path(tagged).is_dir():
        run_dir = Path(tagged)
    return run_dir


def _resume_held(client, run, run_dir, output_dir, verbose):
    """`resume_training` once the run is this process's."""
    run_id = run.info.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    config = _restore_file(client, run_id, run_dir, "config.yaml")
    if config is None:
        raise ValueError(f"resume: run {run_id} has no config.yaml in {run_dir} nor among its "
                         "artifacts; it cannot be resumed")
    saved = yaml.safe_load(config.read_text())
    # Re-resolved so keys a builder gained since get their defaults; the run's values win.
    config = catalog.resolve_config(saved["model"],
                                    {k: v for k, v in saved.items() if k != "model"})
    configure_threads(config)
    strategy = distribution.get_strategy(config)
    # Seeding resets TensorFlow's eager context, which drops tf-text's SentencePiece resources:
    # the tokenizer must be made after it.
    keras.utils.set_random_seed(config["seed"])
    tokenizer_file = next(filter(None, (
        _restore_file(client, run_id, run_dir, f"tokenizer/{kind.file_name}")
        for kind in TOKENIZERS.values())), None)
    tokenizer = tokenizer_from_bytes(tokenizer_file.read_bytes()) if tokenizer_file else None
    data = _read_data(config)
    expected = run.data.tags.get("zoo.dataset_hash")
    if expected and expected != data["hash"]:
        raise ValueError(f"resume: the training data changed since run {run_id} started "
                         f"(content hash {data['hash']}, the run has {expected})")
    resumes = int(run.data.tags.get("zoo.resumes", "0")) + 1
    with tracked_run(strategy, config, output_dir,
                                  resume=(run_id, run_dir)) as (tracked_id, tracked_dir):
        mlflow.set_tag("zoo.resumes", str(resumes))
        return _train_guarded(config, tracked_id, tracked_dir, data, verbose,
                              tokenizer=tokenizer, resumed=True)


def _restore_file(client, run_id, run_dir, relative):
    """`run_dir/relative`, fetched from the run's artifacts when it is not there; or None."""
    path = run_dir / relative
    if path.is_file():
        return path
    with tempfile.TemporaryDirectory(prefix="zoo-") as scratch:
        try:
            local = client.download_artifacts(run_id, relative, scratch)
        except (mlflow.exceptions.MlflowException, OSError):
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local, path)
    return path


def _read_data(config):
    task = get_task(config["task"])
    train_examples = task.read_split(config, "train")
    return {"train": train_examples, "valid": task.read_split(config, "valid"),
            "hash": task.data_hash(train_examples)}


def _train_guarded(config, run_id, *args, **kwargs):
    """`_train_in_run`, the run marked FAILED (KILLED on a stop signal or Ctrl-C) if it
    raises."""
    # Staging for the run's artifacts (MLflow copies them into its store): removed however the
    # training ends, so repeated runs leave nothing in the system's temp directory.
    artifacts = Path(tempfile.mkdtemp(prefix="zoo-artifacts-"))
    try:
        return _train_in_run(config, run_id, *args, artifacts=artifacts, **kwargs)
    except KeyboardInterrupt as error:
        mlflow.end_run(status="KILLED")
        stopped = error.args[0] if isinstance(error, Stopped) else "interrupted"
        print(f"run {run_id} {stopped}, marked KILLED; its last epoch checkpoint is kept: "
              f"continue it with `zoo train --resume {run_id}`", file=sys.stderr, flush=True)
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    finally:
        shutil.rmtree(artifacts, ignore_errors=True)


def _train_in_run(config, run_id, run_dir, data, verbose, tokenizer=None, resumed=False,
                  artifacts=None):
    """One training inside its MLflow run: set up, restore or initialize, fit, then (on the
    chief) evaluate, save and register."""
    started = time.monotonic()
    task = get_task(config["task"])
    metric_log = tracking.MetricLog.for_run(run_id) if resumed else tracking.MetricLog(run_id)
    initial = load(config["init_from"]) if config.get("init_from") else None
    if tokenizer is None:  # fine-tuning keeps the trained model's vocabulary
        tokenizer = initial.tokenizer if initial is not None else train_tokenizer(
            config.get("tokenization", "subword"), task.tokenizer_texts(config, data["train"]),
            config["vocab_size"])
    _save_run_setup(config, tokenizer, run_dir)
    strategy = distribution.get_strategy(config)
    prepared, model, schedule = _compile(task, config, tokenizer, data, strategy, metric_log)
    loop = _TrainingLoop.start(task, config, model, schedule, prepared, data, run_dir,
                               metric_log)
    logged = {a.path for a in metric_log.client.list_artifacts(run_id)} if resumed else set()
    if not {"config.yaml", "tokenizer"} <= logged:  # a resumed run keeps what it logged
        _log_setup_artifacts(config, tokenizer, artifacts)
    run_id = loop.restore_or_initialize(strategy, run_id, tokenizer, data, resumed, initial)
    loop.fit(strategy, run_id, verbose)
    train_seconds = loop.budget.elapsed()
    if not distribution.is_chief(strategy):  # evaluation, model and export: the chief's
        return TrainingResult(run_id, model, config, {"train_seconds": train_seconds}, None,
                              loop.tracker.history)
    return _finish(task, config, loop, tokenizer, data, run_id, run_dir, artifacts,
                   train_seconds, started)


def _compile(task, config, tokenizer, data, strategy, metric_log):
    """The task's batches for this strategy and the compiled model, with its LR schedule."""
    step_config = distribution.training_config(config, strategy)  # global batch, scaled LR
    prepared = distribution.distribute_data(
        task.prepare(step_config, tokenizer, data["train"], data["valid"]))
    metric_log.log({"train_examples": prepared.examples})
    with strategy.scope():  # variables (model, optimizer, schedule) mirrored on every replica
        precision = training_precision(config)
        model = build_model(config, tokenizer, precision)
        schedule = WarmupCosineDecay(step_config["learning_rate"], config["warmup_steps"],
                                     prepared.steps_per_epoch * config["epochs"],
                                     config["final_lr_fraction"])
        model.compile(
            optimizer=keras.optimizers.Adam(schedule,
                                            global_clipnorm=config["clip_norm"] or None,
                                            **ema_options(config)),
            loss=task.loss(config),
            metrics=task.compile_metrics(config),
            jit_compile=config["jit_compile"],
        )
    metric_log.log({"parameters": model.count_params()})
    # What ran: the config's precision, or float32 where bfloat16 would be emulated.
    metric_log.client.set_tag(metric_log.run_id, "zoo.precision", precision)
    return prepared, model, schedule


@dataclasses.dataclass
class _TrainingLoop:
    """The epochs of one run: the model, its batches and the callbacks that track them."""

    config: dict
    model: keras.Model
    prepared: object
    checkpoint: RunCheckpoint
    budget: TimeBudget
    swap_ema: list
    tracker: EpochTracker
    task: object
    metric_log: object
    initial_epoch: int = 0

    @classmethod
    def start(cls, task, config, model, schedule, prepared, data, run_dir, metric_log):
        def evaluate():
            scores = task.evaluate_during_training(model, config, data["valid"])
            return {f"val_{name}": value for name, value in scores.items()}

        checkpoint = RunCheckpoint(run_dir / "checkpoints")
        budget = TimeBudget(config["time_budget_minutes"], schedule)
        # Before the tracker: validation, the epoch's task metric and its checkpoint (so the
        # best weights too) see the moving average; the next epoch trains on the raw weights.
        swap_ema = ([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]
                    if ema_options(config) else [])
        tracker = EpochTracker(evaluate, prepared.tokens_per_epoch, checkpoint, budget,
                               log_metrics=lambda values, step: metric_log.log(values, step),
                               best_by=config["best_by"])
        return cls(config, model, prepared, checkpoint, budget, swap_ema, tracker, task,
                   metric_log)

    def restore_or_initialize(self, strategy, run_id, tokenizer, data, resumed, initial=None):
        """The last checkpoint's weights and callback state; else the weights of `initial`
        (`init_from`, its validation loss logged as `init_val_loss`) or the task's
        initialisation (e.g. pretrained embeddings). Every worker is checked to hold the same.
        Returns the chief's run id."""
        config, model, budget = self.config, self.model, self.budget
        with strategy.scope():
            state = self.checkpoint.restore(model) if resumed else None
            if state is None and initial is not None:
                _copy_weights(initial, model, config["init_from"])
                self.metric_log.log({"init_val_loss": _loss(model, self.prepared.valid)})
            elif state is None:
                initialize_start = time.monotonic()
                initialized = self.task.initialize(model, config, tokenizer, data["train"])
                if initialized is not None:
                    seconds = time.monotonic() - initialize_start
                    budget.previous_seconds += seconds  # part of the training time
                    self.metric_log.log({**initialized, "initialize_seconds": seconds})
        run_id = worker_sync.synchronize(  # every worker trains the same; the chief's run id
            strategy, run_id, model, config=config, data=data["hash"],
            tokenizer=tokenizer.to_bytes(), epoch=int(state["epoch"]) if state else 0)
        if state is not None:
            self.initial_epoch = int(state["epoch"])
            if self.swap_ema:  # checkpointed after the swap: the average is in the model
                self.swap_ema[0]._ema_weights_in_model = True
            self.tracker.restore(state)
            budget.restore(state.get("time_budget", {}))
            for entry in self.tracker.history:  # epochs checkpointed but not yet in MLflow
                self.metric_log.log({k: v for k, v in entry.items() if k != "epoch"},
                                    entry["epoch"])
            mlflow.set_tag("zoo.resumed_from_epoch", str(self.initial_epoch))
            print(f"resuming run {run_id} after epoch {self.initial_epoch} of "
                  f"{config['epochs']}", flush=True)
        elif resumed:
            print(f"resuming run {run_id}: no checkpoint yet, training from epoch 1", flush=True)
        return run_id

    def fit(self, strategy, run_id, verbose):
        """`model.fit` over the epochs left, unless the time budget is spent."""
        config = self.config
        if self.initial_epoch >= config["epochs"] or self.budget.exhausted:
            return
        # The shuffled, repeated stream continues where the checkpointed epoch left it.
        steps_per_epoch = self.prepared.steps_per_epoch
        stream = self.prepared.train
        if self.initial_epoch:
            stream = stream.skip(self.initial_epoch * steps_per_epoch)
        with worker_sync.worker_failures(strategy, run_id):
            self.model.fit(stream, validation_data=self.prepared.valid, epochs=config["epochs"],
                           initial_epoch=self.initial_epoch, steps_per_epoch=steps_per_epoch,
                           callbacks=[StopOnSignal(), self.budget, *self.swap_ema, self.tracker,
                                      *worker_sync.callbacks(strategy, self.budget)],
                           verbose=verbose, shuffle=False)


def _copy_weights(source, model, name):
    """`model` starts from `source`'s weights (`init_from`): same architecture, same shapes."""
    weights = source.get_weights()
    shapes = [tuple(w.shape) for w in weights], [tuple(v.shape) for v in model.weights]
    if shapes[0] != shapes[1]:
        ours, theirs = model.get_config(), source.get_config()
        differ = sorted(key for key in ours.keys() & theirs.keys()
                        if key not in ("name", "tokenizer", "dtype", "trainable")
                        and ours[key] != theirs[key])
        raise ConfigError(f"key 'init_from': the weights of {name} do not fit this config's "
                          f"model; set the architecture keys as it has them"
                          f"{' (' + ', '.join(differ) + ')' if differ else ''}")
    model.set_weights(weights)


def _loss(model, batches):
    """The compiled loss of `model` over `batches` (no step taken)."""
    return float(model.evaluate(batches, verbose=0, return_dict=True)["loss"])


def _finish(task, config, loop, tokenizer, data, run_id, run_dir, artifacts, train_seconds,
            started):
    """The chief's end of a run: the kept epoch's weights scored on the test split, the model
    saved, logged and registered, the checkpoints removed."""
    model = loop.model
    best = loop.checkpoint.best_weights()
    if best is not None and best.exists():
        model.load_weights(best)
    if model.dtype_policy.name != "float32":  # evaluate, save, export float32
        model = as_float32(model, config, tokenizer, loop.prepared.valid)
    final = {"train_seconds": train_seconds, "best_epoch": loop.tracker.best_epoch or 0}
    test_examples = task.read_split(config, "test")
    evaluate_start = time.monotonic()
    scores = task.evaluate(model, config, test_examples)
    final["test_seconds"] = time.monotonic() - evaluate_start
    final.update({f"test_{name}": value for name, value in scores.items()})
    loop.metric_log.log(final)

    task.log_artifacts(model, config, data["valid"], artifacts)
    model_path = run_dir / "model.keras"
    save_model_atomically(model, model_path)
    mlflow.log_artifact(str(model_path), "model")
    version = registry.log_serving_model(model, config, run_id)
    mlflow.set_tag("zoo.registered_model", f"models:/{version.name}/{version.version}")
    shutil.rmtree(loop.checkpoint.directory, ignore_errors=True)  # the run is complete
    summary = ", ".join(f"test {name} {value:.2f}" for name, value in scores.items())
    print(f"{summary}; trained {train_seconds / 60:.1f} min ({time.monotonic() - started:.0f} s "
          f"in this process), run {run_id}, registered models:/{version.name}/{version.version}",
          flush=True)
    return TrainingResult(run_id, model, config, final, model_path, loop.tracker.history,
                          model_version=version.version)


def ema_options(config):
    """Adam's keyword arguments for `ema_momentum` (0: off): Polyak averaging of the weights,
    `average ← m · average + (1 − m) · weights` after every step (over ≈ 1 / (1 − m) steps)."""
    momentum = config.get("ema_momentum", 0.0)
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"key 'ema_momentum' must be in [0, 1) (0: off), got {momentum}")
    return {"use_ema": True, "ema_momentum": momentum} if momentum else {}


PRECISIONS = ("float32", "mixed_bfloat16")


def build_model(config, tokenizer, precision="float32"):
    """The model a config names, its layers computing in `precision` (`mixed_bfloat16`:
    bfloat16 matmuls, float32 variables and loss — on CPUs with AVX512-BF16 or AMX, oneDNN
    runs bfloat16 matmuls about twice as fast as float32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"key 'precision' must be one of {', '.join(PRECISIONS)}, got "
                          f"{precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return catalog.get_builder(config["model"]).build(config, tokenizer=tokenizer)
    finally:
        keras.config.set_dtype_policy(previous)


def as_float32(model, config, tokenizer, batches):
    """A float32 copy of a model trained in mixed precision (its variables are float32
    already): what is evaluated, saved and exported, so the served graph has no bfloat16."""
    copy = build_model(config, tokenizer, "float32")
    inputs, _ = next(iter(batches))
    copy(inputs, training=False)  # creates the variables
    copy.set_weights(model.get_weights())
    return copy


def _save_run_setup(config, tokenizer, run_dir):
    """The run directory's own copy of the config and tokenizer, for `--resume`."""
    tokenizer_dir = run_dir / "tokenizer"
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    for path, write in ((tokenizer_dir / tokenizer.file_name, tokenizer.save),
                        (run_dir / "config.yaml",
                         lambda p: Path(p).write_text(yaml.safe_dump(config, sort_keys=True)))):
        if not path.exists():
            temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            write(temporary)
            os.replace(temporary, path)


def save_model_atomically(model, path):
    temporary = Path(f"{path}.tmp-{os.getpid()}.keras")
    model.save(temporary)
    os.replace(temporary, path)


def _log_setup_artifacts(config, tokenizer, directory):
    (directory / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    mlflow.log_artifact(str(directory / "config.yaml"))
    vocab_dir = directory / "tokenizer"
    vocab_dir.mkdir()
    tokenizer.save(vocab_dir / tokenizer.file_name)
    tokenizer.save_vocabulary(vocab_dir / "vocabulary.txt")
    mlflow.log_artifacts(str(vocab_dir), "tokenizer")
