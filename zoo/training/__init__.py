"""Training with MLflow tracking."""

from zoo.training.trainer import TrainingResult, train

__all__ = ["TrainingResult", "train"]
