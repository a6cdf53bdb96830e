"""The Kubernetes manifests under deploy/k8s/ (they cannot be applied here): parsed as YAML and
checked for the structure the docs promise — TF Serving's ports and flags, the autoscaler on
the Deployment, the Services on its pods, and a training Job whose pods build their TF_CONFIG
from their index (the script is run for each index, through the real `zoo train --help`)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.support import REPO

K8S = REPO / "deploy" / "k8s"


def _documents(name):
    return {document["kind"]: document for document in yaml.safe_load_all((K8S / name).read_text())
            if document}


@pytest.fixture(scope="module")
def deployment():
    return _documents("tf-serving-deployment.yaml")["Deployment"]


def _container(workload):
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def _flags(arguments):
    return dict(argument.split("=", 1) for argument in arguments)


def test_tf_serving_deployment_serves_the_repository_with_xla(deployment):
    container = _container(deployment)
    assert container["image"].startswith("tensorflow/serving:")
    assert container["command"] == ["tensorflow_model_server"]
    flags = _flags(container["args"])
    assert flags["--port"] == "8500" and flags["--rest_api_port"] == "8501"
    assert flags["--xla_cpu_compilation_enabled"] == "true"
    assert flags["--model_config_file"] == "/models/models.config"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    for probe in ("readinessProbe", "livenessProbe"):
        probe_port = next(iter(container[probe].values()))["port"]
        assert probe_port in ports
    # The model repository: one shared claim, read-only, where models.config lives.
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]
               ["volumes"]}
    claim = volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]["claimName"]
    pvc = _documents("tf-serving-deployment.yaml")["PersistentVolumeClaim"]
    assert pvc["metadata"]["name"] == claim
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # every replica, and the exporter
    config_files = {flags["--batching_parameters_file"], flags["--monitoring_config_file"]}
    assert all(path.startswith(next(p for p in mounts if p == "/config")) for path in config_files)
    # The CPU request the autoscaler's utilisation target refers to.
    assert container["resources"]["requests"]["cpu"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_deployment_flags_are_the_docker_compose_ones(deployment):
    compose = yaml.safe_load((REPO / "serving" / "tf_serving" / "docker-compose.yml").read_text())
    compose_flags = _flags(compose["services"]["tf-serving"]["command"])
    assert _flags(_container(deployment)["args"]) == compose_flags


def test_services_reach_the_deployment_pods_on_8500_and_8501(deployment):
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    names = {port["name"] for port in _container(deployment)["ports"]}
    services = list(yaml.safe_load_all((K8S / "tf-serving-service.yaml").read_text()))
    assert len(services) == 2
    for service in services:
        assert service["kind"] == "Service"
        assert service["spec"]["selector"].items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names
    main, headless = services
    assert {port["port"] for port in main["spec"]["ports"]} == {8500, 8501}
    assert headless["spec"]["clusterIP"] == "None"
    assert [port["port"] for port in headless["spec"]["ports"]] == [8500]


def test_autoscaler_targets_the_deployment(deployment):
    hpa = _documents("tf-serving-hpa.yaml")["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1", "Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


@pytest.fixture(scope="module")
def training():
    documents = _documents("training-job.yaml")
    return documents["Job"], documents["Service"]


def test_training_job_is_indexed_with_a_headless_service(training):
    job, service = training
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    pod = spec["template"]["spec"]
    container = _container(job)
    environment = {item["name"]: item["value"] for item in container["env"]}
    assert spec["completions"] == spec["parallelism"] == int(environment["WORKERS"])
    assert environment["JOB_NAME"] == job["metadata"]["name"]
    assert pod["subdomain"] == service["metadata"]["name"] == environment["SERVICE"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": job["metadata"]["name"]}
    port = int(environment["PORT"])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [port]
    _, *arguments = container["args"]
    assert container["command"] == ["python", "-c"]
    assert "--set=strategy=multi_worker" in arguments
    assert (REPO / arguments[0]).is_file()  # the config it trains
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert any(argument == f"--output-dir={path}" for argument in arguments for path in mounts)


def test_each_training_pod_builds_its_tf_config_from_its_index(training, monkeypatch):
    import tensorflow as tf

    job, _ = training
    container = _container(job)
    script = container["args"][0]
    environment = {item["name"]: item["value"] for item in container["env"]}
    workers = int(environment["WORKERS"])
    configs = []
    for index in range(workers):
        run_environment = dict(os.environ) | environment | {
            "JOB_COMPLETION_INDEX": str(index), "PYTHONPATH": str(REPO)}
        result = subprocess.run([sys.executable, "-c", script, "--help"], env=run_environment,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        first, *rest = result.stdout.splitlines()
        assert first.startswith("TF_CONFIG=")
        assert any("--resume RUN_ID" in line for line in rest)  # the real `zoo train --help`
        configs.append(first.removeprefix("TF_CONFIG="))
    hosts = [f"zoo-train-{i}.zoo-train:2222" for i in range(workers)]
    for index, tf_config in enumerate(configs):
        assert json.loads(tf_config) == {"cluster": {"worker": hosts},
                                         "task": {"type": "worker", "index": index}}
        monkeypatch.setenv("TF_CONFIG", tf_config)
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        assert (resolver.task_type, resolver.task_id) == ("worker", index)
        assert resolver.cluster_spec().num_tasks("worker") == workers
