"""Model warm-up files, TF Serving's format: `<version>/assets.extra/tf_serving_warmup_requests`.

The file is a TFRecord of `PredictionLog` protos. `tensorflow_model_server
--enable_model_warmup` and `serving.server` replay the requests after loading a version and
before it serves, so the XLA compilations of the shapes they cover happen off the request path.
A version whose warm-up requests fail is not loaded (the previous version keeps serving), as in
TF Serving.

The exporter can write one with `write_warmup_requests`, e.g. one request per batch size
in the batching parameters' `allowed_batch_sizes`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2

from serving.tensors import Limits, has_strings, request_to_arrays

log = logging.getLogger("serving")

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


def warmup_path(saved_model_dir: str | os.PathLike) -> Path:
    return Path(saved_model_dir) / WARMUP_FILE


def write_warmup_requests(saved_model_dir: str | os.PathLike, model_name: str,
                          inputs: Iterable[Mapping[str, object]],
                          signature_name: str = "serving_default") -> Path:
    """Writes Predict warm-up requests, one per mapping of input name to values."""
    path = warmup_path(saved_model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for request_inputs in inputs:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature_name
            for key, value in request_inputs.items():
                array = np.asarray(value, dtype=object if has_strings(value) else None)
                request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
            record = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(record.SerializeToString())
            count += 1
    if count > MAX_WARMUP_RECORDS:
        raise ValueError(f"{count} warm-up records; TF Serving reads at most {MAX_WARMUP_RECORDS}")
    return path


def read_warmup_requests(saved_model_dir: str | os.PathLike
                         ) -> list[prediction_log_pb2.PredictionLog]:
    path = warmup_path(saved_model_dir)
    if not path.exists():
        return []
    records = []
    for raw in tf.data.TFRecordDataset(os.fspath(path)).take(MAX_WARMUP_RECORDS + 1):
        records.append(prediction_log_pb2.PredictionLog.FromString(raw.numpy()))
    if len(records) > MAX_WARMUP_RECORDS:
        raise ValueError(f"more than {MAX_WARMUP_RECORDS} warm-up records in {path}")
    return records


def replay(servable, limits=None) -> int:
    """Runs a servable's warm-up requests; returns how many. Raises on the first failure."""
    limits = limits or Limits()
    records = read_warmup_requests(servable.path)
    for index, record in enumerate(records):
        kind = record.WhichOneof("log_type")
        if kind == "predict_log":
            request = record.predict_log.request
            name = request.model_spec.signature_name or "serving_default"
            arrays = request_to_arrays(request.inputs, servable.signature(name), limits)
            servable.run(name, arrays, list(request.output_filter) or None)
        elif kind == "classify_log":
            request: classification_pb2.ClassificationRequest = record.classify_log.request
            name = request.model_spec.signature_name or "serving_default"
            signature = servable.signature(name)
            alias = "inputs" if "inputs" in signature.inputs else next(iter(signature.inputs))
            examples = [e.SerializeToString() for e in request.input.example_list.examples]
            servable.run(name, {alias: np.array(examples, dtype=object)},
                         [k for k in ("classes", "scores") if k in signature.outputs])
        else:
            log.warning("model '%s' version %d: warm-up record %d (%s) not supported, skipped",
                        servable.name, servable.version, index, kind)
    if records:
        log.info("model '%s' version %d: replayed %d warm-up requests", servable.name,
                 servable.version, len(records))
    return len(records)
