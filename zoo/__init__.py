"""Attention Zoo: attention layers, models built by name, MLflow-tracked training, XLA export."""

from zoo import attention

__version__ = "0.1.0"

__all__ = ["attention", "__version__"]
