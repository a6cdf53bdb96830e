"""Export a trained model as a TF Serving SavedModel: raw text in, task outputs out.

Tokenization and detokenization (tf-text ops that stock TF Serving links) wrap a numeric core
compiled with XLA (`tf.function(jit_compile=True)`); TF Serving must run with
`--xla_cpu_compilation_enabled=true` to execute it.

The serving function cuts the source to the model's `max_source_tokens`, pads its length to a
few widths (8, 16, 24, 32, 48, 64, 96, 128 for translators) and the batch to a few bucket sizes,
so a client can trigger a bounded number of XLA compilations; each version gets TF Serving
warm-up requests (`assets.extra/tf_serving_warmup_requests`) for every (batch bucket, padded
length up to 32): the XLA compilations of those shapes happen when the server loads the version
(`--enable_model_warmup`, the default), not on the first requests. What one request may cost is
in `assets.extra/zoo_export.json` under `limits` (`max_source_tokens`, and for generators
`max_decode_steps`), which the server reads. With `check_ops=True` the
staged SavedModel must pass `export.op_check.check_saved_model` before it is published.
"""

import json
import re
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

import zoo  # noqa: F401  (registers the zoo's Keras classes for loading)
from export.repository import publish_version
from zoo.models.translator_base import source_length_buckets
from zoo.text import PAD_ID

METADATA_FILE = "zoo_export.json"
# One warm-up request per (batch size, padded source length). The serving function pads batches
# to these sizes (the `allowed_batch_sizes` of serving/tf_serving/batching_parameters.txt, so
# server-side batching pads to the same ones); source lengths are padded to multiples of 8 by
# `encode_texts` (then 48, 64, ...), and most Multi30k sentences fit in 32 subwords.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
WARMUP_SOURCE_LENGTHS = (8, 16, 24, 32)
_WARMUP_TEXT = ("Ein Mann mit einem roten Hut fährt mit dem Fahrrad durch die Straßen der "
                "Stadt , während zwei kleine Hunde im Schnee neben einer Gruppe von Kindern am "
                "Strand spielen und eine Frau ein Buch liest .")


def pad_batch(ids, buckets):
    """Pads `[batch, S]` ids to the next batch size in `buckets` (then to multiples of the
    largest) by repeating the first row, so that XLA sees a handful of batch shapes (the ones
    the warm-up requests compile). Copies of a real row end decoding with it: no extra steps."""
    batch = tf.shape(ids)[0]
    table = tf.constant(buckets, tf.int32)
    largest = buckets[-1]
    index = tf.minimum(tf.searchsorted(table, tf.reshape(batch, [1]))[0], len(buckets) - 1)
    padded = tf.where(batch > largest, (batch + largest - 1) // largest * largest,
                      tf.gather(table, index))
    padded = tf.where(batch == 0, 0, padded)
    return tf.concat([ids, tf.tile(ids[:1], [padded - batch, 1])], axis=0)


SERVING_MODULES = {}


def register_serving_module(task):
    """Class decorator: the `tf.Module` that exports models of `task`.

    The class takes `(model, jit_compile=True, batch_buckets=BATCH_BUCKETS)` and has:
    `serve` (a `tf.function` with an input signature: the `serving_default` signature),
    `signatures()` (name → concrete function; may add e.g. `classification`),
    `warmup_requests(batch_sizes, lengths)` (a list of `{input name: list of values}`, each
    one TF Serving warm-up request of the `serving_default` signature) and `limits()` (the
    export metadata's `limits`: at least `max_source_tokens`, the ids per source the core
    sees, EOS included; generators add `max_decode_steps`).
    """
    def register(cls):
        SERVING_MODULES[task] = cls
        return cls

    return register


# The other tasks' serving modules, each in its own module of this package.
_TASK_MODULES = ("export.summarizer_serving", "export.qa_serving", "export.sentiment_serving")


def serving_module_class(task):
    """The registered serving module class of `task`."""
    import importlib

    for name in _TASK_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # a module not written yet is fine; a broken one is not
                raise
    if task not in SERVING_MODULES:
        raise ValueError(f"no serving module for task {task!r} (have: "
                         f"{', '.join(sorted(SERVING_MODULES))})")
    return SERVING_MODULES[task]


def model_task(model):
    """The task a trained model serves (its class's `task`, translation by default)."""
    return getattr(model, "task", None) or "translation"


@register_serving_module("translation")
class TranslatorServingModule(tf.Module):
    """`serving_default`: `text` (string `[batch]`) → `translation` (string `[batch]`),
    `attention` (float32 `[batch, target, source]`), `source_tokens`/`target_tokens` (string,
    padded with ""), `target_lengths` (int32 `[batch]`), `source_truncated` (bool `[batch]`:
    the source was longer than `max_source_tokens` ids and only its beginning was translated).

    The numeric core sees bucketed shapes only: source cut to `max_source_tokens` and padded to
    `source_length_buckets` (`encode_texts`), batch padded to `batch_buckets` (`pad_batch`),
    at most `max_decode_steps` target steps; outputs are cut back."""

    def __init__(self, model, jit_compile=True, batch_buckets=BATCH_BUCKETS):
        super().__init__(name="translator")
        # The Keras model is not tracked: saving it would also save every tf.function it holds
        # (e.g. the jit-compiled greedy decoder that `model.translate` caches), so a no-XLA
        # export would still contain XLA functions. Its variables and tokenizer are tracked.
        object.__setattr__(self, "model", model)
        self.model_variables = list(model.variables)
        self.tokenizer = model.tokenizer
        self.batch_buckets = tuple(batch_buckets)
        self.core = tf.function(model.greedy_decode, jit_compile=jit_compile)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        source_ids, truncated = self.model.encode_texts(text, return_truncated=True)
        batch = tf.shape(source_ids)[0]
        result = self.core(pad_batch(source_ids, self.batch_buckets))
        ids = result["ids"][:batch]
        return {
            "translation": self.model.decode_ids(ids),
            "attention": tf.cast(result["attention"][:batch], tf.float32),
            "source_tokens": self._tokens(source_ids),
            "target_tokens": self._tokens(ids),
            "target_lengths": result["lengths"][:batch],
            "source_truncated": truncated,
        }

    def limits(self):
        return {"max_source_tokens": self.model.max_source_tokens,
                "max_decode_steps": self.model.max_decode_steps,
                "source_lengths": list(source_length_buckets(self.model.max_source_tokens))}

    def _tokens(self, ids):
        pieces = self.tokenizer.id_to_string(ids)
        return tf.where(tf.equal(ids, PAD_ID), tf.constant(""), pieces)

    def signatures(self):
        return {"serving_default": self.serve.get_concrete_function()}

    def warmup_requests(self, batch_sizes, lengths=WARMUP_SOURCE_LENGTHS):
        texts = warmup_texts(self.model, lengths)
        self.warmup_lengths = list(texts)
        return [{"text": [text] * batch} for text in texts.values() for batch in batch_sizes]


def warmup_texts(model, lengths=WARMUP_SOURCE_LENGTHS):
    """`{padded source length: text}` for the lengths of `lengths` that German words reach (the
    longest text of each bucket), measured with the model's own tokenizer."""
    texts, words = {}, []
    for word in _WARMUP_TEXT.split() * 20:
        words.append(word)
        text = " ".join(words)
        length = int(tf.shape(model.encode_texts(tf.constant([text])))[1])
        if length > max(lengths):
            break
        if length in lengths:
            texts[length] = text
    return dict(sorted(texts.items()))


def export_model(model, model_dir="export", name=None, jit_compile=True, source=None,
                 task=None, batch_buckets=BATCH_BUCKETS, warmup_batch_sizes=None,
                 warmup_lengths=WARMUP_SOURCE_LENGTHS, check_ops=False,
                 tf_serving_version=None):
    """Write `model` as the next version of `<model_dir>/<name>/`, atomically; refresh
    `<model_dir>/models.config`. Returns the version directory.

    The serving function pads batches to `batch_buckets`. Writes TF Serving warm-up requests for
    every batch size in `warmup_batch_sizes` (default: `batch_buckets`) and padded source length
    in `warmup_lengths` (empty: no warm-up file). With `check_ops`, the op check
    (`export.op_check`, against stock TF Serving >= `tf_serving_version`) must pass before the
    version is published: a failing check raises `OpCheckError` and publishes nothing; its
    summary is kept in `assets.extra/zoo_export.json` (`op_check`)."""
    from serving.warmup import write_warmup_requests

    name = name or model.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"model name {name!r} must be letters, digits, '_', '.', '-'")
    task = task or model_task(model)
    module = serving_module_class(task)(model, jit_compile=jit_compile,
                                        batch_buckets=batch_buckets)
    if warmup_batch_sizes is None:
        warmup_batch_sizes = batch_buckets
    signatures = module.signatures()
    metadata = {"model": name, "task": task, "jit_compile": jit_compile,
                "config": model.get_config() | {"tokenizer": "(in the graph)"},
                "source": source or {}, "batch_buckets": list(batch_buckets),
                "limits": module.limits()}
    warmup = []
    if warmup_batch_sizes and warmup_lengths:
        warmup = module.warmup_requests(warmup_batch_sizes, warmup_lengths)
        metadata["warmup"] = {"requests": len(warmup), "batch_sizes": list(warmup_batch_sizes),
                              "source_lengths": getattr(module, "warmup_lengths",
                                                        list(warmup_lengths))}

    def write(path):
        tf.saved_model.save(module, str(path), signatures=signatures)
        extra = Path(path) / "assets.extra"
        extra.mkdir(exist_ok=True)
        if warmup:
            write_warmup_requests(path, name, warmup)
        if check_ops:
            from export.op_check import DEFAULT_TF_SERVING_VERSION, check_saved_model

            report = check_saved_model(path, tf_serving_version or DEFAULT_TF_SERVING_VERSION)
            metadata["op_check"] = {
                "tf_serving_version": report.tf_serving_version, "ok": report.ok,
                "op_types": len(report.ops), "library_functions": report.functions,
                "tf_text_ops": report.tf_text_ops}
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
        return keras.saving.load_model(path, compile=False), {"path": str(path.resolve())}
    if path.is_dir() and (path / "model.keras").is_file():
        return (keras.saving.load_model(path / "model.keras", compile=False),
                {"path": str(path.resolve())})
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
    return keras.saving.load_model(local, compile=False), {
        "run_id": run_id, "tracking_uri": tracking.tracking_uri()}
