"""Deployment files for the real ``tensorflow_model_server`` (and our Python server).

* :func:`write_models_config` -- writes ``<root>/models.config`` (text-format
  ``ModelServerConfig``) listing every model of a repository, atomically; the exporter calls it
  after each export. ``python -m serving.tf_serving export/`` does the same from a shell.
* ``batching_parameters.txt`` -- ``--batching_parameters_file`` (``BatchingParameters``).
* ``monitoring.config`` -- ``--monitoring_config_file`` (Prometheus on the REST port).
* ``docker-compose.yml`` -- the ``tensorflow/serving`` image with those files, XLA on CPU, next
  to an ``mlflow server``. See ``README.md`` in this folder.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.versions import version_dirs

HERE = Path(__file__).resolve().parent
BATCHING_PARAMETERS_FILE = HERE / "batching_parameters.txt"
MONITORING_CONFIG_FILE = HERE / "monitoring.config"
DOCKER_COMPOSE_FILE = HERE / "docker-compose.yml"

__all__ = [
    "BATCHING_PARAMETERS_FILE",
    "DOCKER_COMPOSE_FILE",
    "MONITORING_CONFIG_FILE",
    "auto_labels",
    "complete_versions",
    "models_config",
    "read_models_config",
    "write_models_config",
]


def complete_versions(model_dir: str | os.PathLike) -> list[int]:
    """Integer version directories of a model that hold a ``saved_model.pb``, ascending."""
    return sorted(version for version, path in version_dirs(model_dir).items()
                  if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists())


def auto_labels(versions: list[int]) -> dict[str, int]:
    """Canary rollout labels: ``canary`` = newest version, ``stable`` = the one before it.

    With a single version, ``stable`` is that version and there is no canary.
    """
    if not versions:
        return {}
    if len(versions) == 1:
        return {"stable": versions[-1]}
    return {"stable": versions[-2], "canary": versions[-1]}


def models_config(root: str | os.PathLike, *,
                  labels: str | Mapping[str, Mapping[str, int]] | None = "auto",
                  num_versions: int = 1, base_path_prefix: str | None = "/models",
                  ) -> model_server_config_pb2.ModelServerConfig:
    """The ``ModelServerConfig`` of every model under ``root`` (:func:`write_models_config`)."""
    root = Path(root)
    config = model_server_config_pb2.ModelServerConfig()
    names = sorted(e.name for e in os.scandir(root)
                   if e.is_dir() and not e.name.startswith(".")) if root.is_dir() else []
    for name in names:
        versions = complete_versions(root / name)
        if not versions:
            continue
        if labels == "auto":
            model_labels = auto_labels(versions)
        elif labels is None:
            model_labels = {}
        elif isinstance(labels, Mapping):
            model_labels = dict(labels.get(name, {}))
        else:
            raise ValueError(f"labels must be 'auto', None or a mapping, not {labels!r}")
        model = config.model_config_list.config.add()
        model.name = name
        if base_path_prefix:
            model.base_path = f"{base_path_prefix.rstrip('/')}/{name}"
        else:
            model.base_path = os.fspath((root / name).resolve())
        model.model_platform = "tensorflow"
        policy = model.model_version_policy
        if model_labels:
            # Every labelled version must be loaded: serve exactly those.
            policy.specific.versions.extend(sorted(set(model_labels.values())))
            for label, version in sorted(model_labels.items()):
                model.version_labels[label] = int(version)
        else:
            policy.latest.num_versions = num_versions
    return config


def write_models_config(root: str | os.PathLike, path: str | os.PathLike | None = None, *,
                        labels: str | Mapping[str, Mapping[str, int]] | None = "auto",
                        num_versions: int = 1, base_path_prefix: str | None = "/models") -> Path:
    """Writes ``models.config`` for every model in the repository ``root``; returns its path.

    Args:
        root: model repository, ``<root>/<model>/<version>/saved_model.pb``.
        path: where to write; ``<root>/models.config`` by default. The file is replaced
            atomically (fsynced temporary file + rename, then the directory fsynced), so a
            polling server never reads half of it, nor a crash leaves an empty one.
        labels: ``"auto"`` (default): ``stable`` = previous version, ``canary`` = newest
            (``stable`` only, with one version), and the ``specific`` policy serving exactly the
            labelled versions; ``None``: no labels, policy ``latest { num_versions }``; or a
            mapping ``{model: {label: version}}`` (models left out get the latest policy).
        num_versions: versions kept by the ``latest`` policy.
        base_path_prefix: base paths are ``<prefix>/<model>``; ``/models`` matches the docker
            image's mount (our server maps a missing base path to ``<config dir>/<model>``).
            ``None`` writes absolute local paths.
    """
    root = Path(root)
    path = Path(path) if path is not None else root / "models.config"
    config = models_config(root, labels=labels, num_versions=num_versions,
                           base_path_prefix=base_path_prefix)
    text = "# Generated by serving.tf_serving.write_models_config; do not edit by hand.\n"
    text += text_format.MessageToString(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".models.config.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    # The rename is durable only once the directory holding it is synced.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_models_config(path: str | os.PathLike) -> model_server_config_pb2.ModelServerConfig:
    """Parses a text-format ``models.config``."""
    return text_format.Parse(Path(path).read_text(encoding="utf-8"),
                             model_server_config_pb2.ModelServerConfig())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.tf_serving",
                                     description="Write models.config for a model repository.")
    parser.add_argument("root")
    parser.add_argument("--output", default=None, help="default: <root>/models.config")
    parser.add_argument("--no_labels", action="store_true", help="latest policy, no labels")
    parser.add_argument("--num_versions", type=int, default=1)
    parser.add_argument("--base_path_prefix", default="/models",
                        help="'' for absolute local paths")
    args = parser.parse_args(argv)
    path = write_models_config(args.root, args.output,
                               labels=None if args.no_labels else "auto",
                               num_versions=args.num_versions,
                               base_path_prefix=args.base_path_prefix or None)
    print(path.read_text(), end="")
    return 0
