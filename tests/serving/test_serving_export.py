"""Bad requests against a REAL exported translator (the tiny trained one, XLA core, tf-text
tokenizer in the graph), not the fixture: each kind of error in serving/README.md gets its status
code, odd but valid text is translated, and the server keeps answering correctly afterwards.
"""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from export import export_model
from export.op_check import check_saved_model
from serving import Client, ServingError, start_server
from serving.batching import BatchingOptions
from serving.tensors import Limits

MODEL = "luong_translator"
MAX_BATCH = 16
MAX_STRING = 4096
MAX_MESSAGE = 1024 * 1024
PROBE = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."]

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def exported(trained_translator, tmp_path_factory):
    root = tmp_path_factory.mktemp("real_repo")
    # a small warm-up set: this module is about errors, not start-up latency
    path = export_model(trained_translator.model, root, name=MODEL, warmup_batch_sizes=(1, 2),
                        warmup_lengths=(8, 16))
    check_saved_model(path)
    return root


@pytest.fixture(scope="module")
def server(exported):
    handle = start_server(exported, port=0, poll_interval=0,
                          limits=Limits(max_batch_size=MAX_BATCH, max_string_bytes=MAX_STRING),
                          max_message_size=MAX_MESSAGE)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(server):
    with Client(server.target, timeout=120.0, retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def expected(client, trained_translator):
    """The server's answer to PROBE, checked once against the Keras model itself."""
    answer = client.translate(MODEL, PROBE)
    assert answer == trained_translator.model.translate(PROBE)
    return answer


def assert_alive(client, expected):
    assert client.translate(MODEL, PROBE) == expected


@pytest.mark.parametrize("kwargs, code, words", [
    ({"model": "nope"}, NOT_FOUND, ["nope"]),
    ({"version": 7}, NOT_FOUND, [MODEL, "7"]),
    # TF Serving's codes (as the server returns since 610caf0): an unknown label is
    # INVALID_ARGUMENT, an unknown signature FAILED_PRECONDITION.
    ({"label": "canary"}, INVALID, ["canary"]),
    ({"signature_name": "nope"}, grpc.StatusCode.FAILED_PRECONDITION, ['"nope"']),
    ({"inputs": {"txt": ["x"]}}, INVALID, ["txt", "text"]),
    ({"inputs": {"text": ["x"], "extra": ["y"]}}, INVALID, ["extra"]),
    ({"inputs": {}}, INVALID, ["missing", "text"]),
    ({"inputs": {"text": np.array([1.0], np.float32)}}, INVALID, ["'text'", "DT_FLOAT"]),
    ({"inputs": {"text": np.array([1, 2], np.int64)}}, INVALID, ["'text'", "DT_INT64"]),
    ({"inputs": {"text": [[b"x"]]}}, INVALID, ["'text'", "rank 1"]),
    ({"inputs": {"text": np.array(b"x", dtype=object)}}, INVALID, ["'text'", "rank"]),
    ({"inputs": {"text": np.array([], dtype=object)}}, INVALID, ["'text'", "empty batch"]),
    ({"inputs": {"text": ["x"] * (MAX_BATCH + 1)}}, INVALID, ["'text'", str(MAX_BATCH)]),
    ({"inputs": {"text": ["x" * (MAX_STRING + 1)]}}, INVALID, ["'text'", str(MAX_STRING)]),
    ({"inputs": {"text": ["ok", b"\xff\xfe bad"]}}, INVALID, ["'text'", "element 1", "UTF-8"]),
    ({"inputs": {"text": [b"Ein Mann f\xc3"]}}, INVALID, ["'text'", "UTF-8"]),
    ({"inputs": {"text": [b"\xed\xa0\x80 surrogate"]}}, INVALID, ["'text'", "UTF-8"]),
    ({"output_filter": ["nope"]}, INVALID, ["nope"]),
])
def test_bad_requests(client, expected, kwargs, code, words):
    request = {"model": MODEL, "inputs": {"text": ["Ein Hund."]}, **kwargs}
    with Client(client.target, retries=0, max_batch_size=None) as raw, \
            pytest.raises(ServingError) as info:
        raw.predict(**request)
    assert info.value.code == code, info.value
    for word in words:
        assert word in info.value.details, info.value.details
    assert_alive(client, expected)


def test_message_over_the_limit(client, expected):
    with pytest.raises(ServingError) as info:
        client.predict(MODEL, {"text": ["Hund " * (MAX_MESSAGE // 5 + 10)]})
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_alive(client, expected)


def test_not_a_classifier(client, expected):
    with pytest.raises(ServingError) as info:
        client.classify(MODEL, ["Ein Hund."])  # no 'classification' signature
    assert info.value.code == INVALID  # TF Serving's code for it
    with pytest.raises(ServingError) as info:
        client.classify(MODEL, ["Ein Hund."], signature_name="serving_default")
    assert info.value.code == INVALID
    assert_alive(client, expected)


def _shape(*dims, unknown_rank=False):
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims],
        unknown_rank=unknown_rank)


@pytest.mark.parametrize("tensor, words", [
    (tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(10**12)),
     ["'text'", "limit"]),
    (tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(-3)),
     ["'text'", "negative"]),
    (tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(unknown_rank=True)),
     ["'text'", "unknown rank"]),
    (tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(1),
                            string_val=[b"a", b"b", b"c"]), ["'text'", "3 values"]),
    (tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(2),
                            tensor_content=b"abcd"), ["'text'", "tensor_content"]),
    (tensor_pb2.TensorProto(dtype=types_pb2.DT_RESOURCE, tensor_shape=_shape(1)),
     ["'text'", "DT_RESOURCE"]),
    (tensor_pb2.TensorProto(dtype=0, tensor_shape=_shape(1)), ["'text'", "DT_INVALID"]),
])
def test_malformed_tensors(server, client, expected, tensor, words):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["text"].CopyFrom(tensor)
    with grpc.insecure_channel(server.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, timeout=60)
    assert info.value.code() == INVALID
    for word in words:
        assert word in info.value.details(), info.value.details()
    assert_alive(client, expected)


@pytest.mark.parametrize("text", [
    "", "   ", "\x00", ".", "🙂🙂🙂", "Ёж и 猫 und ein Mann", "e\u0301\u0301\u0301",
    "\u200b\u200d\ufeff", "Hund " * 60,  # > 32 subwords: a source length no warm-up covered
])
def test_odd_but_valid_text_is_translated(client, expected, text):
    out = client.predict(MODEL, {"text": [text, PROBE[0]]})
    assert out["translation"].shape == (2,)
    assert out["translation"][1].decode() == expected[0]  # its row-mate is unaffected
    assert out["attention"].shape[0] == 2 and np.isfinite(out["attention"]).all()
    assert_alive(client, expected)


def test_response_over_the_message_limit(client, expected):
    """Attention is [batch, max target length, source]: a long source is cut to 128 ids and
    the target buffer to 200 steps, 100 KB of attention per row, so twelve 1.5 KB texts
    (18 KB in) ask for 1.2 MB of output, over the 1 MiB limit. gRPC refuses to send it
    (RESOURCE_EXHAUSTED); asking only for the translations works."""
    texts = ["Hund " * 300] * 12
    with pytest.raises(ServingError) as info:
        client.predict(MODEL, {"text": texts})
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.details
    assert len(client.translate(MODEL, texts)) == 12  # output_filter=["translation"]
    assert_alive(client, expected)


def test_full_batching_queue_is_unavailable(exported, expected):
    """A queue of one pending request: a burst of concurrent requests gets UNAVAILABLE for
    some (never another code), the rest are answered, and the server answers afterwards."""
    options = BatchingOptions(max_batch_size=1, batch_timeout_micros=0, max_enqueued_batches=1,
                              num_batch_threads=1)
    handle = start_server(exported, port=0, poll_interval=0, batching=options, max_workers=32)
    try:
        codes, answers = [], []
        lock = threading.Lock()
        barrier = threading.Barrier(24)

        def burst():
            with Client(handle.target, timeout=120.0, retries=0) as c:
                barrier.wait()
                try:
                    answer = c.translate(MODEL, PROBE[:1])
                    with lock:
                        answers.append(answer)
                except ServingError as error:
                    with lock:
                        codes.append((error.code, error.details))

        for _ in range(3):  # the burst is timing-dependent: up to three tries to fill the queue
            threads = [threading.Thread(target=burst) for _ in range(24)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if codes:
                break
        assert codes, "the queue never filled"
        assert {code for code, _ in codes} == {grpc.StatusCode.UNAVAILABLE}, codes
        assert "queue" in codes[0][1]
        assert answers and all(answer == expected[:1] for answer in answers)
        with Client(handle.target, timeout=120.0, retries=0) as c:
            assert c.translate(MODEL, PROBE) == expected
    finally:
        handle.stop()


def test_server_still_healthy(client, expected):
    assert client.health() == "SERVING"
    assert client.status(MODEL)[0]["state"] == "AVAILABLE"
    assert_alive(client, expected)


def test_zoo_predict_cli_translates_through_the_server(server, expected, capsys):
    from zoo import cli

    assert cli.main(["predict", "--server", server.target, "--model", MODEL, *PROBE]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"{source}\t{translation}"
                     for source, translation in zip(PROBE, expected, strict=True)]
    # an unknown model: a clear error, exit status 2
    assert cli.main(["predict", "--server", server.target, "--model", "nope", "x"]) == 2
    assert "nope" in capsys.readouterr().err
