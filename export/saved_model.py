"""Export a trained model as a TF Serving SavedModel: raw text in, task outputs out.

The SavedModel is the task's serving module (`zoo.models.serving_modules`): tokenization and
detokenization (tf-text ops that stock TF Serving links) wrap a numeric core compiled with XLA
(`tf.function(jit_compile=True)`); TF Serving must run with `--xla_cpu_compilation_enabled=true`
to execute it.

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
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from export.op_check import DEFAULT_TF_SERVING_VERSION, check_saved_model
from export.repository import publish_version
from serving.tf_serving import write_models_config
from serving.warmup import write_warmup_requests
from zoo.models.serving_modules import (
    BATCH_BUCKETS,
    WARMUP_SOURCE_LENGTHS,
    model_task,
    serving_module_class,
)
from zoo.tracking.registry import tag_export

METADATA_FILE = "zoo_export.json"


def export_model(model: keras.Model, model_dir: str | os.PathLike = "export",
                 name: str | None = None, jit_compile: bool = True,
                 source: dict[str, Any] | None = None, task: str | None = None,
                 batch_buckets: Sequence[int] = BATCH_BUCKETS,
                 warmup_batch_sizes: Sequence[int] | None = None,
                 warmup_lengths: Sequence[int] = WARMUP_SOURCE_LENGTHS, check_ops: bool = False,
                 tf_serving_version: str | None = None, quantize: str | None = None) -> Path:
    """Write `model` as the next version of `<model_dir>/<name>/`, atomically; refresh
    `<model_dir>/models.config`. Returns the version directory.

    The serving function pads batches to `batch_buckets`. Writes TF Serving warm-up requests for
    every batch size in `warmup_batch_sizes` (default: `batch_buckets`) and padded source length
    in `warmup_lengths` (empty: no warm-up file). With `check_ops`, the op check
    (`export.op_check`, against stock TF Serving >= `tf_serving_version`) must pass before the
    version is published: a failing check raises `OpCheckError` and publishes nothing; its
    summary is kept in `assets.extra/zoo_export.json` (`op_check`). `quantize="int8"` exports
    a copy of `model` quantized after training (`quantized_copy`: int8 weights with a scale
    per output channel, inputs quantized per row); `model` itself is left as it is. The
    precision is recorded in the metadata (`precision`) and, for a model from an MLflow run
    (`source["run_id"]`), as a tag of that run (`zoo.export.<name>.<version>`)."""
    name = name or model.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"model name {name!r} must be letters, digits, '_', '.', '-'")
    task = task or model_task(model)
    if quantize is not None:
        model = quantized_copy(model, quantize)
    module = serving_module_class(task)(model, jit_compile=jit_compile,
                                        batch_buckets=batch_buckets)
    if warmup_batch_sizes is None:
        warmup_batch_sizes = batch_buckets
    signatures = module.signatures()
    metadata = {"model": name, "task": task, "jit_compile": jit_compile,
                "precision": quantize or "float32",
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
            report = check_saved_model(path, tf_serving_version or DEFAULT_TF_SERVING_VERSION)
            metadata["op_check"] = {
                "tf_serving_version": report.tf_serving_version, "ok": report.ok,
                "op_types": len(report.ops), "library_functions": report.functions,
                "tf_text_ops": report.tf_text_ops}
        (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))

    version_dir = publish_version(write, Path(model_dir) / name)
    write_models_config(model_dir)
    run_id = (source or {}).get("run_id")
    if run_id:
        tag_export(run_id, f"{name}.{version_dir.name}",
                   f"{metadata['precision']}, jit_compile={jit_compile}, {version_dir}")
    return version_dir


QUANTIZATION_MODES = ("int8",)


def quantized_copy(model: keras.Model, mode: str) -> keras.Model:
    """A copy of `model` (through a `.keras` file) quantized with Keras's post-training
    quantization, `copy.quantize(mode)`: every layer that supports it (`Dense`, `Embedding`,
    the decoders' `QuantizableLSTMCell`) holds int8 weights; the others stay float and say so
    in a warning, which is silenced here (`model.quantize` warns once per such layer)."""
    if mode not in QUANTIZATION_MODES:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATION_MODES)}, got "
                         f"{mode!r}")
    with tempfile.TemporaryDirectory(prefix="zoo-quantize-") as scratch:
        path = Path(scratch) / "model.keras"
        model.save(path)
        copy = keras.saving.load_model(path, compile=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
        copy.quantize(mode)
    return copy
