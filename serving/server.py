"""A TF Serving-compatible gRPC model server in Python.

It implements TF Serving's gRPC API with the servicers shipped in `tensorflow-serving-api`
(`PredictionService`: Predict, GetModelMetadata, Classify; `ModelService`: GetModelStatus,
HandleReloadConfigRequest) plus the standard gRPC health service, so any TF Serving client,
including `serving.Client`, works unchanged against it or against the real
`tensorflow_model_server`. Models run in the Python TensorFlow runtime, which executes
`jit_compile=True` functions with XLA on CPU.

Usage:

```bash
python -m serving.server export/ --port 8500                 # every model in a repository
python -m serving.server --model_config_file export/models.config
python -m serving.server --model_name m --model_base_path export/m \\
    --enable_batching --batching_parameters_file serving/tf_serving/batching_parameters.txt
```

From Python: `serve` (blocking; SIGTERM/SIGINT shut it down gracefully) or
`start_server` (returns a handle with `.port` and `.stop()`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any, Self

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2_grpc
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.admission import Admission, Deadline, WorkLimits, check_token_budget
from serving.batching import BatchingOptions, BatchScheduler
from serving.flags import add_server_arguments, server_kwargs
from serving.health import HealthReporter
from serving.model_manager import (
    DEFAULT_LOAD_RETRY_INTERVAL,
    DEFAULT_MAX_NUM_LOAD_RETRIES,
    DEFAULT_SIGNATURE,
    ModelManager,
    Servable,
)
from serving.tensors import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Limits,
    ServingError,
    check_strings,
    invalid,
    ndarray_to_proto,
    request_to_arrays,
)
from serving.tls import server_credentials
from serving.versions import version_dirs

log = logging.getLogger("serving")
# Re-exported: `serving.server.add_server_arguments`, `WorkLimits`, ... are the public names.
__all__ = ["HealthReporter", "ServerHandle", "WorkLimits", "add_server_arguments", "main",
           "serve", "server_credentials", "server_kwargs", "start_server"]




def _rpc(method):
    """Turns `ServingError` into the RPC status; any other exception into INTERNAL."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(error.code, _clip(error.message))
        except Exception as error:  # a bug must fail this request only, never the server
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, _clip(f"{type(error).__name__}: {error}"))

    return wrapper


def _clip(message: str, limit: int = 2000) -> str:
    """Error details travel in gRPC trailers, whose size is limited (8 KiB by default)."""
    return message if len(message) <= limit else message[:limit] + " ..."


def _version(spec) -> int | None:
    return spec.version.value if spec.HasField("version") else None


class _Runner:
    """Runs a signature under admission control and the request's deadline, through the batch
    scheduler when batching is on."""

    def __init__(self, scheduler: BatchScheduler | None, work: WorkLimits):
        self.scheduler = scheduler
        self.work = work
        self.admission = Admission(work.max_concurrent_requests, work.max_queued_requests)
        self.runs = 0  # signature executions (a batch counts once): what tests and stats read
        self._runs_lock = threading.Lock()

    def __call__(self, servable: Servable, signature: str, inputs: dict[str, np.ndarray],
                 output_keys: tuple[str, ...], context) -> dict[str, np.ndarray]:
        strings = [a for a in inputs.values() if a.dtype == object]
        check_token_budget(strings, servable.limits.get("max_source_tokens"),
                           self.work.max_request_tokens)
        deadline = Deadline.for_rpc(context, self.work.request_timeout)
        deadline.check()

        def run(batch):
            with self._runs_lock:
                self.runs += 1
            return servable.run(signature, batch, output_keys)

        with self.admission.slot(deadline):
            deadline.check()  # it may have waited for the slot
            if self.scheduler is None:
                return run(inputs)
            return self.scheduler.run((servable, signature, output_keys), run, inputs, deadline)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, limits: Limits, runner: _Runner):
        self.manager = manager
        self.limits = limits
        self.runner = runner

    def _resolve(self, spec, api: str = "Predict"):
        servable = self.manager.get(spec.name, _version(spec), spec.version_label or None)
        signature_name = spec.signature_name or DEFAULT_SIGNATURE
        return servable, signature_name, servable.signature(signature_name, api)

    @staticmethod
    def _fill_spec(target, servable: Servable, signature_name: str | None) -> None:
        target.name = servable.name
        target.version.value = servable.version
        if signature_name:
            target.signature_name = signature_name

    @_rpc
    def Predict(self, request, context):
        servable, signature_name, signature = self._resolve(request.model_spec)
        arrays = request_to_arrays(request.inputs, signature, self.limits)
        if request.output_filter:
            unknown = [k for k in request.output_filter if k not in signature.outputs]
            if unknown:
                raise invalid(
                    f"output tensor alias not found in signature: {', '.join(unknown)} Outputs "
                    f"expected to be in the set {{{','.join(sorted(signature.outputs))}}}.")
            if len(set(request.output_filter)) != len(request.output_filter):
                raise invalid("duplicate output tensor alias in output_filter")
            keys = tuple(request.output_filter)
        else:
            keys = tuple(sorted(signature.outputs))
        outputs = self.runner(servable, signature_name, arrays, keys, context)
        response = predict_pb2.PredictResponse()
        self._fill_spec(response.model_spec, servable, signature_name)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(ndarray_to_proto(value))
        return response

    @_rpc
    def GetModelMetadata(self, request, context):
        spec = request.model_spec
        servable = self.manager.get(spec.name, _version(spec), spec.version_label or None)
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise invalid(f"Metadata field {field} is not supported")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in servable.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        self._fill_spec(response.model_spec, servable, None)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def _examples(self, model_input) -> list[example_pb2.Example]:
        kind = model_input.WhichOneof("kind")
        if kind == "example_list":
            examples = list(model_input.example_list.examples)
        elif kind == "example_list_with_context":
            context = model_input.example_list_with_context.context
            examples = []
            for example in model_input.example_list_with_context.examples:
                merged = example_pb2.Example()
                merged.CopyFrom(context)
                merged.MergeFrom(example)
                examples.append(merged)
        else:
            examples = []
        if not examples:
            raise invalid("Input is empty")
        if self.limits.max_batch_size is not None and len(examples) > self.limits.max_batch_size:
            raise invalid(f"input: {len(examples)} examples is more than the limit of "
                          f"{self.limits.max_batch_size}")
        for index, example in enumerate(examples):
            for name, feature in example.features.feature.items():
                if feature.WhichOneof("kind") == "bytes_list":
                    values = np.array(list(feature.bytes_list.value), dtype=object)
                    check_strings(f"example {index}, feature {name}", values, self.limits,
                                  self.limits.require_utf8)
        return examples

    @_rpc
    def Classify(self, request, context):
        servable, signature_name, signature = self._resolve(request.model_spec, "Classify")
        string_inputs = [k for k, v in signature.inputs.items() if v.dtype == types_pb2.DT_STRING]
        if "inputs" in signature.inputs:
            alias = "inputs"
        elif len(signature.inputs) == 1 and string_inputs:
            alias = string_inputs[0]
        else:
            raise invalid(f"Expected one input Tensor of serialized tf.Examples in signature "
                          f"'{signature_name}', got {sorted(signature.inputs)}")
        keys = tuple(k for k in ("classes", "scores") if k in signature.outputs)
        if not keys:
            raise invalid(f"Expected classification signature outputs 'classes' and/or "
                          f"'scores' in signature '{signature_name}', got "
                          f"{sorted(signature.outputs)}")
        examples = self._examples(request.input)
        serialized = [e.SerializeToString() for e in examples]
        inputs = {alias: np.array(serialized, dtype=object)}
        outputs = self.runner(servable, signature_name, inputs, keys, context)
        batch = len(serialized)
        classes, scores = outputs.get("classes"), outputs.get("scores")
        for name, value in outputs.items():
            if value.ndim != 2 or value.shape[0] != batch:
                raise ServingError(grpc.StatusCode.INTERNAL,
                                   f"classification output '{name}' has shape {value.shape}, "
                                   f"expected [{batch}, num_classes]")
        response = classification_pb2.ClassificationResponse()
        self._fill_spec(response.model_spec, servable, signature_name)
        width = (classes if classes is not None else scores).shape[1]
        for row in range(batch):
            out = response.result.classifications.add()
            for col in range(width):
                cls = out.classes.add()
                if classes is not None:
                    cls.label = classes[row, col].decode("utf-8", "replace")
                if scores is not None and col < scores.shape[1]:
                    cls.score = float(scores[row, col])
        return response

    @_rpc
    def Regress(self, request, context):
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           "Regress is not implemented by this server; use Predict")

    @_rpc
    def MultiInference(self, request, context):
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           "MultiInference is not implemented by this server; use Predict or "
                           "Classify")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, enable_reload_config: bool = True):
        self.manager = manager
        self.enable_reload_config = enable_reload_config

    @_rpc
    def GetModelStatus(self, request, context):
        spec = request.model_spec
        if not spec.name:
            raise invalid("Missing ModelSpec: model name is empty")
        version = _version(spec)
        if spec.version_label:
            version = self.manager.get(spec.name, label=spec.version_label).version
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state, code, message in self.manager.version_status(spec.name, version):
            status = response.model_version_status.add()
            status.version = number
            status.state = state
            status.status.error_code = code.value[0]
            status.status.error_message = message
        return response

    @_rpc
    def HandleReloadConfigRequest(self, request, context):
        if not self.enable_reload_config:
            raise ServingError(grpc.StatusCode.PERMISSION_DENIED,
                               "HandleReloadConfigRequest is disabled on this server "
                               "(--enable_reload_config=false)")
        if not request.HasField("config"):
            raise invalid("ReloadConfigRequest has no config")
        self.manager.reload_config(request.config)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        return response


class ServerHandle:
    """A running server: `.port`, `.target`, `.stop()`; also a context manager."""

    def __init__(self, server: grpc.Server, port: int, host: str, manager: ModelManager,
                 health_servicer: health.HealthServicer, scheduler: BatchScheduler | None,
                 runner: _Runner | None = None):
        self.server = server
        self.runner = runner
        self.port = port
        self.host = host
        self.manager = manager
        self.health = health_servicer
        self.scheduler = scheduler
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    def stop(self, grace: float | None = 5.0) -> None:
        """Graceful shutdown: health NOT_SERVING, refuse new RPCs, finish in-flight ones."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            log.info("shutting down (grace %ss)", grace)
            self.health.enter_graceful_shutdown()
            self.server.stop(grace).wait()
            self.manager.stop()
            if self.scheduler is not None:
                self.scheduler.close()
            self._stopped.set()
            log.info("server stopped")

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _batching_options(enable_batching, batching_parameters_file, batching):
    if isinstance(batching, BatchingOptions):
        return batching
    if batching_parameters_file:
        return BatchingOptions.from_file(batching_parameters_file)
    if batching or enable_batching:
        return BatchingOptions(max_batch_size=32, batch_timeout_micros=2000, num_batch_threads=2)
    return None


def start_server(model_root: str | os.PathLike | None = None,
                 model_config_file: str | os.PathLike | None = None,
                 port: int = 8500, host: str = "127.0.0.1", *,
                 model_name: str | None = None,
                 model_base_path: str | os.PathLike | None = None,
                 poll_interval: float = 1.0,
                 enable_batching: bool = False,
                 batching_parameters_file: str | os.PathLike | None = None,
                 batching: BatchingOptions | bool | None = None,
                 limits: Limits | None = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 max_workers: int = 16,
                 enable_model_warmup: bool = True,
                 work_limits: WorkLimits | None = None,
                 max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES,
                 load_retry_interval: float = DEFAULT_LOAD_RETRY_INTERVAL,
                 enable_reload_config: bool = True,
                 model_base_path_prefix=None,
                 ssl_config=None,
                 loader=None) -> ServerHandle:
    """Loads the models and starts serving; returns once the port is open.

    Args:
        model_root: a repository (`<root>/<model>/<version>/`): every model, latest version;
            a single model's base path (`<root>/<version>/`) also works.
        model_config_file: a text-format `ModelServerConfig` (`models.config`).
        port: gRPC port; `0` picks a free one (see `handle.port`).
        host: interface to bind; `127.0.0.1` by default, `0.0.0.0` for every interface.
        model_name, model_base_path: serve one model (TF Serving's flags of the same names).
        poll_interval: seconds between repository polls (`--file_system_poll_wait_seconds`).
        enable_batching, batching_parameters_file: as TF Serving's flags; `batching` may also
            be a `serving.batching.BatchingOptions`.
        limits: request limits (`serving.tensors.Limits`).
        max_message_size: largest request/response in bytes.
        max_workers: gRPC worker threads kept for everything but inference (health, status,
            metadata, refusals); admitted inference requests get threads of their own.
        enable_model_warmup: replay `assets.extra/tf_serving_warmup_requests` of each
            version before it serves (see `serving.warmup`).
        work_limits: admission control, deadlines and the per-request token budget
            (`WorkLimits`).
        max_num_load_retries, load_retry_interval: retries of a version that failed to load,
            and the seconds between them (TF Serving's flags and defaults).
        enable_reload_config: accept HandleReloadConfigRequest (PERMISSION_DENIED otherwise).
        model_base_path_prefix: directories (one or a list) that ReloadConfig base paths must
            lie in; default: the served repository.
        ssl_config: TF Serving's `SSLConfig` (message, text or file path): TLS, and mutual
            TLS with `client_verify`; `None`: plaintext.
    """
    if model_root is not None and model_base_path is None and model_config_file is None:
        root = Path(model_root)
        if not root.is_dir():
            raise FileNotFoundError(f"model repository {root} does not exist")
        if version_dirs(root, report=False):  # the root is itself one model's base path
            model_base_path, model_root = root, None
            model_name = model_name or root.resolve().name
    manager_kwargs: dict[str, Any] = {
        "model_root": model_root, "model_config_file": model_config_file,
        "model_name": model_name, "model_base_path": model_base_path,
        "poll_interval": poll_interval, "warmup": enable_model_warmup,
        "max_num_load_retries": max_num_load_retries, "load_retry_interval": load_retry_interval}
    if model_base_path_prefix:
        manager_kwargs["reload_roots"] = ([model_base_path_prefix]
                                          if isinstance(model_base_path_prefix, (str, Path))
                                          else list(model_base_path_prefix))
    if loader is not None:
        manager_kwargs["loader"] = loader
    credentials = server_credentials(ssl_config) if ssl_config is not None else None
    manager = ModelManager(**manager_kwargs)
    health_servicer = health.HealthServicer()
    reporter = HealthReporter(health_servicer, manager)
    manager.on_change = reporter.update
    manager.start()
    loaded = manager.loaded()
    log.info("serving %s", ", ".join(f"{n} {v}" for n, v in loaded.items()) or "no models yet")

    options = _batching_options(enable_batching, batching_parameters_file, batching)
    scheduler = BatchScheduler(options) if options else None
    if options:
        log.info("batching on: %s", options)
    grpc_options = [
        ("grpc.max_send_message_length", max_message_size),
        ("grpc.max_receive_message_length", max_message_size),
        ("grpc.so_reuseport", 0),
    ]
    runner = _Runner(scheduler, work_limits or WorkLimits())
    # Admitted inference requests hold at most `capacity` threads; `max_workers` more are
    # always there for health, status, metadata and quick refusals.
    server = grpc.server(futures.ThreadPoolExecutor(
        max_workers=max_workers + runner.admission.capacity, thread_name_prefix="serving-rpc"),
        options=grpc_options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(manager, limits or Limits(), runner), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(manager, enable_reload_config), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = (server.add_secure_port(address, credentials) if credentials is not None
                 else server.add_insecure_port(address))
    except RuntimeError as error:
        manager.stop()
        if scheduler:
            scheduler.close()
        raise OSError(f"cannot bind {address}: {error}") from None
    if not bound:
        manager.stop()
        raise OSError(f"cannot bind {address}")
    server.start()
    reporter.update()
    log.info("gRPC server listening on %s:%d%s", host, bound,
             " (TLS)" if credentials is not None else "")
    return ServerHandle(server, bound, host, manager, health_servicer, scheduler, runner)


def serve(model_root: str | os.PathLike | None = None,
          model_config_file: str | os.PathLike | None = None,
          port: int = 8500, host: str = "127.0.0.1", *, grace: float = 10.0,
          ready: threading.Event | None = None, **kwargs) -> None:
    """Like `start_server` but blocks; SIGTERM or SIGINT shut down gracefully."""
    handle = start_server(model_root, model_config_file, port, host, **kwargs)
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, frame):
            log.info("received %s", signal.Signals(signum).name)
            threading.Thread(target=handle.stop, args=(grace,), daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    if ready is not None:
        ready.set()
    print(f"serving on {handle.target}", flush=True)
    while not handle.wait(0.5):  # short waits keep the main thread responsive to signals
        pass


def main(argv: list[str] | None = None) -> int:
    parser = add_server_arguments(argparse.ArgumentParser(
        prog="python -m serving.server", description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    if not (args.model_root or args.model_config_file or args.model_base_path):
        parser.error("give a model repository, --model_config_file or --model_base_path")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    serve(**server_kwargs(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
