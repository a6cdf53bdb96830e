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
