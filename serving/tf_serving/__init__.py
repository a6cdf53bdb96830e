"""Deployment files for the real `tensorflow_model_server` (and our Python server).

* `write_models_config` -- writes `<root>/models.config` (text-format
  `ModelServerConfig`) listing every model of a repository, atomically; the exporter calls it
  after each export. `python -m serving.tf_serving export/` does the same from a shell.
* `batching_parameters.txt` -- `--batching_parameters_file` (`BatchingParameters`).
* `monitoring.config` -- `--monitoring_config_file` (Prometheus on the REST port).
* `docker-compose.yml` -- the `tensorflow/serving` image with those files, XLA on CPU, next
  to an `mlflow server`. See `README.md` in this folder.
"""

from serving.tf_serving.deployment import (
    BATCHING_PARAMETERS_FILE,
    DOCKER_COMPOSE_FILE,
    MONITORING_CONFIG_FILE,
    auto_labels,
    complete_versions,
    main,
    models_config,
    read_models_config,
    write_models_config,
)

__all__ = [
    "BATCHING_PARAMETERS_FILE",
    "DOCKER_COMPOSE_FILE",
    "MONITORING_CONFIG_FILE",
    "auto_labels",
    "complete_versions",
    "main",
    "models_config",
    "read_models_config",
    "write_models_config",
]
