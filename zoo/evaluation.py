"""`zoo evaluate`: the task metrics of a trained run or an exported SavedModel on a data split.

A run (id, `runs:/`, `models:/`, a model name: its newest finished run, a `.keras` file or a run
directory) is scored with its Keras model and its own training config; the metrics are logged
to that run as `<split>_<metric>`. An export (`export/<model>/<version>` or `export/<model>`:
its newest version) is scored through its `serving_default` signature — what TF Serving would
answer — with the config of the run it came from (else the model's registered config); the
metrics go to a new run of the task's experiment, tagged with the export path.
"""

import json
import tempfile
import time
from pathlib import Path

import mlflow
import yaml

from zoo import tracking
from zoo.models import catalog
from zoo.tasks import get_task
from zoo.tracking.loading import load_trained

METADATA = Path("assets.extra") / "zoo_export.json"


def export_version_dir(source):
    """The SavedModel directory `source` names (a version directory, or a model directory:
    its newest version), or None when `source` is not an export."""
    path = Path(str(source))
    if (path / "saved_model.pb").is_file():
        return path
    if path.is_dir():
        versions = [p for p in path.iterdir() if p.name.isascii() and p.name.isdigit()
                    and (p / "saved_model.pb").is_file()]
        if versions:
            return max(versions, key=lambda p: int(p.name))
    return None


def evaluate(source, split="test", limit=None, overrides=None, log=True):
    """Score `source` on `split` (the first `limit` examples if given). Returns
    `(metrics, description)`; metrics are prefixed with the split."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be train, valid or test, got {split!r}")
    tracking.configure()
    version_dir = export_version_dir(source)
    if version_dir is not None:
        return _evaluate_export(version_dir, split, limit, overrides, log)
    return _evaluate_run(source, split, limit, overrides, log)


def _limited(examples, limit):
    if not limit:
        return examples
    if isinstance(examples, tuple):  # parallel lists (sources, targets)
        return tuple(column[:limit] for column in examples)
    return examples[:limit]


def _prefixed(split, scores):
    return {f"{split}_{name}": float(value) for name, value in scores.items()}


def _evaluate_run(source, split, limit, overrides, log):
    model, origin = load_trained(source)
    run_id = origin.get("run_id")
    config = _run_config(run_id) if run_id else None
    if config is None:
        config = catalog.resolve_config(model.name)
    config = catalog.resolve_config(config["model"],
                                    {k: v for k, v in {**config, **(overrides or {})}.items()
                                     if k != "model"})
    task = get_task(config["task"])
    examples = _limited(task.read_split(config, split), limit)
    started = time.monotonic()
    scores = _prefixed(split, task.evaluate(model, config, examples))
    scores[f"{split}_evaluate_seconds"] = time.monotonic() - started
    if log and run_id:
        client = mlflow.MlflowClient()
        timestamp = int(time.time() * 1000)
        for name, value in scores.items():
            client.log_metric(run_id, name, value, timestamp=timestamp)
    return scores, {"model": config["model"], "task": task.name, "run_id": run_id,
                    "split": split, "examples": _count(examples)}


def _evaluate_export(version_dir, split, limit, overrides, log):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tf-text ops the SavedModel uses)

    metadata = json.loads((version_dir / METADATA).read_text()) \
        if (version_dir / METADATA).is_file() else {}
    run_id = (metadata.get("source") or {}).get("run_id")
    config = _run_config(run_id) if run_id else None
    name = metadata.get("model") or version_dir.parent.name
    if config is None:
        config = catalog.resolve_config(name)
    config = catalog.resolve_config(config["model"],
                                    {k: v for k, v in {**config, **(overrides or {})}.items()
                                     if k != "model"})
    task = get_task(config["task"])
    examples = _limited(task.read_split(config, split), limit)
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    started = time.monotonic()
    scores = _prefixed(split, task.evaluate_served(signature, config, examples))
    scores[f"{split}_evaluate_seconds"] = time.monotonic() - started
    description = {"model": config["model"], "task": task.name, "export": str(version_dir),
                   "split": split, "examples": _count(examples), "run_id": None}
    if log:
        tracking.use_experiment(task.name)
        with mlflow.start_run(run_name=f"evaluate {name} v{version_dir.name}") as run:
            mlflow.set_tags({"zoo.model": config["model"], "zoo.evaluated_export":
                             str(version_dir.resolve()), "zoo.source_run": run_id or ""})
            mlflow.log_metrics(scores)
            description["run_id"] = run.info.run_id
    return scores, description


def _count(examples):
    return len(examples[0]) if isinstance(examples, tuple) else len(examples)


def _run_config(run_id):
    """The training config a run logged (`config.yaml`), or None."""
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="config.yaml",
            dst_path=tempfile.mkdtemp(prefix="zoo-eval-"))
    except (mlflow.exceptions.MlflowException, OSError):
        return None
    return yaml.safe_load(Path(path).read_text())
