"""Repository polling, version policies and labels, config reloads, batching, graceful stop."""

from __future__ import annotations

import logging
import shutil
import threading
import time

import grpc
import pytest

from serving import Client, ServingError, start_server
from serving.batching import BatchingOptions
from serving.model_manager import ModelManager, Servable
from serving.tf_serving import write_models_config
from serving.warmup import write_warmup_requests
from tests.serving.support import add_version, expected_translation, wait_for

POLL = 0.2


class _Traffic:
    """Client threads translating in a loop; counts answers per version and failures.

    These tests assert that no request fails or is answered wrongly, not how fast: the deadline
    is generous so that a stall of a loaded 2-core CI machine (one request once exceeded 20 s
    there) is not a failure, while a lost request still is. `slowest` is reported with them.
    """

    def __init__(self, target: str, threads: int = 3, deadline: float = 120.0, **predict_kwargs):
        self.client = Client(target, timeout=deadline, retries=0)
        self.kwargs = predict_kwargs
        self.seen: dict[str, int] = {}
        self.failures: list[Exception] = []
        self.wrong: list[str] = []
        self.slowest = 0.0  # seconds, the longest answered or failed request
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(threads)]

    def _loop(self, index: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            text = f"thread{index} request{n} {'w ' * (n % 3)}"
            started = time.monotonic()
            try:
                [answer] = self.client.translate("tiny_translator", [text], **self.kwargs)
            except Exception as error:  # noqa: BLE001 - counted, the test asserts none
                with self._lock:
                    self.failures.append(error)
                    self.slowest = max(self.slowest, time.monotonic() - started)
                continue
            tag = answer.split(":")[0]
            with self._lock:
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.seen[tag] = self.seen.get(tag, 0) + 1
                if answer != expected_translation(text, tag[1:]):
                    self.wrong.append(answer)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.client.close()


def test_new_version_served_without_failed_requests(saved_models, tmp_path):
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    with start_server(tmp_path, port=0, poll_interval=POLL) as server, \
            _Traffic(server.target) as traffic, Client(server.target) as client:
        wait_for(lambda: traffic.seen.get("v1", 0) > 5)
        dropped = time.monotonic()
        add_version(tmp_path, "tiny_translator", 2, saved_models["translator_v2"])
        wait_for(lambda: traffic.seen.get("v2", 0) > 5, timeout=20)
        assert time.monotonic() - dropped < 10
        states = {s["version"]: s["state"] for s in client.status("tiny_translator")}
        assert states == {1: "END", 2: "AVAILABLE"}  # the retired version was unloaded
        assert client.translate("tiny_translator", ["a b"]) == ["v2: b a"]
        with pytest.raises(ServingError) as info:
            client.translate("tiny_translator", ["a b"], version=1)
        assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert traffic.failures == [], f"slowest request {traffic.slowest:.1f} s"
    assert traffic.wrong == []


def test_corrupt_and_half_written_versions_are_skipped(saved_models, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="serving")
    model = tmp_path / "tiny_translator"
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    with start_server(tmp_path, port=0, poll_interval=POLL) as server, \
            Client(server.target, retries=0) as client:
        # v2: garbage saved_model.pb
        (model / "2").mkdir()
        (model / "2" / "saved_model.pb").write_bytes(b"\x00 this is not a SavedModel \xff" * 10)
        # v3: a SavedModel whose variables never arrived (export died half-way)
        (model / "3").mkdir()
        shutil.copy(saved_models["translator_v2"] / "saved_model.pb", model / "3")
        (model / "3" / "variables").mkdir()
        # v4: only the variables so far
        shutil.copytree(saved_models["translator_v2"] / "variables", model / "4" / "variables")

        def failed_versions():
            rows = {s["version"]: s for s in client.status("tiny_translator")}
            return {v for v, s in rows.items() if s["error_code"] != "OK"} == {2, 3} and rows

        rows = wait_for(failed_versions, timeout=20)
        assert rows[1]["state"] == "AVAILABLE"
        assert rows[2]["state"] == "END" and "failed to load" in rows[2]["error_message"]
        assert rows[3]["state"] == "END"
        assert 4 not in rows
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]  # v1 keeps serving
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("version 2" in e for e in errors) and any("version 3" in e for e in errors)

        # finishing version 4 makes it the served one
        shutil.copy(saved_models["translator_v2"] / "saved_model.pb", model / "4")
        wait_for(lambda: client.translate("tiny_translator", ["a b"]) == ["v2: b a"], timeout=20)
        assert client.metadata("tiny_translator")["version"] == 4


def test_models_config_labels_and_polling(saved_models, tmp_path):
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    add_version(tmp_path, "tiny_qa", 1, saved_models["qa"])
    config = write_models_config(tmp_path)  # base paths /models/<name>: mapped to tmp_path
    with start_server(model_config_file=config, port=0, poll_interval=POLL) as server, \
            Client(server.target, retries=0) as client:
        assert client.translate("tiny_translator", ["a b"], label="stable") == ["v1: b a"]
        with pytest.raises(ServingError) as info:
            client.translate("tiny_translator", ["a b"], label="canary")
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT  # as TF Serving's

        add_version(tmp_path, "tiny_translator", 2, saved_models["translator_v2"])
        write_models_config(tmp_path)  # stable = 1, canary = 2, policy specific {1, 2}

        def canary():
            try:
                return client.translate("tiny_translator", ["a b"], label="canary")
            except ServingError:
                return None

        assert wait_for(canary, timeout=20) == ["v2: b a"]
        assert client.translate("tiny_translator", ["a b"], label="stable") == ["v1: b a"]
        assert client.translate("tiny_translator", ["a b"]) == ["v2: b a"]  # newest by default
        assert [s["state"] for s in client.status("tiny_translator")] == ["AVAILABLE"] * 2

        # HandleReloadConfigRequest: serve only the translator, latest version
        client.reload_config(f"""
            model_config_list {{ config {{
                name: "tiny_translator" base_path: "{tmp_path / 'tiny_translator'}"
                model_platform: "tensorflow"
                model_version_policy {{ latest {{ num_versions: 1 }} }} }} }}""")
        with pytest.raises(ServingError) as info:
            client.answer("tiny_qa", ["q"], ["c"])
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(ServingError) as info:
            client.translate("tiny_translator", ["a b"], version=1)
        assert info.value.code == grpc.StatusCode.NOT_FOUND

        # a bad config is refused and the current one keeps serving
        with pytest.raises(ServingError) as info:
            client.reload_config('model_config_list { config { name: "a" base_path: "/x" } '
                                 'config { name: "a" base_path: "/y" } }')
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert client.translate("tiny_translator", ["a b"]) == ["v2: b a"]


def test_version_policies(saved_models, tmp_path):
    for version in (1, 2, 3):
        add_version(tmp_path, "tiny_translator", version, saved_models["translator_v1"])
    config = tmp_path / "models.config"
    config.write_text(f"""
        model_config_list {{
          config {{ name: "all" base_path: "{tmp_path / 'tiny_translator'}"
                   model_version_policy {{ all {{}} }} }}
          config {{ name: "two" base_path: "{tmp_path / 'tiny_translator'}"
                   model_version_policy {{ latest {{ num_versions: 2 }} }} }}
          config {{ name: "some" base_path: "tiny_translator"
                   model_version_policy {{ specific {{ versions: 1 versions: 3 }} }}
                   version_labels {{ key: "old" value: 1 }} }}
        }}""")
    with start_server(model_config_file=config, port=0, poll_interval=0) as server:
        assert server.manager.loaded() == {"all": [1, 2, 3], "two": [2, 3], "some": [1, 3]}
        with Client(server.target) as client:
            assert client.metadata("some", label="old")["version"] == 1
            assert client.metadata("some")["version"] == 3


def test_server_side_batching(saved_models, tmp_path):
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    options = BatchingOptions(max_batch_size=8, batch_timeout_micros=20_000,
                              num_batch_threads=1, allowed_batch_sizes=(2, 4, 8))
    with start_server(tmp_path, port=0, poll_interval=0, batching=options) as server, \
            _Traffic(server.target, threads=8) as traffic, Client(server.target) as client:
        wait_for(lambda: sum(traffic.seen.values()) > 80, timeout=60)
        # a request larger than max_batch_size runs on its own; classify is batched too
        texts = [f"t{i} u{i}" for i in range(11)]
        expected = [expected_translation(t) for t in texts]
        assert client.translate("tiny_translator", texts) == expected
        assert len(client.classify("tiny_translator", ["good", "bad"])) == 2
    assert traffic.failures == [] and traffic.wrong == [], (
        f"slowest request {traffic.slowest:.1f} s")
    scheduler = server.scheduler
    assert scheduler.batches_run > 0
    assert scheduler.batch_elements / scheduler.batches_run > 1.5  # requests were merged


def test_batching_parameters_file(saved_models, tmp_path):
    from serving.tf_serving import BATCHING_PARAMETERS_FILE

    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    with start_server(tmp_path, port=0, poll_interval=0, enable_batching=True,
                      batching_parameters_file=BATCHING_PARAMETERS_FILE) as server, \
            Client(server.target) as client:
        assert server.scheduler.options.max_batch_size == 32
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]


class _SlowServable(Servable):
    running = threading.Event()

    def run(self, *args, **kwargs):
        _SlowServable.running.set()
        time.sleep(1.0)
        return super().run(*args, **kwargs)


def test_graceful_stop_finishes_in_flight_requests(saved_models, tmp_path):
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    server = start_server(tmp_path, port=0, poll_interval=0, loader=_SlowServable)
    client = Client(server.target, retries=0)
    results = []
    request = threading.Thread(
        target=lambda: results.append(client.translate("tiny_translator", ["a b"])))
    request.start()
    assert _SlowServable.running.wait(30)  # the request is running on the server
    server.stop(grace=5)
    request.join()
    assert results == [["v1: b a"]]
    with pytest.raises(ServingError) as info:
        client.translate("tiny_translator", ["a b"], timeout=2)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    client.close()


def test_warmup_requests_replayed_and_bad_warmup_skips_version(saved_models, tmp_path,
                                                              caplog):
    caplog.set_level(logging.INFO, logger="serving")
    v1 = add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    write_warmup_requests(v1, "tiny_translator", [{"text": ["a b"] * n} for n in (1, 2, 4)])
    v2 = add_version(tmp_path, "tiny_translator", 2, saved_models["translator_v2"])
    write_warmup_requests(v2, "tiny_translator", [{"txt": ["a b"]}])  # wrong input name
    with start_server(tmp_path, port=0, poll_interval=0) as server, \
            Client(server.target, retries=0) as client:
        assert client.translate("tiny_translator", ["a b"]) == ["v1: b a"]
        rows = {s["version"]: s for s in client.status("tiny_translator")}
        assert rows[2]["state"] == "END" and "txt" in rows[2]["error_message"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("version 1: replayed 3 warm-up requests" in m for m in messages)


def test_bad_config_edit_keeps_the_previous_config(saved_models, tmp_path, caplog):
    add_version(tmp_path, "tiny_translator", 1, saved_models["translator_v1"])
    config = write_models_config(tmp_path, labels=None)
    manager = ModelManager(model_config_file=config, poll_interval=0, warmup=False)
    manager.start()
    assert manager.loaded() == {"tiny_translator": [1]}
    config.write_text("model_config_list { config { name: ")  # truncated by a bad editor
    manager.poll()
    assert manager.get("tiny_translator").version == 1
    assert any("cannot reload model config" in r.getMessage() for r in caplog.records)
    manager.stop()
