"""gRPC server + client: round trips, metadata, status, health and every kind of bad request.

One server for the module (real gRPC over 127.0.0.1, a free port, real SavedModels).
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving import Client, ServingError, start_server
from serving.tensors import Limits
from tests.serving.support import add_version, expected_translation

MAX_BATCH = 16
MAX_STRING = 4096
MAX_MESSAGE = 1024 * 1024

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture(scope="module")
def server(saved_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    add_version(root, "tiny_translator", 1, saved_models["translator_v1"])
    add_version(root, "tiny_qa", 3, saved_models["qa"])
    handle = start_server(root, port=0, poll_interval=0,
                          limits=Limits(max_batch_size=MAX_BATCH, max_string_bytes=MAX_STRING),
                          max_message_size=MAX_MESSAGE)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(server):
    with Client(server.target, timeout=30.0, retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(server.target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def assert_alive(client):
    """The server still answers a good request correctly."""
    assert client.translate("tiny_translator", ["still alive"]) == [
        expected_translation("still alive")]


# ---------------------------------------------------------------------------- round trips

def test_server_binds_loopback_on_a_free_port(server):
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert server.target == f"127.0.0.1:{server.port}"


def test_predict_round_trip(client):
    texts = ["Ein Mann fährt Fahrrad.", "hallo welt"]
    out = client.predict("tiny_translator", {"text": texts})
    assert set(out) == {"translation", "attention", "source_tokens", "target_tokens"}
    assert [t.decode() for t in out["translation"]] == [expected_translation(t) for t in texts]
    assert out["attention"].dtype == np.float32
    assert out["attention"].shape == (2, 4, 4)
    np.testing.assert_allclose(out["attention"][0].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out["attention"][1, :, 2:], 0.0)  # padding is masked out
    assert out["source_tokens"][0].tolist() == [b"Ein", b"Mann", "fährt".encode(), b"Fahrrad."]
    assert out["target_tokens"][1].tolist() == [b"welt", b"hallo", b"", b""]


def test_translate_answer_and_output_filter(client):
    assert client.translate("tiny_translator", "a b c") == ["v1: c b a"]
    assert client.translate("tiny_translator", []) == []
    out = client.predict("tiny_translator", {"text": ["x y"]}, output_filter=["attention"])
    assert set(out) == {"attention"}
    assert client.summarize("tiny_translator", "a b") == ["v1: b a"]  # first string output
    answers = client.answer("tiny_qa", ["who rides?", "what?"], ["a man rides a bike", "a cat"])
    assert len(answers) == 2
    assert answers[0] in ("a", "man", "rides", "bike")
    assert answers[1] in ("a", "cat")


def test_version_and_signature_selection(client):
    assert client.translate("tiny_translator", ["p q"], version=1) == ["v1: q p"]
    out = client.predict("tiny_qa", {"question": ["q"], "context": ["c d"]}, version=3)
    assert out["start_scores"].shape == (1, 2)


def test_client_splits_large_inputs_into_batches(server):
    texts = [f"word{i} other{i} {'x ' * (i % 4)}" for i in range(11)]
    with Client(server.target, max_batch_size=4, retries=0) as small:
        out = small.predict("tiny_translator", {"text": texts})
        assert [t.decode() for t in out["translation"]] == [expected_translation(t) for t in texts]
        # attention of the three chunks is padded to the longest sentence before joining
        assert out["attention"].shape == (11, 5, 5)
        assert small.translate("tiny_translator", texts) == [expected_translation(t) for t in texts]


def test_classify(client):
    results = client.classify("tiny_translator", ["a fine film", "dull", {"text": "ok"}])
    assert len(results) == 3
    for classes in results:
        assert [label for label, _ in classes] == ["negative", "positive"]
        assert sum(score for _, score in classes) == pytest.approx(1.0, abs=1e-5)
    example = tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a fine film"]))}))
    assert client.classify("tiny_translator", [example]) == results[:1]


def test_metadata_shows_signatures(client):
    meta = client.metadata("tiny_translator")
    assert meta["name"] == "tiny_translator"
    assert meta["version"] == 1
    default = meta["signatures"]["serving_default"]
    assert default["inputs"] == {"text": {"dtype": "string", "dtype_enum": types_pb2.DT_STRING,
                                          "shape": [-1], "name": "serving_default_text:0"}}
    assert default["outputs"]["attention"]["dtype"] == "float32"
    assert default["outputs"]["attention"]["shape"] == [-1, -1, -1]
    assert default["outputs"]["translation"]["shape"] == [-1]
    assert set(default["outputs"]) == {"translation", "attention", "source_tokens",
                                       "target_tokens"}
    assert "classification" in meta["signatures"]
    assert "__saved_model_init_op" not in meta["signatures"]
    assert client.metadata("tiny_qa")["version"] == 3


def test_metadata_needs_signature_def_field(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "tiny_translator"
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(request)
    assert info.value.code() == INVALID
    request.metadata_field.append("something_else")
    with pytest.raises(grpc.RpcError) as info:
        stub.GetModelMetadata(request)
    assert info.value.code() == INVALID
    assert "something_else" in info.value.details()


def test_model_status(client):
    assert client.status("tiny_translator") == [
        {"version": 1, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}]
    assert client.status("tiny_qa", version=3)[0]["state"] == "AVAILABLE"
    with pytest.raises(ServingError) as info:
        client.status("no_such_model")
    assert info.value.code == NOT_FOUND
    with pytest.raises(ServingError) as info:
        client.status("tiny_qa", version=9)
    assert info.value.code == NOT_FOUND


def test_health_serving(client):
    assert client.health() == "SERVING"
    assert client.health("tensorflow.serving.PredictionService") == "SERVING"
    assert client.health("tensorflow.serving.ModelService") == "SERVING"
    client.wait_until_ready("tiny_translator", timeout=5)


def test_regress_and_multi_inference_unimplemented(stub, client):
    for method, request in [(stub.Regress, regression_pb2.RegressionRequest()),
                            (stub.MultiInference, inference_pb2.MultiInferenceRequest())]:
        with pytest.raises(grpc.RpcError) as info:
            method(request)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "not implemented" in info.value.details()
    assert_alive(client)


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, code, words", [
    ({"model": "nope"}, NOT_FOUND, ["Latest(nope)"]),
    ({"version": 7}, NOT_FOUND, ["Specific(tiny_translator, 7)"]),
    # TF Serving's codes: ServerCore::GetModelVersionForLabel, predict_util.cc RunPredict.
    ({"label": "canary"}, INVALID, ["Unrecognized servable version label: canary"]),
    ({"signature_name": "nope"}, FAILED_PRECONDITION,
     ['Serving signature key "nope" not found.']),
    ({"inputs": {"txt": ["x"]}}, INVALID, ["txt", "{text}"]),
    ({"inputs": {"text": ["x"], "extra": ["y"]}}, INVALID, ["extra"]),
    ({"inputs": {}}, INVALID, ["missing", "text"]),
    ({"inputs": {"text": np.array([1.0], np.float32)}}, INVALID, ["'text'", "DT_FLOAT"]),
    ({"inputs": {"text": [[b"x"]]}}, INVALID, ["'text'", "rank 1"]),
    ({"inputs": {"text": np.array(b"x", dtype=object)}}, INVALID, ["'text'", "rank"]),
    ({"inputs": {"text": np.array([], dtype=object)}}, INVALID, ["'text'", "empty batch"]),
    ({"inputs": {"text": ["x"] * (MAX_BATCH + 1)}}, INVALID, ["'text'", str(MAX_BATCH)]),
    ({"inputs": {"text": ["x" * (MAX_STRING + 1)]}}, INVALID, ["'text'", str(MAX_STRING)]),
    ({"inputs": {"text": ["ok", b"\xff\xfe bad"]}}, INVALID, ["'text'", "element 1", "UTF-8"]),
    ({"inputs": {"text": [b"\xc3"]}}, INVALID, ["'text'", "UTF-8"]),
])
def test_bad_predict_requests(client, kwargs, code, words):
    request = {"model": "tiny_translator", "inputs": {"text": ["x y"]}, **kwargs}
    with Client(client.target, retries=0, max_batch_size=None) as raw, \
            pytest.raises(ServingError) as info:
        raw.predict(**request)
    assert info.value.code == code, info.value
    for word in words:
        assert word in info.value.details, info.value.details
    assert_alive(client)


def test_qa_inputs_with_different_batch_sizes(client):
    with pytest.raises(ServingError) as info:
        client.predict("tiny_qa", {"question": ["a", "b"], "context": ["c"]})
    assert info.value.code == INVALID
    assert "'context'" in info.value.details and "'question'" in info.value.details


def test_many_unknown_inputs_give_a_short_error(stub, client):
    request = _raw_request(tf.make_tensor_proto(np.array([b"x"], dtype=object)))
    for i in range(3000):
        request.inputs[f"bogus_input_name_{i:05d}"].CopyFrom(request.inputs["text"])
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=30)
    assert info.value.code() == INVALID
    assert "bogus_input_name_00000" in info.value.details()
    assert len(info.value.details()) < 2100
    assert_alive(client)


def test_unknown_output_filter(client):
    with pytest.raises(ServingError) as info:
        client.predict("tiny_translator", {"text": ["x"]}, output_filter=["nope"])
    assert info.value.code == INVALID and "nope" in info.value.details


def test_message_larger_than_limit_is_refused(client):
    with pytest.raises(ServingError) as info:
        client.predict("tiny_translator", {"text": ["x" * (MAX_MESSAGE + 10)]})
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_alive(client)


def _raw_request(tensor: tensor_pb2.TensorProto, name: str = "text") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny_translator"
    request.inputs[name].CopyFrom(tensor)
    return request


def _shape(*dims, unknown_rank=False):
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims],
        unknown_rank=unknown_rank)


@pytest.mark.parametrize("tensor, words", [
    # a huge announced shape with no values must not allocate anything
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
def test_malformed_tensor_protos(stub, client, tensor, words):
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(_raw_request(tensor), timeout=30)
    assert info.value.code() == INVALID
    for word in words:
        assert word in info.value.details(), info.value.details()
    assert time.monotonic() - started < 5
    assert_alive(client)


def test_empty_model_spec_and_garbage_bytes(server, stub, client):
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(predict_pb2.PredictRequest())
    assert info.value.code() == INVALID
    channel = grpc.insecure_channel(server.target)
    raw = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    for garbage in [b"\xff\xff\xff\xff", b"\x0a\x05\x0a\x03abc\x12\xff"]:
        with pytest.raises(grpc.RpcError) as info:
            raw(garbage, timeout=10)
        assert info.value.code() in (grpc.StatusCode.INTERNAL, INVALID, NOT_FOUND)
    channel.close()
    assert_alive(client)


def test_classify_errors(client, stub):
    assert client.classify("tiny_translator", []) == []
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tiny_translator"
    request.model_spec.signature_name = "classification"
    with pytest.raises(grpc.RpcError) as info:
        stub.Classify(request)
    assert info.value.code() == INVALID and "empty" in info.value.details()
    with pytest.raises(ServingError) as info:
        client.classify("tiny_translator", [{"text": b"\xff"}])
    assert info.value.code == INVALID and "UTF-8" in info.value.details
    with pytest.raises(ServingError) as info:  # serving_default is not a classifier
        client.classify("tiny_translator", ["x"], signature_name="serving_default")
    assert info.value.code == INVALID
    with pytest.raises(ServingError) as info:
        client.classify("tiny_translator", ["x"], signature_name="nope")
    # classifier.cc: INVALID_ARGUMENT, not Predict's FAILED_PRECONDITION
    assert info.value.code == INVALID
    assert "No signature was found with the name: nope" in info.value.details
    assert_alive(client)


def test_deadline_and_unavailable_retries(client):
    with pytest.raises(ServingError) as info:
        client.predict("tiny_translator", {"text": ["x"]}, timeout=1e-6)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # Nothing listens on port 1: UNAVAILABLE after 3 retries with backoff 0.05, 0.1, 0.2 (x0.5-1.5)
    with Client("127.0.0.1:1", timeout=2, retries=3, backoff=0.05) as dead:
        started = time.monotonic()
        with pytest.raises(ServingError) as info:
            dead.translate("m", ["x"])
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started >= 0.15
    assert_alive(client)


# ---------------------------------------------------------------------------- fuzzing

_DTYPES = [types_pb2.DT_STRING, types_pb2.DT_FLOAT, types_pb2.DT_INT32, types_pb2.DT_INT64,
           types_pb2.DT_DOUBLE, types_pb2.DT_BOOL, types_pb2.DT_HALF, types_pb2.DT_UINT8,
           types_pb2.DT_INVALID, types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT, 99]


@st.composite
def tensor_protos(draw):
    dtype = draw(st.sampled_from(_DTYPES))
    dims = draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 17, 2**40]), max_size=3))
    tensor = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=_shape(
        *dims, unknown_rank=draw(st.booleans()) and draw(st.booleans())))
    kind = draw(st.sampled_from(["string", "float", "int", "content", "none"]))
    if kind == "string":
        tensor.string_val.extend(draw(st.lists(st.one_of(
            st.binary(max_size=12), st.text(max_size=8).map(str.encode)), max_size=5)))
    elif kind == "float":
        tensor.float_val.extend(draw(st.lists(st.floats(width=32), max_size=5)))
    elif kind == "int":
        tensor.int_val.extend(draw(st.lists(st.integers(-2**31, 2**31 - 1), max_size=5)))
    elif kind == "content":
        tensor.tensor_content = draw(st.binary(max_size=40))
    return tensor


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tensor=tensor_protos(), name=st.sampled_from(["text", "text", "other"]))
def test_fuzzed_tensors_never_break_the_server(stub, tensor, name):
    try:
        response = stub.Predict(_raw_request(tensor, name), timeout=30)
    except grpc.RpcError as error:
        assert error.code() == INVALID, (error.code(), error.details())
        if name == "other":
            assert "other" in error.details()
        return
    # accepted: it was a valid batch of UTF-8 strings
    assert name == "text" and tensor.dtype == types_pb2.DT_STRING
    batch = tf.make_ndarray(response.outputs["translation"]).shape[0]
    assert batch == tensor.tensor_shape.dim[0].size


def test_server_answers_after_fuzzing(client):
    assert_alive(client)
    assert client.health() == "SERVING"
