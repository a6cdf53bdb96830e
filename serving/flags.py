"""`tensorflow_model_server`-style flags for the model server (`zoo serve` uses them too)."""

from __future__ import annotations

import argparse

from serving.admission import DEFAULT_MAX_REQUEST_TOKENS, DEFAULT_REQUEST_TIMEOUT, WorkLimits
from serving.model_manager import DEFAULT_LOAD_RETRY_INTERVAL, DEFAULT_MAX_NUM_LOAD_RETRIES
from serving.tensors import DEFAULT_MAX_MESSAGE_SIZE, Limits


def add_server_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds `tensorflow_model_server`-style flags to `parser` (see `server_kwargs`)."""
    parser.add_argument("model_root", nargs="?", default=None,
                        help="model repository (<root>/<model>/<version>/) or one model's base "
                             "path")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: pick a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (0.0.0.0 for every interface)")
    parser.add_argument("--model_name", default=None)
    parser.add_argument("--model_base_path", default=None)
    parser.add_argument("--model_config_file", default=None,
                        help="text-format ModelServerConfig (models.config)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="seconds between repository polls (0: load once)")
    parser.add_argument("--enable_batching", type=_flag_bool, nargs="?", const=True,
                        default=False, help="batch concurrent requests (or =true/=false)")
    parser.add_argument("--batching_parameters_file", default=None)
    parser.add_argument("--grpc_max_threads", type=int, default=16)
    parser.add_argument("--max_message_size", type=int, default=DEFAULT_MAX_MESSAGE_SIZE,
                        help="largest gRPC message in bytes")
    parser.add_argument("--max_request_batch_size", type=int, default=Limits.max_batch_size,
                        help="most inputs (e.g. texts) in one request")
    parser.add_argument("--max_string_bytes", type=int, default=Limits.max_string_bytes,
                        help="longest string input element (e.g. one text), in bytes")
    parser.add_argument("--enable_model_warmup", type=_flag_bool, default=True,
                        help="replay assets.extra/tf_serving_warmup_requests before serving")
    parser.add_argument("--xla_cpu_compilation_enabled", type=_flag_bool, default=True,
                        help="accepted for compatibility: the Python runtime always runs XLA")
    parser.add_argument("--max_concurrent_requests", type=int, default=16,
                        help="Predict/Classify requests running (or batching) at once")
    parser.add_argument("--max_queued_requests", type=int, default=64,
                        help="requests that may wait for a slot; more: RESOURCE_EXHAUSTED")
    parser.add_argument("--request_timeout_ms", type=int,
                        default=int(DEFAULT_REQUEST_TIMEOUT * 1000),
                        help="deadline of requests whose client set none, and cap of longer "
                             "ones (0: the client's deadline only)")
    parser.add_argument("--max_request_tokens", type=int, default=DEFAULT_MAX_REQUEST_TOKENS,
                        help="most source tokens one request may make a model read "
                             "(0: no bound); more: INVALID_ARGUMENT before any compute")
    parser.add_argument("--max_num_load_retries", type=int,
                        default=DEFAULT_MAX_NUM_LOAD_RETRIES,
                        help="retries of a version that failed to load")
    parser.add_argument("--load_retry_interval_micros", type=int,
                        default=int(DEFAULT_LOAD_RETRY_INTERVAL * 1e6),
                        help="microseconds between load retries")
    parser.add_argument("--enable_reload_config", type=_flag_bool, default=True,
                        help="accept HandleReloadConfigRequest (false: PERMISSION_DENIED)")
    parser.add_argument("--model_base_path_prefix", action="append", default=None,
                        help="directory ReloadConfig base paths must lie in (repeatable; "
                             "default: the served repository)")
    parser.add_argument("--ssl_config_file", default=None,
                        help="TF Serving SSLConfig text proto: server_key, server_cert, "
                             "custom_ca, client_verify")
    return parser


def _flag_bool(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def server_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments for `serve`/`start_server` from parsed flags."""
    return {
        "model_root": args.model_root,
        "model_config_file": args.model_config_file,
        "port": args.port,
        "host": args.host,
        "model_name": args.model_name,
        "model_base_path": args.model_base_path,
        "poll_interval": args.file_system_poll_wait_seconds,
        "enable_batching": args.enable_batching or bool(args.batching_parameters_file),
        "batching_parameters_file": args.batching_parameters_file,
        "limits": Limits(max_batch_size=args.max_request_batch_size,
                      max_string_bytes=args.max_string_bytes),
        "max_message_size": args.max_message_size,
        "max_workers": args.grpc_max_threads,
        "enable_model_warmup": args.enable_model_warmup,
        "work_limits": WorkLimits(
            max_concurrent_requests=args.max_concurrent_requests,
            max_queued_requests=args.max_queued_requests,
            request_timeout=args.request_timeout_ms / 1000 or None,
            max_request_tokens=args.max_request_tokens or None),
        "max_num_load_retries": args.max_num_load_retries,
        "load_retry_interval": args.load_retry_interval_micros / 1e6,
        "enable_reload_config": args.enable_reload_config,
        "model_base_path_prefix": args.model_base_path_prefix,
        "ssl_config": args.ssl_config_file,
    }
