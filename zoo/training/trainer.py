"""`zoo train`: one MLflow-tracked training of a registered model."""

import dataclasses
import hashlib
import os
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
from zoo.training.callbacks import EpochTracker, TimeBudget
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


def train(config_or_name, overrides=None, output_dir=RUNS_DIR, verbose=1):
    """Train the model a config names; every step tracked in one MLflow run.

    Args:
        config_or_name: a registered model name or a YAML config path.
        overrides: dict of config keys to override.
        output_dir: local directory for checkpoints and the trained `.keras` model.

    Returns:
        `TrainingResult`.
    """
    config = catalog.resolve_config(config_or_name, overrides)
    configure_threads(config)
    keras.utils.set_random_seed(config["seed"])
    tracking.configure()
    mlflow.set_experiment(config["task"])

    train_sources, train_targets = data_lib.read_parallel(config, "train")
    valid_sources, valid_targets = data_lib.read_parallel(config, "valid")
    data_hash = dataset_hash(train_sources, train_targets)

    with mlflow.start_run() as run:
        run_id = run.info.run_id
        mlflow.set_tag("mlflow.runName", tracking.run_name(config, run_id[:8]))
        mlflow.set_tags(tracking.run_tags(config, data_hash))
        mlflow.log_params(tracking.flatten_params(config))
        run_dir = Path(output_dir) / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            result = _train_in_run(config, run_id, run_dir, train_sources, train_targets,
                                   valid_sources, valid_targets, verbose)
        except BaseException:
            mlflow.end_run(status="FAILED")
            raise
    return result


def _train_in_run(config, run_id, run_dir, train_sources, train_targets, valid_sources,
                  valid_targets, verbose):
    started = time.monotonic()
    tokenizer = SubwordTokenizer.train(train_sources + train_targets,
                                       vocab_size=config["vocab_size"])
    train_src, train_tgt, _ = tokenize_pairs(tokenizer, train_sources, train_targets,
                                             config["max_subwords"])
    valid_src, valid_tgt, _ = tokenize_pairs(tokenizer, valid_sources, valid_targets)
    kept = int(train_src.nrows())
    mlflow.log_metric("train_pairs", kept)
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
    mlflow.log_metric("parameters", model.count_params())

    bleu_sources = valid_sources[: config["val_bleu_limit"] or None]
    bleu_references = valid_targets[: config["val_bleu_limit"] or None]

    def evaluate():
        scores = metrics.corpus_bleu(batched_translate(model, bleu_sources), bleu_references)
        return {"val_bleu": scores["bleu"], "val_chrf": scores["chrf"]}

    checkpoint = run_dir / "best.weights.h5"
    budget = TimeBudget(config["time_budget_minutes"], schedule)
    tracker = EpochTracker(evaluate, target_token_count(train_tgt), str(checkpoint), budget)
    artifacts = Path(tempfile.mkdtemp(prefix="zoo-artifacts-"))
    _log_setup_artifacts(config, tokenizer, artifacts)

    model.fit(train_data, validation_data=valid_data, epochs=config["epochs"],
              steps_per_epoch=steps_per_epoch, callbacks=[budget, tracker], verbose=verbose,
              shuffle=False)
    train_seconds = time.monotonic() - started
    if checkpoint.exists():
        model.load_weights(checkpoint)

    final = {"train_seconds": train_seconds, "best_epoch": tracker.best_epoch or 0}
    test_sources, test_targets = data_lib.read_parallel(config, "test")
    decode_start = time.monotonic()
    hypotheses = batched_translate(model, test_sources)
    final["test_decode_seconds"] = time.monotonic() - decode_start
    scores = metrics.corpus_bleu(hypotheses, test_targets)
    final.update({"test_bleu": scores["bleu"], "test_chrf": scores["chrf"]})
    mlflow.log_metrics(final)

    _log_result_artifacts(config, model, valid_sources, valid_targets, artifacts)
    model_path = run_dir / "model.keras"
    save_model_atomically(model, model_path)
    mlflow.log_artifact(str(model_path), "model")
    print(f"test BLEU {scores['bleu']:.2f} (chrF {scores['chrf']:.1f}), "
          f"trained {train_seconds / 60:.1f} min, run {run_id}", flush=True)
    return TrainingResult(run_id, model, config, final, model_path, tracker.history)


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
