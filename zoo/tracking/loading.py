"""A trained Keras model back from a `.keras` file, a run directory or MLflow (to export,
evaluate or benchmark it)."""

import re
import tempfile
from pathlib import Path

import keras
import mlflow

import zoo.models  # noqa: F401  (registers the zoo's Keras classes for loading)
from zoo.tracking import mlflow_tracking as tracking


def load_trained(source):
    """A trained Keras model and a description of where it came from.

    `source` is a `.keras` file, a run directory holding `model.keras`, an MLflow run id,
    `runs:/<run_id>`, `models:/<name>/<version>`, or a registered model name (its newest run).
    """
    text = str(source)
    path = Path(text)
    if path.suffix == ".keras" and path.is_file():
        return keras.saving.load_model(path, compile=False), {"path": str(path.resolve())}
    if path.is_dir() and (path / "model.keras").is_file():
        return (keras.saving.load_model(path / "model.keras", compile=False),
                {"path": str(path.resolve())})
    return _load_from_mlflow(text)


def _load_from_mlflow(text):
    tracking.configure()
    client = mlflow.MlflowClient()
    if text.startswith("models:/"):
        name, version = text[len("models:/"):].split("/", 1)
        model_version = client.get_model_version(name, version)
        run_id = model_version.run_id
    elif text.startswith("runs:/"):
        run_id = text[len("runs:/"):].split("/")[0]
    elif re.fullmatch(r"[0-9a-f]{32}", text):
        run_id = text
    else:
        runs = mlflow.search_runs(
            search_all_experiments=True, filter_string=f"tags.`zoo.model` = '{text}'",
            order_by=["attributes.start_time DESC"], max_results=20, output_format="list")
        runs = [run for run in runs if run.info.status == "FINISHED"]
        if not runs:
            raise ValueError(
                f"nothing to export for {text!r}: not a .keras file, run directory, run id, "
                f"models:/ or runs:/ URI, nor a model with a finished run in "
                f"{tracking.tracking_uri()} (train it first: zoo train configs/{text}.yaml)")
        run_id = runs[0].info.run_id
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model/model.keras",
                                                dst_path=tempfile.mkdtemp(prefix="zoo-export-"))
    return keras.saving.load_model(local, compile=False), {
        "run_id": run_id, "tracking_uri": tracking.tracking_uri()}
