"""MLflow tracking: where runs go, how a zoo run is named, tagged and parameterised."""

import json
import os
import platform
import subprocess
from pathlib import Path

import mlflow

DEFAULT_DB = "mlflow.db"


def tracking_uri():
    """`$MLFLOW_TRACKING_URI`, else an embedded sqlite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(DEFAULT_DB).resolve()}"


def configure():
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"


def use_experiment(name):
    """Make `name` the active experiment (created if missing), marked as model training so
    the MLflow 3 UI opens it on its runs rather than on GenAI traces."""
    experiment = mlflow.set_experiment(name)
    if experiment.tags.get(EXPERIMENT_KIND_TAG) is None:
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG,
                                                 "custom_model_development")
    return experiment


def flatten_params(config):
    """Config → MLflow params: scalars as they are, containers as compact JSON."""
    params = {}
    for key, value in config.items():
        if isinstance(value, (dict, list, tuple)):
            value = json.dumps(value, sort_keys=True)
        params[key] = "null" if value is None else value
    return params


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=5,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions():
    import keras
    import tensorflow as tf
    import tensorflow_text

    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "tensorflow_text": tensorflow_text.__version__, "mlflow": mlflow.__version__,
            "python": platform.python_version()}


def run_tags(config, dataset_hash=None):
    tags = {
        "zoo.model": config["model"],
        "zoo.task": config.get("task", ""),
        "zoo.attention": str(config.get("attention")),
        "zoo.dataset": config.get("dataset", ""),
        "git.commit": git_commit(),
    }
    if dataset_hash:
        tags["zoo.dataset_hash"] = dataset_hash
    tags.update({f"version.{name}": version for name, version in package_versions().items()})
    return tags


def run_name(config, short_id):
    return f"{config['model']}-{config.get('attention')}-{short_id}"
