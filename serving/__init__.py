"""Serving for Attention Zoo: a TF Serving-compatible gRPC server and a client for TF Serving.

`Client` speaks TF Serving's public gRPC API, so it works against `serving.server` and the
real `tensorflow_model_server` alike. `start_server`/`serve` run our server in Python;
`serving.tf_serving` holds the deployment files for the real one (models.config generator,
batching and monitoring configs, docker-compose).

Attributes are imported lazily: `import serving` does not import TensorFlow.
"""

from __future__ import annotations

import importlib

__all__ = [
    "Client",
    "ServingError",
    "add_server_arguments",
    "cli_args",
    "serve",
    "server_kwargs",
    "start_server",
    "write_models_config",
]

_EXPORTS = {
    "Client": ("serving.client", "Client"),
    "ServingError": ("serving.client", "ServingError"),
    "start_server": ("serving.server", "start_server"),
    "serve": ("serving.server", "serve"),
    "add_server_arguments": ("serving.server", "add_server_arguments"),
    "cli_args": ("serving.server", "add_server_arguments"),
    "server_kwargs": ("serving.server", "server_kwargs"),
    "write_models_config": ("serving.tf_serving", "write_models_config"),
}


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'serving' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
