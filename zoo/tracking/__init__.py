"""Experiment tracking with MLflow."""

from zoo.tracking.mlflow_tracking import (
    configure,
    flatten_params,
    run_name,
    run_tags,
    tracking_uri,
)

__all__ = ["configure", "flatten_params", "run_name", "run_tags", "tracking_uri"]
