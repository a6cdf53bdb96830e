"""Session fixtures: the data directory, a real MLflow store, one tiny translator trained once."""

import os

import pytest

from tests.support import REPO, TINY_TRANSLATOR, require_multi30k

os.environ.setdefault("ZOO_DATA_DIR", str((REPO.parent / "shared" / "data").resolve()))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
