"""Deployment files in serving/tf_serving/ parsed with TF Serving's protos and yaml; CLI process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.batching import BatchingOptions
from serving.model_manager import Policy, parse_model_server_config
from serving.protos import BatchingParameters, MonitoringConfig
from serving.tf_serving import (
    BATCHING_PARAMETERS_FILE,
    DOCKER_COMPOSE_FILE,
    MONITORING_CONFIG_FILE,
    read_models_config,
    write_models_config,
)
from tests.serving.support import add_version
from tests.support import REPO


def _fake_version(root: Path, model: str, version: int, complete: bool = True) -> None:
    path = root / model / str(version)
    (path / "variables").mkdir(parents=True)
    if complete:
        (path / "saved_model.pb").write_bytes(b"")


def test_write_models_config_auto_labels(tmp_path):
    _fake_version(tmp_path, "luong_translator", 1)
    _fake_version(tmp_path, "luong_translator", 2)
    _fake_version(tmp_path, "luong_translator", 3, complete=False)  # still being exported
    _fake_version(tmp_path, "sst2_classifier", 5)
    (tmp_path / "not_a_model").mkdir()
    (tmp_path / "luong_translator" / "tmp-export").mkdir()

    path = write_models_config(tmp_path)
    assert path == tmp_path / "models.config"
    config = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    models = {m.name: m for m in config.model_config_list.config}
    assert sorted(models) == ["luong_translator", "sst2_classifier"]
    translator = models["luong_translator"]
    assert translator.base_path == "/models/luong_translator"
    assert translator.model_platform == "tensorflow"
    assert list(translator.model_version_policy.specific.versions) == [1, 2]
    assert dict(translator.version_labels) == {"stable": 1, "canary": 2}
    assert dict(models["sst2_classifier"].version_labels) == {"stable": 5}
    assert read_models_config(path) == config
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".models.config")] == []

    # the Python server reads it too (base paths mapped into the repository)
    specs = {s.name: s for s in parse_model_server_config(path.read_text(), tmp_path)}
    assert specs["luong_translator"].base_path == tmp_path / "luong_translator"
    assert specs["luong_translator"].policy.select([1, 2, 3]) == {1, 2}
    assert specs["luong_translator"].labels == {"stable": 1, "canary": 2}


def test_write_models_config_options(tmp_path):
    _fake_version(tmp_path, "m", 1)
    _fake_version(tmp_path, "m", 4)
    _fake_version(tmp_path, "n", 2)
    out = tmp_path / "elsewhere" / "models.config"
    write_models_config(tmp_path, out, labels=None, num_versions=2, base_path_prefix=None)
    config = read_models_config(out)
    m = config.model_config_list.config[0]
    assert m.base_path == str((tmp_path / "m").resolve())
    assert m.model_version_policy.latest.num_versions == 2
    assert not m.version_labels
    write_models_config(tmp_path, out, labels={"m": {"stable": 1}})
    config = read_models_config(out)
    m, n = config.model_config_list.config
    assert dict(m.version_labels) == {"stable": 1}
    assert list(m.model_version_policy.specific.versions) == [1]
    assert n.model_version_policy.latest.num_versions == 1
    assert write_models_config(tmp_path / "missing").read_text().count("config {") == 0


def test_policies():
    assert Policy().select([3, 1, 2]) == {3}
    assert Policy("latest", num_versions=2).select([3, 1, 2]) == {2, 3}
    assert Policy("all").select([3, 1]) == {1, 3}
    assert Policy("specific", versions=frozenset({1, 5})).select([1, 2, 3]) == {1}
    assert Policy().select([]) == set()


def test_batching_parameters_file():
    text = BATCHING_PARAMETERS_FILE.read_text()
    proto = text_format.Parse(text, BatchingParameters())
    assert proto.max_batch_size.value == 32
    assert proto.num_batch_threads.value >= 1
    sizes = list(proto.allowed_batch_sizes)
    assert sizes == sorted(sizes) and sizes[-1] == proto.max_batch_size.value
    options = BatchingOptions.from_file(BATCHING_PARAMETERS_FILE)
    assert options.batch_timeout_micros == proto.batch_timeout_micros.value
    assert BatchingOptions.from_text(options.to_text()) == options
    # same wire format as the upstream message: field numbers 1-7
    assert BatchingParameters.DESCRIPTOR.fields_by_name["allowed_batch_sizes"].number == 6
    assert BatchingParameters.DESCRIPTOR.fields_by_name["pad_variable_length_inputs"].number == 7
    with pytest.raises(ValueError):
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 4))


def test_monitoring_config_file():
    config = text_format.Parse(MONITORING_CONFIG_FILE.read_text(), MonitoringConfig())
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_docker_compose_file():
    compose = yaml.safe_load(DOCKER_COMPOSE_FILE.read_text())
    serving = compose["services"]["tf-serving"]
    assert "tensorflow/serving" in serving["image"]
    flags = serving["command"]
    for flag in ["--xla_cpu_compilation_enabled=true", "--model_config_file=/models/models.config",
                 "--enable_batching=true",
                 "--batching_parameters_file=/config/batching_parameters.txt",
                 "--monitoring_config_file=/config/monitoring.config", "--port=8500"]:
        assert flag in flags
    mounts = {v.rsplit(":", 2)[1]: v.rsplit(":", 2)[0] for v in serving["volumes"]}
    assert mounts["/config/batching_parameters.txt"] == "./batching_parameters.txt"
    assert mounts["/config/monitoring.config"] == "./monitoring.config"
    assert mounts["/models"] == "${MODEL_REPOSITORY:-../../export}"
    mlflow = compose["services"]["mlflow"]
    assert mlflow["command"][:2] == ["mlflow", "server"]
    assert any("5000" in p for p in mlflow["ports"])
    readme = (DOCKER_COMPOSE_FILE.parent / "README.md").read_text()
    for topic in ["## Deploying", "## Scaling out", "## Rolling out a new version"]:
        assert topic in readme


def test_package_exports_and_cli_flags(tmp_path):
    import argparse

    import serving
    from serving import server as server_module

    assert serving.Client.__name__ == "Client"
    assert serving.start_server is server_module.start_server
    assert serving.serve is server_module.serve
    assert serving.cli_args is server_module.add_server_arguments
    assert serving.write_models_config is write_models_config
    parser = serving.cli_args(argparse.ArgumentParser())
    args = parser.parse_args([str(tmp_path), "--port=9000", "--enable_batching",
                              "--max_string_bytes", "100", "--xla_cpu_compilation_enabled=true",
                              "--enable_model_warmup=false"])
    kwargs = serving.server_kwargs(args)
    assert kwargs["model_root"] == str(tmp_path) and kwargs["port"] == 9000
    assert kwargs["host"] == "127.0.0.1"
    assert kwargs["enable_batching"] and kwargs["limits"].max_string_bytes == 100
    assert kwargs["enable_model_warmup"] is False
    args = parser.parse_args(["--model_config_file", "m.config", "--enable_batching=false"])
    assert serving.server_kwargs(args)["enable_batching"] is False
    assert serving.server_kwargs(args)["model_root"] is None


def _read_until(stream, marker: str, timeout: float, sink: list) -> str | None:
    """Reads lines from `stream` in a thread until one contains `marker`."""
    found = []

    def reader():
        for line in stream:
            sink.append(line)
            if marker in line:
                found.append(line)
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    return found[0] if found else None


def test_cli_process_serves_and_stops_on_sigterm(saved_models, tmp_path):
    from serving import Client

    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    log_path = tmp_path / "server.log"  # a file, not a pipe: a full pipe would block the server
    log_file = open(log_path, "w")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", str(tmp_path), "--port", "0",
         "--file_system_poll_wait_seconds", "0.5"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log_file, text=True)
    out: list[str] = []
    try:
        line = _read_until(process.stdout, "serving on", 90, out)
        assert line, f"server did not start: {out} {process.poll()}"
        target = line.split("serving on", 1)[1].strip()
        assert target.startswith("127.0.0.1:")
        with Client(target, retries=0) as client:
            assert client.health() == "SERVING"
            assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        stderr = log_path.read_text()
        assert "received SIGTERM" in stderr and "server stopped" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log_file.close()
