"""Attention Zoo: attention layers, models built by name, MLflow-tracked training, XLA export."""

from zoo import attention
from zoo.models import build, list_models, resolve_config
from zoo.tracking.loading import load

__version__ = "0.1.0"

__all__ = ["__version__", "attention", "build", "list_models", "load", "resolve_config"]
