"""Trained models back by name (`zoo.load`): from the MLflow Model Registry, a run, a run
directory or a `.keras` file, as keras-hub's `from_preset` gives back a pretrained model."""

import re
import tempfile
from pathlib import Path

import keras
import mlflow

import zoo.models  # noqa: F401  (registers the zoo's Keras classes for loading)
from zoo.registry import did_you_mean
from zoo.tracking import mlflow_tracking as tracking

RUN_ID = re.compile(r"[0-9a-f]{32}")


def load(source: str | Path) -> keras.Model:
    """A trained model of the zoo, ready to `predict`, fine-tune or export.

    The model carries its tokenizer and its task's methods (`translate`, `summarize`,
    `answer`, `classify`/`predict_texts`).

    Args:
        source: where the trained model is, one of
            - a registered model name (`"luong_translator"`): its newest version in the MLflow
              Model Registry of `MLFLOW_TRACKING_URI` (default `./mlflow.db`);
            - `models:/NAME/VERSION` (or `models:/NAME` for the newest);
            - `runs:/RUN_ID` or a bare run id: the model that run trained;
            - a run directory (holding `model.keras`) or a `.keras` file.

    Returns:
        The Keras model.

    Raises:
        ValueError: nothing trained under that name (the message lists the registered
            models), or a store that has none.

    Example:

    ```python
    import zoo

    model = zoo.load("luong_translator")
    model.translate(["Ein Mann fährt Fahrrad."])
    ```
    """
    return load_trained(source)[0]


def load_trained(source: str | Path) -> tuple[keras.Model, dict]:
    """`load`, and a description of where the model came from (`path`, or `run_id` and
    `tracking_uri`; with a registered version also `registered_model`)."""
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
    origin = {}
    if text.startswith("runs:/"):
        run_id = text[len("runs:/"):].split("/")[0]
    elif RUN_ID.fullmatch(text):
        run_id = text
    else:
        name, _, version = text.removeprefix("models:/").partition("/")
        if not version or version == "latest":
            version = _newest_version(client, name, text)
        try:
            run_id = client.get_model_version(name, version).run_id
        except mlflow.exceptions.MlflowException:
            raise ValueError(f"no version {version} of registered model {name!r} in "
                             f"{tracking.tracking_uri()}") from None
        origin["registered_model"] = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="zoo-load-") as scratch:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="model/model.keras", dst_path=scratch)
        except mlflow.exceptions.MlflowException as error:
            raise ValueError(f"run {run_id} in {tracking.tracking_uri()} has no trained model "
                             f"(model/model.keras): {error.message}") from None
        model = keras.saving.load_model(local, compile=False)
    return model, origin | {"run_id": run_id, "tracking_uri": tracking.tracking_uri()}


def _newest_version(client, name, source):
    """The highest version number of registered model `name`."""
    versions = client.search_model_versions(f"name = '{name}'") if name else []
    if versions:
        return str(max(int(v.version) for v in versions))
    registered = sorted(model.name for model in client.search_registered_models())
    where = (f"not a .keras file, run directory, run id or runs:/ URI, nor a registered model "
             f"in {tracking.tracking_uri()}")
    if not registered:
        raise ValueError(f"no trained model {source!r}: {where}, which has none (train one: "
                         f"zoo train configs/<model>.yaml, or point MLFLOW_TRACKING_URI at the "
                         "store that has it)")
    raise ValueError(f"no trained model {source!r}: {where}.{did_you_mean(name, registered)} "
                     f"Registered: {', '.join(registered)}")
