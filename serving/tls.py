"""TLS for the model server from TF Serving's `SSLConfig` (`--ssl_config_file`)."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
from google.protobuf import text_format

from serving.protos import SSLConfig


def server_credentials(ssl_config) -> grpc.ServerCredentials:
    """gRPC server credentials from TF Serving's `SSLConfig` (a message, its text format, or
    a path to a file holding it, as `--ssl_config_file`): `server_key`/`server_cert` are
    PEM texts; `custom_ca` the CA that signs client certificates; `client_verify` requires
    one (mutual TLS)."""
    if isinstance(ssl_config, (str, os.PathLike)):
        text = Path(ssl_config).read_text() if Path(ssl_config).is_file() else str(ssl_config)
        ssl_config = text_format.Parse(text, SSLConfig())
    if not ssl_config.server_key or not ssl_config.server_cert:
        raise ValueError("SSLConfig needs server_key and server_cert (PEM)")
    if ssl_config.client_verify and not ssl_config.custom_ca:
        raise ValueError("SSLConfig client_verify needs custom_ca (the CA of client certificates)")
    return grpc.ssl_server_credentials(
        [(ssl_config.server_key.encode(), ssl_config.server_cert.encode())],
        root_certificates=ssl_config.custom_ca.encode() or None,
        require_client_auth=ssl_config.client_verify)
