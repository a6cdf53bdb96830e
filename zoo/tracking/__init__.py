"""Experiment tracking with MLflow."""

from zoo.tracking.mlflow_tracking import (
    configure,
    flatten_params,
    run_name,
    run_tags,
    tracking_uri,
    use_experiment,
)
from zoo.tracking.runs import MetricLog, compare_runs, format_table, sort_rows

__all__ = ["MetricLog", "compare_runs", "configure", "flatten_params", "format_table",
           "run_name", "run_tags", "sort_rows", "tracking_uri", "use_experiment"]
