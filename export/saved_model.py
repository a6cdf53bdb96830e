"""Export a trained model as a TF Serving SavedModel: raw text in, task outputs out.

Tokenization and detokenization (tf-text ops that stock TF Serving links) wrap a numeric core
compiled with XLA (`tf.function(jit_compile=True)`); TF Serving must run with
`--xla_cpu_compilation_enabled=true` to execute it.
"""

import json
import re
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

import zoo  # noqa: F401  (registers the zoo's Keras classes for loading)
from export.repository import publish_version
from zoo.text import PAD_ID

METADATA_FILE = "zoo_export.json"


class TranslatorServingModule(tf.Module):
    """`serving_default`: `text` (string `[batch]`) → `translation` (string `[batch]`),
    `attention` (float32 `[batch, target, source]`), `source_tokens`/`target_tokens` (string,
    padded with ""), `target_lengths` (int32 `[batch]`)."""

    def __init__(self, model, jit_compile=True):
        super().__init__(name="translator")
        self.model = model
        self.tokenizer = model.tokenizer
        self.core = tf.function(model.greedy_decode, jit_compile=jit_compile)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        source_ids = self.model.encode_texts(text)
        result = self.core(source_ids)
        return {
            "translation": self.model.decode_ids(result["ids"]),
            "attention": tf.cast(result["attention"], tf.float32),
            "source_tokens": self._tokens(source_ids),
            "target_tokens": self._tokens(result["ids"]),
            "target_lengths": result["lengths"],
        }

    def _tokens(self, ids):
        pieces = self.tokenizer.id_to_string(ids)
        return tf.where(tf.equal(ids, PAD_ID), tf.constant(""), pieces)


SERVING_MODULES = {"translation": TranslatorServingModule}


def export_model(model, model_dir="export", name=None, jit_compile=True, source=None,
                 task="translation"):
    """Write `model` as the next version of `<model_dir>/<name>/`, atomically; refresh
    `<model_dir>/models.config`. Returns the version directory."""
    name = name or model.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"model name {name!r} must be letters, digits, '_', '.', '-'")
    module = SERVING_MODULES[task](model, jit_compile=jit_compile)
    signatures = {"serving_default": module.serve.get_concrete_function()}
    metadata = {"model": name, "task": task, "jit_compile": jit_compile,
                "config": model.get_config() | {"tokenizer": "(in the graph)"},
                "source": source or {}}

    def write(path):
        tf.saved_model.save(module, str(path), signatures=signatures)
        extra = Path(path) / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))

    version_dir = publish_version(write, Path(model_dir) / name)
    from serving.tf_serving import write_models_config

    write_models_config(model_dir)
    return version_dir


def load_for_export(source):
    """A trained Keras model and a description of where it came from.

    `source` is a `.keras` file, a run directory holding `model.keras`, an MLflow run id,
    `runs:/<run_id>`, `models:/<name>/<version>`, or a registered model name (its newest run).
    """
    text = str(source)
    path = Path(text)
    if path.suffix == ".keras" and path.is_file():
        return keras.saving.load_model(path), {"path": str(path.resolve())}
    if path.is_dir() and (path / "model.keras").is_file():
        return keras.saving.load_model(path / "model.keras"), {"path": str(path.resolve())}
    return _load_from_mlflow(text)


def _load_from_mlflow(text):
    import mlflow

    from zoo import tracking

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
    return keras.saving.load_model(local), {"run_id": run_id,
                                             "tracking_uri": tracking.tracking_uri()}
