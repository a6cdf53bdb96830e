"""A client for TF Serving's gRPC API (for `serving.server` and `tensorflow_model_server`).

Only public TF Serving messages and stubs are used (`PredictRequest` over
`PredictionServiceStub`, `ClassificationRequest`, `GetModelMetadataRequest`,
`GetModelStatusRequest`), so nothing here depends on which server answers:

```python
from serving import Client

with Client("localhost:8500") as client:
    client.translate("luong_translator", ["Ein Mann fährt Fahrrad."])
    client.predict("luong_translator", {"text": ["Ein Mann fährt Fahrrad."]})["attention"]
```

Calls are retried on UNAVAILABLE and RESOURCE_EXHAUSTED with exponential backoff (`retries`
extra attempts), each attempt has a deadline (`timeout`, overridable per call), and inputs
with more than `max_batch_size` rows are sent as several requests whose outputs are joined
again (padding trailing dimensions, e.g. `attention`, to the largest with zeros / empty
strings).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Self

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from serving.tensors import has_strings

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
_STATES = get_model_status_pb2.ModelVersionStatus.State
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class ServingError(RuntimeError):
    """A failed call: `code` (`grpc.StatusCode`) and `details` from the server."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


def _pem(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _as_strings(texts: str | Iterable[str]) -> list[str]:
    if isinstance(texts, (str, bytes)):
        return [texts]
    return list(texts)


def _to_array(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, tf.Tensor):
        array = value.numpy()
    elif isinstance(value, (list, tuple)) and has_strings(value):
        array = np.array(value, dtype=object)
    else:
        array = np.asarray(value)
    if array.dtype.kind == "U":  # numpy unicode -> utf-8 bytes (DT_STRING)
        array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
    elif array.dtype.kind == "O":
        array = np.vectorize(lambda s: s.encode("utf-8") if isinstance(s, str) else s,
                             otypes=[object])(array) if array.size else array
    return array


def _join(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    if any(p.ndim == 0 for p in parts):
        return parts[0]
    trailing = tuple(max(dims) for dims in zip(*(p.shape[1:] for p in parts), strict=True))
    padded = []
    for part in parts:
        widths = [(0, 0)] + [(0, t - s) for s, t in zip(part.shape[1:], trailing, strict=True)]
        fill = b"" if part.dtype == object else 0
        padded.append(np.pad(part, widths, constant_values=fill) if any(w[1] for w in widths)
                      else part)
    return np.concatenate(padded, axis=0)


def _decode(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in values.reshape(-1)]


class Client:
    """TF Serving gRPC client.

    Args:
        target: `host:port` of the server.
        timeout: default deadline per attempt, in seconds.
        retries: extra attempts when the server is UNAVAILABLE (exponential backoff from
            `backoff` seconds, doubling, with jitter, capped at `max_backoff`).
        max_batch_size: most rows per request; larger inputs are split (`None`: never).
        max_message_size: largest request/response in bytes.
        channel: an existing `grpc.Channel` to use instead of creating one.
        credentials: `grpc.ChannelCredentials` for a TLS channel; or build them from
        root_certificates, private_key, certificate_chain: PEM bytes (or str) of the CA that
            signed the server's certificate, and the client's own key and certificate for
            mutual TLS (`SSLConfig.client_verify` on the server).
        server_name: the name to check the server's certificate against, when it differs from
            the host in `target` (`grpc.ssl_target_name_override`).
        retry_codes: status codes retried with backoff: UNAVAILABLE (server starting, batching
            queue full) and RESOURCE_EXHAUSTED (admission control: server overloaded).
    """

    def __init__(self, target: str, timeout: float = 10.0, retries: int = 3, *,
                 max_batch_size: int | None = 64, backoff: float = 0.1, max_backoff: float = 2.0,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 channel: grpc.Channel | None = None,
                 credentials: grpc.ChannelCredentials | None = None,
                 root_certificates: bytes | str | None = None,
                 private_key: bytes | str | None = None,
                 certificate_chain: bytes | str | None = None,
                 server_name: str | None = None,
                 retry_codes: Iterable[grpc.StatusCode] = (grpc.StatusCode.UNAVAILABLE,
                                                           grpc.StatusCode.RESOURCE_EXHAUSTED)):
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.max_batch_size = max_batch_size
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.retry_codes = frozenset(retry_codes)
        self._owns_channel = channel is None
        options: list[tuple[str, int | str]] = [
            ("grpc.max_send_message_length", max_message_size),
            ("grpc.max_receive_message_length", max_message_size)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if credentials is None and (root_certificates or private_key or certificate_chain):
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(root_certificates), private_key=_pem(private_key),
                certificate_chain=_pem(certificate_chain))
        if channel is None:
            channel = (grpc.secure_channel(target, credentials, options=options)
                       if credentials is not None
                       else grpc.insecure_channel(target, options=options))
        self.channel = channel
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    # -- plumbing
    def close(self) -> None:
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method, request, timeout: float | None):
        deadline = self.timeout if timeout is None else timeout
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=deadline)
            except grpc.RpcError as error:
                code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
                if code in self.retry_codes and attempt < self.retries:
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, self.max_backoff)
                    continue
                details = error.details() if hasattr(error, "details") else str(error)
                raise ServingError(code, details or "") from None
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _spec(spec, model: str, version: int | None, label: str | None,
              signature_name: str | None = None) -> None:
        if version is not None and label is not None:
            raise ValueError("give a version or a label, not both")
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = label
        if signature_name:
            spec.signature_name = signature_name

    # -- Predict
    def predict(self, model: str, inputs: Mapping[str, object],
                signature_name: str = "serving_default", version: int | None = None,
                label: str | None = None, timeout: float | None = None,
                output_filter: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Predict; `inputs` maps input names to arrays (str lists become DT_STRING)."""
        arrays = {k: _to_array(v) for k, v in inputs.items()}
        rows = {a.shape[0] for a in arrays.values() if a.ndim >= 1}
        chunk = self.max_batch_size
        if len(rows) == 1 and chunk and rows.copy().pop() > chunk:
            total = rows.pop()
            parts = [self._predict_once(model, {k: (a[i:i + chunk] if a.ndim else a)
                                                for k, a in arrays.items()},
                                        signature_name, version, label, timeout, output_filter)
                     for i in range(0, total, chunk)]
            return {k: _join([p[k] for p in parts]) for k in parts[0]}
        return self._predict_once(model, arrays, signature_name, version, label, timeout,
                                  output_filter)

    def _predict_once(self, model, arrays, signature_name, version, label, timeout,
                      output_filter) -> dict[str, np.ndarray]:
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label, signature_name)
        for key, array in arrays.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
        if output_filter:
            request.output_filter.extend(output_filter)
        response = self._call(self._predict.Predict, request, timeout)
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def _strings_out(self, outputs: Mapping[str, np.ndarray], preferred: Sequence[str]
                     ) -> list[str]:
        for key in preferred:
            if key in outputs:
                return _decode(outputs[key])
        for key in sorted(outputs):  # else the first 1-D string output
            value = outputs[key]
            if value.dtype == object and value.ndim == 1:
                return _decode(value)
        raise KeyError(f"no string output among {sorted(outputs)}; expected {list(preferred)}")

    def translate(self, model: str, texts: str | Iterable[str], **kwargs) -> list[str]:
        """Translations (output `translation`) of `texts` (input `text`)."""
        texts = _as_strings(texts)
        if not texts:
            return []
        outputs = self.predict(model, {"text": texts}, output_filter=["translation"], **kwargs)
        return self._strings_out(outputs, ["translation"])

    def summarize(self, model: str, texts: str | Iterable[str], **kwargs) -> list[str]:
        """Summaries (output `summary`, else the first string output) of `texts`."""
        texts = _as_strings(texts)
        if not texts:
            return []
        outputs = self.predict(model, {"text": texts}, **kwargs)
        return self._strings_out(outputs, ["summary", "summaries", "translation"])

    def respond(self, model: str, histories: str | Iterable[str], **kwargs) -> list[str]:
        """Next turns (output `response`) of dialogue `histories` (input `text`: turns
        separated by newlines, each `#PersonN#: ...`)."""
        histories = _as_strings(histories)
        if not histories:
            return []
        outputs = self.predict(model, {"text": histories}, output_filter=["response"], **kwargs)
        return self._strings_out(outputs, ["response"])

    def answer(self, model: str, questions: str | Iterable[str],
               contexts: str | Iterable[str], **kwargs) -> list[str]:
        """Answers (output `answer`) to `questions` (input `question`) over `contexts`."""
        questions, contexts = _as_strings(questions), _as_strings(contexts)
        if len(contexts) == 1 and len(questions) > 1:
            contexts = contexts * len(questions)
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        if not questions:
            return []
        outputs = self.predict(model, {"question": questions, "context": contexts}, **kwargs)
        return self._strings_out(outputs, ["answer", "answers", "answer_text"])

    # -- Classify
    def classify(self, model: str, examples: str | Iterable[str | Mapping | example_pb2.Example],
                 signature_name: str = "classification", version: int | None = None,
                 label: str | None = None, timeout: float | None = None,
                 feature: str = "text") -> list[list[tuple[str, float]]]:
        """Classify API: one `[(label, score), ...]` list per example.

        `examples` may be texts (put in the bytes feature `feature`), dicts of feature name
        to value(s) or `tf.train.Example` protos.
        """
        items = [examples] if isinstance(examples, (str, bytes, Mapping)) else list(examples)
        protos = [self._example(item, feature) for item in items]
        results = []
        chunk = self.max_batch_size or len(protos) or 1
        for start in range(0, len(protos), chunk):
            request = classification_pb2.ClassificationRequest()
            self._spec(request.model_spec, model, version, label, signature_name)
            request.input.example_list.examples.extend(protos[start:start + chunk])
            response = self._call(self._predict.Classify, request, timeout)
            for classifications in response.result.classifications:
                results.append([(c.label, c.score) for c in classifications.classes])
        return results

    @staticmethod
    def _example(item, feature: str) -> example_pb2.Example:
        if isinstance(item, example_pb2.Example):
            return item
        if isinstance(item, (str, bytes)):
            item = {feature: item}
        example = example_pb2.Example()
        for name, value in item.items():
            values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
            target = example.features.feature[name]
            if all(isinstance(v, (str, bytes)) for v in values):
                target.bytes_list.CopyFrom(feature_pb2.BytesList(
                    value=[v.encode("utf-8") if isinstance(v, str) else v for v in values]))
            elif all(isinstance(v, (int, np.integer)) for v in values):
                target.int64_list.CopyFrom(feature_pb2.Int64List(value=[int(v) for v in values]))
            else:
                target.float_list.CopyFrom(feature_pb2.FloatList(value=[float(v) for v in values]))
        return example

    # -- metadata and status
    def metadata(self, model: str, version: int | None = None, label: str | None = None,
                 timeout: float | None = None) -> dict:
        """`{"name", "version", "signatures": {name: {"method_name", "inputs", "outputs"}}}`.

        Inputs/outputs map aliases to
        `{"dtype": "string", "dtype_enum": 7, "shape": [-1], "name": ...}`
        (`shape` is `None` for unknown rank; -1 marks unknown dimensions).
        """
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._spec(request.model_spec, model, version, label)
        request.metadata_field.append("signature_def")
        response = self._call(self._predict.GetModelMetadata, request, timeout)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)

        def tensors(infos):
            out = {}
            for alias, info in sorted(infos.items()):
                shape = (None if info.tensor_shape.unknown_rank
                         else [d.size for d in info.tensor_shape.dim])
                out[alias] = {"dtype": tf.dtypes.as_dtype(info.dtype).name
                              if info.dtype else "invalid",
                              "dtype_enum": info.dtype, "shape": shape, "name": info.name}
            return out

        signatures = {
            name: {"method_name": sig.method_name, "inputs": tensors(sig.inputs),
                   "outputs": tensors(sig.outputs)}
            for name, sig in sorted(signature_map.signature_def.items())
        }
        return {"name": response.model_spec.name, "version": response.model_spec.version.value,
                "signatures": signatures}

    def status(self, model: str, version: int | None = None, timeout: float | None = None
               ) -> list[dict]:
        """GetModelStatus: `[{"version", "state", "error_code", "error_message"}, ...]`."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, None)
        response = self._call(self._models.GetModelStatus, request, timeout)
        return [{"version": s.version, "state": _STATES.Name(s.state),
                 "error_code": _CODE_NAMES.get(s.status.error_code, str(s.status.error_code)),
                 "error_message": s.status.error_message}
                for s in response.model_version_status]

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig | str,
                      timeout: float | None = None) -> None:
        """HandleReloadConfigRequest with a `ModelServerConfig` (proto or text format)."""
        if isinstance(config, str):
            from google.protobuf import text_format

            config = text_format.Parse(config, model_server_config_pb2.ModelServerConfig())
        request = model_management_pb2.ReloadConfigRequest(config=config)
        self._call(self._models.HandleReloadConfigRequest, request, timeout)

    def health(self, service: str = "", timeout: float | None = None) -> str:
        """The gRPC health status name (`SERVING`, `NOT_SERVING`, ...)."""
        response = self._call(self._health.Check,
                              health_pb2.HealthCheckRequest(service=service), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def wait_until_ready(self, model: str | None = None, timeout: float = 30.0) -> None:
        """Blocks until the server answers (and `model` has an AVAILABLE version)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                if model is None:
                    if self.health(timeout=1.0) == "SERVING":
                        return
                elif any(s["state"] == "AVAILABLE" for s in self.status(model, timeout=1.0)):
                    return
            except ServingError as error:
                last = error
            time.sleep(0.1)
        raise TimeoutError(f"server {self.target} not ready after {timeout}s: {last}")

    @staticmethod
    def to_json(message) -> str:  # pragma: no cover - convenience for debugging
        return json_format.MessageToJson(message)

