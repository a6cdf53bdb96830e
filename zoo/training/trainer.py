"""`zoo train`: one MLflow-tracked training of a registered model."""

import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import mlflow
import numpy as np
import tensorflow as tf
import yaml

from zoo import data as data_lib
from zoo import metrics, tracking
from zoo.models import catalog
from zoo.text import SubwordTokenizer
from zoo.tracking import registry
from zoo.training.callbacks import EpochTracker, RunCheckpoint, TimeBudget
from zoo.training.losses import SmoothedSequenceLoss
from zoo.training.schedules import WarmupCosineDecay
from zoo.training.translation_data import (
    make_dataset,
    target_token_count,
    tokenize_pairs,
)
from zoo.viz import plot_attention

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


def dataset_hash(*texts):
    digest = hashlib.sha256()
    for collection in texts:
        for text in collection:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def batched_translate(model, sources, batch_size=64):
    """Greedy translations of `sources`, batched by length (fewer padded shapes, less padding)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    outputs = [None] * len(sources)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        for index, text in zip(chunk, model.translate([sources[i] for i in chunk])):
            outputs[index] = text
    return outputs


def train(config_or_name=None, overrides=None, output_dir=RUNS_DIR, verbose=1, resume=None):
    """Train the model a config names; every step tracked in one MLflow run.

    Args:
        config_or_name: a registered model name or a YAML config path.
        overrides: dict of config keys to override.
        output_dir: local directory for the run directories (`<output_dir>/<run_id>/`: config,
            tokenizer, per-epoch checkpoints, the trained `.keras` model).
        resume: a run id: continue that (killed or failed) run from its last checkpoint, in
            the same MLflow run, with its own config and tokenizer (`config_or_name` and
            `overrides` must then be left out).

    Returns:
        `TrainingResult`.
    """
    if resume is not None:
        if config_or_name is not None or overrides:
            raise ValueError("resume: a resumed run keeps its own config; give no config "
                             "and no overrides")
        return resume_training(resume, output_dir, verbose)
    if config_or_name is None:
        raise ValueError("train: give a config (a registered model name or a YAML path)")
    config = catalog.resolve_config(config_or_name, overrides)
    configure_threads(config)
    keras.utils.set_random_seed(config["seed"])
    tracking.configure()
    tracking.use_experiment(config["task"])
    data = _read_data(config)

    with mlflow.start_run() as run:
        run_id = run.info.run_id
        mlflow.set_tag("mlflow.runName", tracking.run_name(config, run_id[:8]))
        run_dir = (Path(output_dir) / run_id).resolve()
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
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise ValueError(f"resume: no run {run_id!r} in {tracking.tracking_uri()}") from None
    if run.info.status == "FINISHED":
        raise ValueError(f"resume: run {run_id} ({run.info.run_name}) has already finished")
    run_dir = Path(output_dir).resolve() / run_id
    tagged = run.data.tags.get("zoo.run_dir")
    if not run_dir.is_dir() and tagged and Path(tagged).is_dir():
        run_dir = Path(tagged)
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
    # Seeding resets TensorFlow's eager context, which drops tf-text's SentencePiece resources:
    # the tokenizer must be made after it.
    keras.utils.set_random_seed(config["seed"])
    tokenizer_file = _restore_file(client, run_id, run_dir, "tokenizer/subword.model")
    tokenizer = SubwordTokenizer.load(tokenizer_file) if tokenizer_file else None
    data = _read_data(config)
    expected = run.data.tags.get("zoo.dataset_hash")
    if expected and expected != data["hash"]:
        raise ValueError(f"resume: the training data changed since run {run_id} started "
                         f"(content hash {data['hash']}, the run has {expected})")
    resumes = int(run.data.tags.get("zoo.resumes", "0")) + 1
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tag("zoo.resumes", str(resumes))
        return _train_guarded(config, run_id, run_dir, data, verbose, tokenizer=tokenizer,
                              resumed=True)


def _restore_file(client, run_id, run_dir, relative):
    """`run_dir/relative`, fetched from the run's artifacts when it is not there; or None."""
    path = run_dir / relative
    if path.is_file():
        return path
    try:
        local = client.download_artifacts(run_id, relative, tempfile.mkdtemp(prefix="zoo-"))
    except (mlflow.exceptions.MlflowException, OSError):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(local, path)
    return path


def _read_data(config):
    train_sources, train_targets = data_lib.read_parallel(config, "train")
    valid_sources, valid_targets = data_lib.read_parallel(config, "valid")
    return {"train": (train_sources, train_targets), "valid": (valid_sources, valid_targets),
            "hash": dataset_hash(train_sources, train_targets)}


def _train_guarded(*args, **kwargs):
    """`_train_in_run`, the run marked FAILED (KILLED on Ctrl-C) if it raises."""
    try:
        return _train_in_run(*args, **kwargs)
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise


def _train_in_run(config, run_id, run_dir, data, verbose, tokenizer=None, resumed=False):
    started = time.monotonic()
    metric_log = tracking.MetricLog.for_run(run_id) if resumed else tracking.MetricLog(run_id)
    train_sources, train_targets = data["train"]
    valid_sources, valid_targets = data["valid"]
    if tokenizer is None:
        tokenizer = SubwordTokenizer.train(train_sources + train_targets,
                                           vocab_size=config["vocab_size"])
    _save_run_setup(config, tokenizer, run_dir)
    train_src, train_tgt, _ = tokenize_pairs(tokenizer, train_sources, train_targets,
                                             config["max_subwords"])
    valid_src, valid_tgt, _ = tokenize_pairs(tokenizer, valid_sources, valid_targets)
    kept = int(train_src.nrows())
    metric_log.log({"train_pairs": kept})
    if kept < 2 * config["batch_size"]:
        raise ValueError(
            f"only {kept} training pairs have ≤ max_subwords={config['max_subwords']} subwords "
            f"on both sides (vocab_size={config['vocab_size']}): too few for batch_size="
            f"{config['batch_size']}; raise max_subwords, vocab_size or train_limit")
    # Repeated, with a fixed number of steps per epoch: bucketing makes the count of full
    # batches vary from one shuffle to the next, and Keras stops when an epoch comes up short.
    train_data = make_dataset(train_src, train_tgt, config["batch_size"], shuffle=True,
                              seed=config["seed"]).repeat()
    valid_data = make_dataset(valid_src, valid_tgt, config["batch_size"], drop_remainder=False)

    model = catalog.get_builder(config["model"]).build(config, tokenizer=tokenizer)
    steps_per_epoch = max(1, kept // config["batch_size"])
    schedule = WarmupCosineDecay(config["learning_rate"], config["warmup_steps"],
                                 steps_per_epoch * config["epochs"],
                                 config["final_lr_fraction"])
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, global_clipnorm=config["clip_norm"] or None),
        loss=SmoothedSequenceLoss(config["label_smoothing"]),
        jit_compile=config["jit_compile"],
    )
    metric_log.log({"parameters": model.count_params()})

    bleu_sources = valid_sources[: config["val_bleu_limit"] or None]
    bleu_references = valid_targets[: config["val_bleu_limit"] or None]

    def evaluate():
        scores = metrics.corpus_bleu(batched_translate(model, bleu_sources), bleu_references)
        return {"val_bleu": scores["bleu"], "val_chrf": scores["chrf"]}

    checkpoint = RunCheckpoint(run_dir / "checkpoints")
    budget = TimeBudget(config["time_budget_minutes"], schedule)
    tracker = EpochTracker(evaluate, target_token_count(train_tgt), checkpoint, budget,
                           log_metrics=lambda values, step: metric_log.log(values, step))
    artifacts = Path(tempfile.mkdtemp(prefix="zoo-artifacts-"))
    logged = {a.path for a in metric_log.client.list_artifacts(run_id)} if resumed else set()
    if not {"config.yaml", "tokenizer"} <= logged:  # a resumed run keeps what it logged
        _log_setup_artifacts(config, tokenizer, artifacts)

    initial_epoch = 0
    state = checkpoint.restore(model) if resumed else None
    if state is not None:
        initial_epoch = int(state["epoch"])
        tracker.restore(state)
        budget.restore(state.get("time_budget", {}))
        for entry in tracker.history:  # epochs checkpointed but not yet in MLflow
            metric_log.log({k: v for k, v in entry.items() if k != "epoch"}, entry["epoch"])
        mlflow.set_tag("zoo.resumed_from_epoch", str(initial_epoch))
        print(f"resuming run {run_id} after epoch {initial_epoch} of {config['epochs']}",
              flush=True)
    elif resumed:
        print(f"resuming run {run_id}: no checkpoint yet, training from epoch 1", flush=True)

    if initial_epoch < config["epochs"] and not budget.exhausted:
        # The shuffled, repeated stream continues where the checkpointed epoch left it.
        stream = train_data.skip(initial_epoch * steps_per_epoch) if initial_epoch else train_data
        model.fit(stream, validation_data=valid_data, epochs=config["epochs"],
                  initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                  callbacks=[budget, tracker], verbose=verbose, shuffle=False)
    train_seconds = budget.elapsed()
    best = checkpoint.best_weights()
    if best is not None and best.exists():
        model.load_weights(best)

    final = {"train_seconds": train_seconds, "best_epoch": tracker.best_epoch or 0}
    test_sources, test_targets = data_lib.read_parallel(config, "test")
    decode_start = time.monotonic()
    hypotheses = batched_translate(model, test_sources)
    final["test_decode_seconds"] = time.monotonic() - decode_start
    scores = metrics.corpus_bleu(hypotheses, test_targets)
    final.update({"test_bleu": scores["bleu"], "test_chrf": scores["chrf"]})
    metric_log.log(final)

    _log_result_artifacts(config, model, valid_sources, valid_targets, artifacts)
    model_path = run_dir / "model.keras"
    save_model_atomically(model, model_path)
    mlflow.log_artifact(str(model_path), "model")
    version = registry.log_serving_model(model, config, run_id)
    mlflow.set_tag("zoo.registered_model", f"models:/{version.name}/{version.version}")
    shutil.rmtree(checkpoint.directory, ignore_errors=True)  # the run is complete
    print(f"test BLEU {scores['bleu']:.2f} (chrF {scores['chrf']:.1f}), "
          f"trained {train_seconds / 60:.1f} min ({time.monotonic() - started:.0f} s in this "
          f"process), run {run_id}, registered models:/{version.name}/{version.version}",
          flush=True)
    return TrainingResult(run_id, model, config, final, model_path, tracker.history,
                          model_version=version.version)


def _save_run_setup(config, tokenizer, run_dir):
    """The run directory's own copy of the config and tokenizer, for `--resume`."""
    tokenizer_dir = run_dir / "tokenizer"
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    for path, write in ((tokenizer_dir / "subword.model", tokenizer.save),
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
    tokenizer.save(vocab_dir / "subword.model")
    tokenizer.save_vocabulary(vocab_dir / "vocabulary.txt")
    mlflow.log_artifacts(str(vocab_dir), "tokenizer")


def _log_result_artifacts(config, model, sources, references, directory):
    """Attention heatmaps of a few validation sentences and a table of sample translations."""
    count = max(config["heatmaps"], config["samples"])
    sources, references = sources[:count], references[:count]
    translations, result, source_ids = model.translate(sources, return_attention=True)
    heatmap_dir = directory / "attention"
    heatmap_dir.mkdir()
    tokenizer = model.tokenizer
    for index in range(min(config["heatmaps"], len(sources))):
        source_tokens = _tokens(tokenizer, source_ids[index])
        target_tokens = _tokens(tokenizer, result["ids"][index])
        plot_attention(result["attention"][index].numpy(), source_tokens, target_tokens,
                       path=heatmap_dir / f"sentence_{index:02d}.png",
                       title=translations[index])
    mlflow.log_artifacts(str(heatmap_dir), "attention")
    samples = {"source": sources[: config["samples"]],
               "reference": references[: config["samples"]],
               "translation": translations[: config["samples"]]}
    mlflow.log_table(samples, artifact_file="samples/translations.json")
    lines = ["source\treference\ttranslation"] + [
        "\t".join(row) for row in zip(*samples.values())]
    (directory / "translations.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mlflow.log_artifact(str(directory / "translations.tsv"), "samples")


def _tokens(tokenizer, ids):
    ids = np.asarray(ids)
    ids = ids[ids != 0]
    return [t.decode("utf-8") for t in tokenizer.id_to_string(tf.constant(ids)).numpy()]
