"""Helpers the tests share (plain functions and constants; the fixtures are in conftest.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Tiny sizes: the point is the path, not the score.
TINY_TRANSLATOR = {
    "train_limit": 3000, "eval_limit": 48, "max_subwords": 24, "vocab_size": 1000,
    "embedding_dim": 16, "encoder_units": 16, "decoder_units": 32, "encoder_layers": 1,
    "batch_size": 32, "epochs": 3, "learning_rate": 0.01, "warmup_steps": 5,
    "heatmaps": 2, "samples": 4, "dropout": 0.0,
    # Greedy keeps the tiny trainings and exports fast (configs/luong_translator.yaml says
    # beam; tests/export/test_export.py exports beam search).
    "decoding": "greedy",
}


def require_multi30k():
    if not (Path(os.environ["ZOO_DATA_DIR"]) / "mt" / "train.tsv").is_file():
        pytest.skip(f"Multi30k not found under ZOO_DATA_DIR={os.environ['ZOO_DATA_DIR']}")


def zoo_command(*arguments):
    return [sys.executable, "-m", "zoo.cli", *arguments]


def start_training(directory, config, log_path):
    """A real `zoo train luong_translator` subprocess with `config` as `--set`s, tracked in
    `<directory>/mlflow.db`, its runs under `<directory>/runs`: `(environment, output,
    process)`; its output goes to `log_path`."""
    environment = dict(os.environ)
    environment["MLFLOW_TRACKING_URI"] = f"sqlite:///{directory / 'mlflow.db'}"
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in [environment.get("PYTHONPATH")] if p])
    output = directory / "runs"
    settings = [f"--set={key}={json.dumps(value)}" for key, value in config.items()]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            zoo_command("train", "luong_translator", *settings, "--output-dir", str(output)),
            cwd=directory, env=environment, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    return environment, output, process


def latest_checkpoint(output):
    for pointer in output.glob("*/checkpoints/latest.json"):
        try:
            return pointer.parent.parent.name, json.loads(pointer.read_text())["epoch"]
        except (OSError, ValueError):
            pass  # being replaced right now
    return None, 0


def check_word_vector_init(name, overrides, embeddings_of):
    """Builds model `name` (config + `overrides`, a 300-piece tokenizer of its training split)
    and runs its task's `initialize` with `word_vectors` off (a no-op) and on; checks that only
    the embedding variables `embeddings_of(model)` changed (one per member), all in the same
    rows (never the padding row) to the same vectors.

    Returns `(config, training examples, the metrics it logged)`.
    """
    import numpy as np

    import zoo
    from zoo.models import catalog
    from zoo.tasks import get_task
    from zoo.text import SubwordTokenizer

    config = zoo.resolve_config(name, {**overrides, "word_vectors": True})
    task = get_task(config["task"])
    examples = task.read_split(config, "train")
    tokenizer = SubwordTokenizer.train(task.tokenizer_texts(config, examples), vocab_size=300)
    model = catalog.get_builder(name).build(config, tokenizer=tokenizer)
    tables = embeddings_of(model)
    before = [weight.numpy() for weight in model.weights]
    assert task.initialize(model, {**config, "word_vectors": False}, tokenizer, examples) is None
    logged = task.initialize(model, config, tokenizer, examples)
    table_ids = {id(table) for table in tables}
    assert len(table_ids) == config["members"]
    changed = []
    for weight, old in zip(model.weights, before, strict=True):
        new = weight.numpy()
        if id(weight) not in table_ids:
            np.testing.assert_array_equal(new, old, err_msg=weight.path)
            continue
        rows = np.flatnonzero((new != old).any(axis=1))
        assert len(rows) == logged["word_vector_pieces"] > 0.5 * tokenizer.vocab_size
        assert 0 not in rows  # padding never occurs: it keeps its init
        changed.append((rows, new[rows]))
    assert len(changed) == len(table_ids)
    for rows, vectors in changed[1:]:  # every member starts from the same vectors
        np.testing.assert_array_equal(rows, changed[0][0])
        np.testing.assert_array_equal(vectors, changed[0][1])
    return config, examples, logged


def assert_resumed_once(client, run_id, killed_after, epochs, epoch_metrics):
    """The run finished after one resume from epoch `killed_after`, with one value of each
    per-epoch metric for every epoch 1..`epochs`. Returns the run."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["zoo.resumes"] == "1"
    assert run.data.tags["zoo.resumed_from_epoch"] == str(killed_after)
    for key in epoch_metrics:
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert sorted(steps) == list(range(1, epochs + 1)), (key, steps)
    return run
