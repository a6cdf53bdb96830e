"""Shared fixtures: the data directory and one tiny translator trained once per session."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("ZOO_DATA_DIR", str((REPO.parent / "shared" / "data").resolve()))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Tiny sizes: the point is the path, not the score.
TINY_TRANSLATOR = {
    "train_limit": 3000, "eval_limit": 48, "max_subwords": 24, "vocab_size": 1000,
    "embedding_dim": 16, "encoder_units": 16, "decoder_units": 32, "encoder_layers": 1,
    "batch_size": 32, "epochs": 3, "learning_rate": 0.01, "warmup_steps": 5,
    "heatmaps": 2, "samples": 4, "dropout": 0.0,
    # Exports serve greedy decoding, and tests compare served translations with
    # `model.translate`: decode the same way (configs/luong_translator.yaml says beam).
    "decoding": "greedy",
}


def require_multi30k():
    if not (Path(os.environ["ZOO_DATA_DIR"]) / "mt" / "train.tsv").is_file():
        pytest.skip(f"Multi30k not found under ZOO_DATA_DIR={os.environ['ZOO_DATA_DIR']}")


@pytest.fixture(scope="session")
def tracking_dir(tmp_path_factory):
    """A real sqlite MLflow store for the session (the embedded default of `zoo train`)."""
    directory = tmp_path_factory.mktemp("mlflow")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{directory / 'mlflow.db'}"
    yield directory
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def training_tempdir(tmp_path_factory):
    """The system temp directory while `trained_translator` trains: what it leaves there."""
    return tmp_path_factory.mktemp("system-tmp")


@pytest.fixture(scope="session")
def trained_translator(tracking_dir, tmp_path_factory, training_tempdir):
    """A tiny luong_translator trained on ≤3,000 Multi30k pairs, tracked in MLflow."""
    require_multi30k()
    import tempfile

    from zoo.training import train

    output = tmp_path_factory.mktemp("runs")
    old_cwd, old_tempdir = os.getcwd(), tempfile.tempdir
    os.chdir(tracking_dir)  # MLflow's default artifact root is relative to the working dir
    tempfile.tempdir = str(training_tempdir)
    try:
        return train("luong_translator", TINY_TRANSLATOR, output_dir=output, verbose=0)
    finally:
        os.chdir(old_cwd)
        tempfile.tempdir = old_tempdir


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
