"""Serving that survives its clients: each test is one way a client or the file system could
take `zoo serve` down or over before (issue "Serving that survives its clients"), run against a
real server on 127.0.0.1 with real SavedModels (serving.fixtures)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.config import model_server_config_pb2

from serving import Client, ServingError, fixtures, start_server
from serving.batching import BatchingOptions
from serving.protos import SSLConfig
from serving.server import WorkLimits
from serving.tf_serving import write_models_config
from serving.versions import parse_version
from tests.serving.support import add_version, wait_for

POLL = 0.1


@pytest.fixture(scope="module")
def busy_model(tmp_path_factory) -> Path:
    return fixtures.build_busy(tmp_path_factory.mktemp("busy") / "model")


def _busy(client: Client, seconds: float, timeout: float | None = 30.0, texts=("x",)):
    return client.predict("busy", {"text": list(texts),
                                   "seconds": np.full(len(texts), seconds, np.float32)},
                          timeout=timeout)


def _in_background(function, *args, **kwargs) -> dict:
    """Runs `function` in a thread; the dict gets `result` or `error`, and `thread`."""
    box: dict = {}

    def run():
        try:
            box["result"] = function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - inspected by the test
            box["error"] = error

    box["thread"] = threading.Thread(target=run, daemon=True)
    box["thread"].start()
    return box


# ----------------------------------------------------------------- version directory names

def test_version_names_are_parsed_as_tf_serving_does():
    assert parse_version("12") == 12
    assert parse_version("007") == 7
    for junk in ("²", "٣", "1²", "+1", "-1", " 1", "1 ", "1.0", "", "9" * 20, "0x1"):
        assert parse_version(junk) is None, junk


def test_junk_version_directory_does_not_stop_polling(saved_models, tmp_path, caplog):
    """A directory named '²' passed str.isdigit() and raised in int(): no model loaded or
    unloaded anything again. Now it is skipped (logged once) and version 2 is served."""
    caplog.set_level(logging.WARNING, logger="serving")
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    (tmp_path / "tiny_translator" / "²").mkdir()
    (tmp_path / "tiny_translator" / ("9" * 20)).mkdir()  # beyond int64: skipped too
    add_version(tmp_path, "tiny_qa", 1, saved_models["qa"])
    write_models_config(tmp_path)  # the exporter's models.config writer skips it as well
    with start_server(tmp_path, port=0, poll_interval=POLL) as server, \
            Client(server.target, retries=0) as client:
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]
        add_version(tmp_path, "tiny_translator", 2, saved_models["translator_v2"])
        wait_for(lambda: client.translate("tiny_translator", ["a b"]) == ["v2: b a"])
        time.sleep(5 * POLL)
    warnings = [r.getMessage() for r in caplog.records if "²" in r.getMessage()]
    assert len(warnings) == 1, warnings  # logged once, not at every poll


# ------------------------------------------------------------------ availability preserving

def test_last_version_keeps_serving_when_its_directory_vanishes(saved_models, tmp_path):
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    with start_server(tmp_path, port=0, poll_interval=POLL) as server, \
            Client(server.target, retries=0) as client:
        shutil.move(tmp_path / "tiny_translator" / "1", tmp_path / "moved-away")
        time.sleep(10 * POLL)
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]
        status = client.status("tiny_translator")
        assert status[0]["state"] == "AVAILABLE"
        assert "gone" in status[0]["error_message"]
        # the whole base path too
        shutil.rmtree(tmp_path / "tiny_translator")
        time.sleep(10 * POLL)
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]
        assert client.health("tiny_translator") == "SERVING"
        # and a new version still replaces it when it comes back
        add_version(tmp_path, "tiny_translator", 2, saved_models["translator_v2"])
        wait_for(lambda: client.translate("tiny_translator", ["a b"]) == ["v2: b a"])


def test_failed_load_is_retried(saved_models, tmp_path):
    """TF Serving retries a failed load --max_num_load_retries times; we retried only when the
    version's files changed. The loader here fails its first attempt (a transient error such as
    a file system hiccup), then loads the real SavedModel."""
    from serving.model_manager import Servable

    attempts = []

    def flaky_loader(name, version, path):
        attempts.append(version)
        if version == 2 and attempts.count(2) == 1:
            raise OSError("transient read error")
        return Servable(name, version, path)

    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    with start_server(tmp_path, port=0, poll_interval=POLL, loader=flaky_loader,
                      max_num_load_retries=2, load_retry_interval=0.5) as server, \
            Client(server.target, retries=0) as client:
        add_version(tmp_path, "tiny_translator", 2, saved_models["translator_v2"])
        wait_for(lambda: attempts.count(2) == 1)
        row = {s["version"]: s for s in client.status("tiny_translator")}[2]
        assert row["state"] == "END" and "retry 1 of 2" in row["error_message"]
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]
        wait_for(lambda: client.translate("tiny_translator", ["a b"]) == ["v2: b a"])
        assert attempts.count(2) == 2


# ---------------------------------------------------------------------------------- health

def test_health_is_not_serving_until_every_model_is_available(saved_models, tmp_path):
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    (tmp_path / "tiny_qa" / "1").mkdir(parents=True)
    (tmp_path / "tiny_qa" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    config = tmp_path / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{name}" model_platform: "tensorflow" }}\n'
        for name in ("tiny_translator", "tiny_qa")) + "}\n")
    with start_server(model_config_file=config, port=0, poll_interval=POLL) as server, \
            Client(server.target, retries=0) as client:
        assert client.health() == "NOT_SERVING"
        assert client.health("tensorflow.serving.PredictionService") == "NOT_SERVING"
        assert client.health("tiny_translator") == "SERVING"
        assert client.health("tiny_qa") == "NOT_SERVING"
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]  # still serves
        add_version(tmp_path, "tiny_qa", 2, saved_models["qa"])
        wait_for(lambda: client.health() == "SERVING")
        assert client.health("tiny_qa") == "SERVING"
        with pytest.raises(ServingError) as info:
            client.health("no_such_model")
        assert info.value.code == grpc.StatusCode.NOT_FOUND


# ------------------------------------------------------ admission control and deadlines

def test_overload_is_refused_at_once_and_health_stays_fast(busy_model, tmp_path):
    add_version(tmp_path, "busy", 1, busy_model)
    limits = WorkLimits(max_concurrent_requests=1, max_queued_requests=1)
    with start_server(tmp_path, port=0, poll_interval=0, work_limits=limits) as server, \
            Client(server.target, retries=0) as client:
        running = _in_background(_busy, client, 2.0)
        wait_for(lambda: server.runner.admission.running == 1)
        queued = _in_background(_busy, client, 0.1)
        wait_for(lambda: server.runner.admission.waiting == 1)
        started = time.monotonic()
        with pytest.raises(ServingError) as info:
            _busy(client, 0.1)
        assert time.monotonic() - started < 1.0  # refused, not queued
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max_concurrent_requests" in info.value.details
        health_times = []
        for _ in range(20):
            started = time.monotonic()
            assert client.health(timeout=2.0) == "SERVING"
            assert client.status("busy", timeout=2.0)[0]["state"] == "AVAILABLE"
            health_times.append(time.monotonic() - started)
        assert max(health_times) < 0.5, health_times
        for box in (running, queued):
            box["thread"].join(30)
            assert "result" in box, box.get("error")
        assert server.runner.runs == 2


def test_expired_requests_are_not_started(busy_model, tmp_path):
    add_version(tmp_path, "busy", 1, busy_model)
    limits = WorkLimits(max_concurrent_requests=1, max_queued_requests=4, request_timeout=0.5)
    with start_server(tmp_path, port=0, poll_interval=0, work_limits=limits) as server, \
            Client(server.target, retries=0) as client:
        running = _in_background(_busy, client, 2.0)
        wait_for(lambda: server.runner.admission.running == 1)
        with pytest.raises(ServingError) as info:  # the client's own deadline
            _busy(client, 0.01, timeout=30.0)  # capped by --request_timeout_ms (0.5 s)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        with Client(server.target, retries=0, timeout=None) as no_deadline, \
                pytest.raises(ServingError) as info:
            _busy(no_deadline, 0.01, timeout=None)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        running["thread"].join(30)
        assert "result" in running, running.get("error")
        assert server.runner.runs == 1  # the expired requests never ran


def test_batching_queue_drops_requests_whose_deadline_passed(busy_model, tmp_path):
    add_version(tmp_path, "busy", 1, busy_model)
    options = BatchingOptions(max_batch_size=8, batch_timeout_micros=800_000,
                              num_batch_threads=1)
    with start_server(tmp_path, port=0, poll_interval=0, batching=options) as server, \
            Client(server.target, retries=0) as client:
        started = time.monotonic()
        with pytest.raises(ServingError) as info:
            _busy(client, 0.01, timeout=0.2)
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 0.7  # the caller did not wait for the batch
        wait_for(lambda: server.scheduler.dropped == 1)
        assert server.scheduler.batches_run == 0 and server.runner.runs == 0
        assert _busy(client, 0.01)["text"].tolist() == [b"x"]  # the queue still works


def test_per_request_token_budget(busy_model, tmp_path):
    add_version(tmp_path, "busy", 1, busy_model)
    limits = WorkLimits(max_request_tokens=100)
    with start_server(tmp_path, port=0, poll_interval=POLL, work_limits=limits) as server, \
            Client(server.target, retries=0) as client:
        with pytest.raises(ServingError) as info:
            _busy(client, 0.0, texts=["word " * 10] * 3)  # 3 x 51 bytes: up to 153 tokens
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "--max_request_tokens" in info.value.details
        assert server.runner.runs == 0
        assert _busy(client, 0.0, texts=["word " * 10])["text"].shape == (1,)
        # an export that truncates its sources says so in its metadata: the bound uses it
        extra = tmp_path / "busy" / "2" / "assets.extra"
        shutil.copytree(busy_model, tmp_path / "busy" / "2")
        extra.mkdir(exist_ok=True)
        (extra / "zoo_export.json").write_text(json.dumps({"limits": {"max_source_tokens": 8}}))
        wait_for(lambda: client.metadata("busy")["version"] == 2)
        assert _busy(client, 0.0, texts=["word " * 10] * 3)["text"].shape == (3,)


# ------------------------------------------------------------------------------- admin RPC

def _config(name: str, base_path: Path) -> model_server_config_pb2.ModelServerConfig:
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name, model.base_path, model.model_platform = name, str(base_path), "tensorflow"
    return config


def test_reload_config_is_confined_to_the_repository(saved_models, tmp_path):
    root, outside = tmp_path / "repo", tmp_path / "outside"
    add_version(root, "tiny_translator", 1, saved_models["translator_v1"])
    add_version(outside, "planted", 1, saved_models["translator_v2"])
    os.symlink(outside / "planted", root / "link_out", target_is_directory=True)
    with start_server(root, port=0, poll_interval=POLL) as server, \
            Client(server.target, retries=0) as client:
        for base in (outside / "planted", root / ".." / "outside" / "planted",
                     root / "link_out"):
            with pytest.raises(ServingError) as info:
                client.reload_config(_config("planted", base))
            assert info.value.code == grpc.StatusCode.PERMISSION_DENIED, base
            assert "outside" in info.value.details
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]  # untouched
        client.reload_config(_config("tiny_translator", root / "tiny_translator"))
    with start_server(root, port=0, poll_interval=POLL, enable_reload_config=False) as server, \
            Client(server.target, retries=0) as client, pytest.raises(ServingError) as info:
        client.reload_config(_config("tiny_translator", root / "tiny_translator"))
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    with start_server(root, port=0, poll_interval=POLL,
                      model_base_path_prefix=[root, outside]) as server, \
            Client(server.target, retries=0) as client:
        client.reload_config(_config("planted", outside / "planted"))
        assert client.translate("planted", ["a b"]) == ["v2: b a"]


# ------------------------------------------------------------------------------------- TLS

def _certificates(directory: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate (PEM)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key_pem(key):
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    def certificate(subject, key, issuer, issuer_key, ca=False, names=()):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)),
                                            critical=False)
        return builder.sign(issuer_key, hashes.SHA256()).public_bytes(
            serialization.Encoding.PEM).decode()

    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = certificate("zoo test CA", ca_key, "zoo test CA", ca_key, ca=True)
    server = certificate("localhost", server_key, "zoo test CA", ca_key, names=[
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = certificate("zoo client", client_key, "zoo test CA", ca_key)
    return {"ca": ca, "server_key": key_pem(server_key), "server_cert": server,
            "client_key": key_pem(client_key), "client_cert": client}


def test_tls_and_mutual_tls(saved_models, tmp_path):
    pem = _certificates(tmp_path)
    add_version(tmp_path / "repo", "tiny_translator", 1, saved_models["translator_v1"])
    ssl = SSLConfig(server_key=pem["server_key"], server_cert=pem["server_cert"])
    ssl_file = tmp_path / "ssl.config"
    from google.protobuf import text_format

    ssl_file.write_text(text_format.MessageToString(ssl))
    with start_server(tmp_path / "repo", port=0, poll_interval=0,
                      ssl_config=ssl_file) as server:
        with Client(server.target, retries=0, root_certificates=pem["ca"]) as client:
            assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]
        with Client(server.target, retries=0, timeout=3) as plaintext, \
                pytest.raises(ServingError) as info:
            plaintext.translate("tiny_translator", ["a b"])
        assert info.value.code == grpc.StatusCode.UNAVAILABLE

    ssl.custom_ca, ssl.client_verify = pem["ca"], True
    with start_server(tmp_path / "repo", port=0, poll_interval=0, ssl_config=ssl) as server:
        with Client(server.target, retries=0, root_certificates=pem["ca"],
                    private_key=pem["client_key"],
                    certificate_chain=pem["client_cert"]) as client:
            assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]
        with Client(server.target, retries=0, timeout=3,
                    root_certificates=pem["ca"]) as no_certificate, \
                pytest.raises(ServingError) as info:
            no_certificate.translate("tiny_translator", ["a b"])
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ValueError, match="custom_ca"):
        start_server(tmp_path / "repo", port=0, ssl_config=SSLConfig(
            server_key=pem["server_key"], server_cert=pem["server_cert"], client_verify=True))
