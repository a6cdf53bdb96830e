"""Export of a real (tiny, trained) translator: op check against stock TF Serving, warm-up
requests, bucketed shapes, and the no-XLA export.

Every SavedModel exported here goes through `export.op_check.check_saved_model`.
"""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from export import export_model
from export.op_check import (
    PYTHON_ONLY_OPS,
    OpCheckError,
    check_saved_model,
    graph_ops,
    tensorflow_core_ops,
    tf_text_ops_lib,
)
from export.saved_model import METADATA_FILE
from serving.warmup import read_warmup_requests
from zoo.config import ConfigError
from zoo.models.serving_modules import BATCH_BUCKETS, WARMUP_SOURCE_LENGTHS, pad_batch
from zoo.tasks.sequence_outputs import with_decoding
from zoo.tracking.loading import load_trained

TEXTS = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.",
         "Eine Frau in einem roten Kleid liest ein Buch.", "Kinder spielen am Strand.",
         "Ein kleines Mädchen klettert in ein Spielhaus aus Holz."]


@pytest.fixture(scope="module")
def exports(trained_translator, tmp_path_factory):
    """The tiny translator exported twice, XLA core and plain, both op-checked on export."""
    root = tmp_path_factory.mktemp("export")
    xla = export_model(trained_translator.model, root / "xla", name="luong_translator",
                       check_ops=True)
    plain = export_model(trained_translator.model, root / "plain", name="luong_translator",
                         jit_compile=False, check_ops=True, warmup_lengths=(8,))
    return {"xla": xla, "plain": plain}


def _functions(path):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    return proto.meta_graphs[0].graph_def.library.function


def _serve(path):
    return tf.saved_model.load(str(path)).signatures["serving_default"]


# ------------------------------------------------------------------------------ op check

def test_exports_pass_the_op_check(exports):
    for path in exports.values():
        report = check_saved_model(path)
        assert report.ok and not report.problems
        # the tokenizer's tf-text ops (ops_lib) and the core ops of the numeric core
        assert {"SentencepieceOp", "SentencepieceTokenizeOp",
                "SentencepieceDetokenizeOp"} <= set(report.tf_text_ops)
        assert {"MatMul", "While"} <= set(report.core_ops)
        metadata = json.loads((path / "assets.extra" / METADATA_FILE).read_text())
        assert metadata["op_check"]["ok"] is True
        assert metadata["op_check"]["tf_serving_version"] == "2.20"


def test_op_listing_covers_nested_functions(exports):
    ops, functions, problems = graph_ops(exports["xla"])
    assert functions > 3 and not problems
    # The main GraphDef holds variables and calls; the model's ops live in the library, the
    # decoder's argmax in the body of the While loop inside the XLA-compiled function.
    assert "graph" in ops["PartitionedCall"] + ops["StatefulPartitionedCall"]
    assert "graph" not in ops["MatMul"]
    assert ops["ArgMax"] and all("while_body" in place for place in ops["ArgMax"])
    assert any("decode_n_best" in place for place in ops["While"]), ops["While"]
    # function calls are followed, not reported as ops
    assert not [op for op in ops if op.startswith("__inference")]


def test_core_ops_are_tensorflow_without_tf_text():
    core = tensorflow_core_ops()
    text_ops = set(tf_text_ops_lib()["ops"])
    assert {"MatMul", "StringSplitV2", "While", "PartitionedCall"} <= core
    assert not core & text_ops
    assert not core & PYTHON_ONLY_OPS
    # This process has imported tensorflow_text: every op it registered beyond the core must
    # be in the data file (or the data file is stale for the installed tensorflow-text).
    import tensorflow_text  # noqa: F401
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    registered = op_def_pb2.OpList()
    registered.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    extra = {op.name for op in registered.op} - core - PYTHON_ONLY_OPS
    assert "SentencepieceOp" in extra
    assert extra <= text_ops, sorted(extra - text_ops)


def test_tf_text_data_file_cites_its_sources():
    from export.op_check import TF_TEXT_OPS_FILE

    data = json.loads(TF_TEXT_OPS_FILE.read_text())
    cited = {(s.get("repo"), s.get("path")) for s in data["sources"]}
    assert ("tensorflow/serving", "tensorflow_serving/model_servers/BUILD") in cited
    assert ("tensorflow/text", "tensorflow_text/BUILD") in cited
    assert all(len(s["commit"]) == 40 for s in data["sources"] if "repo" in s)
    assert any("2267" in s.get("url", "") for s in data["sources"])
    libraries = data["libraries"]
    assert libraries["trimmer_ops"]["min_tf_serving"] == "2.20"
    assert "TFText>RoundRobinTrim" in libraries["trimmer_ops"]["ops"]
    assert "TFText>Utf8Binarize" in libraries["utf8_binarize_op"]["ops"]
    assert all(lib["ops"] for lib in libraries.values())


def _module_saved_model(tmp_path, function, spec):
    module = tf.Module()
    module.f = tf.function(function, input_signature=[spec])
    path = tmp_path / "model"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.f})
    return path


def test_op_check_rejects_python_ops(tmp_path):
    path = _module_saved_model(
        tmp_path, lambda x: {"y": tf.py_function(lambda v: v * 2, [x], tf.float32)},
        tf.TensorSpec([None], tf.float32))
    with pytest.raises(OpCheckError) as info:
        check_saved_model(path)
    assert "'EagerPyFunc'" in str(info.value) and "Python" in str(info.value)


def test_op_check_knows_the_tf_text_version_caveat(tmp_path):
    import tensorflow_text as tf_text

    def trim(text):
        words = tf.strings.split(text)
        first, _ = tf_text.RoundRobinTrimmer(max_seq_length=4).trim([words, words])
        return {"n": first.row_lengths()}

    path = _module_saved_model(tmp_path, trim, tf.TensorSpec([None], tf.string))
    assert check_saved_model(path, "2.20").tf_text_ops == ["TFText>RoundRobinTrim"]
    with pytest.raises(OpCheckError) as info:
        check_saved_model(path, "2.19")
    assert "'TFText>RoundRobinTrim'" in str(info.value) and "2267" in str(info.value)


def test_op_check_names_unknown_ops_and_where(exports, tmp_path):
    """An op nobody registers, hidden in a nested function, and a call to a missing function."""
    path = tmp_path / "broken"
    shutil.copytree(exports["plain"], path)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    library = proto.meta_graphs[0].graph_def.library.function
    target = next(f for f in library
                  if any(node.op == "MatMul" for node in f.node_def))
    next(node for node in target.node_def if node.op == "MatMul").op = "ZooCustomMatMul"
    caller = next(f for f in library
                  if any(n.attr["f"].func.name for n in f.node_def if "f" in n.attr))
    call = next(n for n in caller.node_def if "f" in n.attr and n.attr["f"].func.name)
    call.attr["f"].func.name = "__inference_missing_function_0"
    (path / "saved_model.pb").write_bytes(proto.SerializeToString())

    report = check_saved_model(path, raise_error=False)
    assert not report.ok
    text = "\n".join(report.problems)
    assert "'ZooCustomMatMul'" in text and target.signature.name in text
    assert "__inference_missing_function_0" in text and caller.signature.name in text
    with pytest.raises(OpCheckError, match="ZooCustomMatMul"):
        check_saved_model(path)


def test_failed_check_publishes_nothing(trained_translator, tmp_path, monkeypatch):
    from export import op_check

    monkeypatch.setattr(op_check, "tensorflow_core_ops",
                        lambda: frozenset(tensorflow_core_ops()) - {"MatMul"})
    with pytest.raises(OpCheckError, match="'MatMul'"):
        export_model(trained_translator.model, tmp_path, name="m", check_ops=True,
                     warmup_lengths=())
    assert not list((tmp_path / "m").iterdir())


def test_cli_export_check(trained_translator, tmp_path, capsys):
    from zoo.cli import main

    status = main(["export", str(trained_translator.model_path), "--model-dir", str(tmp_path),
                   "--name", "checked", "--check", "--no-xla"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert (tmp_path / "checked" / "1" / "saved_model.pb").is_file()
    assert "stock TF Serving >= 2.20: OK" in out and "SentencepieceOp" in out


def test_export_decodes_as_set_and_serves_the_n_best(trained_translator, tmp_path, capsys):
    """`zoo export --set decoding=beam ...`: the XLA export runs beam search; `translation`
    is its best hypothesis, as `translate` with the same decoding gives it."""
    from zoo.cli import main

    status = main(["export", str(trained_translator.model_path), "--model-dir", str(tmp_path),
                   "--name", "beam", "--set", "decoding=beam", "--set", "beam_width=3",
                   "--set", "n_best=2"])
    assert status == 0, capsys.readouterr().out
    path = tmp_path / "beam" / "1"
    metadata = json.loads((path / "assets.extra" / METADATA_FILE).read_text())
    assert {key: metadata["config"][key] for key in ("decoding", "beam_width", "n_best")} == {
        "decoding": "beam", "beam_width": 3, "n_best": 2}
    served = _serve(path)(text=tf.constant(TEXTS))
    model = with_decoding(load_trained(trained_translator.model_path)[0],
                          {"decoding": "beam", "beam_width": 3})
    expected = model.translate(TEXTS)
    assert [t.decode() for t in served["translation"].numpy()] == expected
    hypotheses = served["hypotheses"].numpy()
    assert hypotheses.shape == (len(TEXTS), 2)
    assert [h.decode() for h in hypotheses[:, 0]] == expected
    scores = served["hypothesis_scores"].numpy()
    assert scores.shape == (len(TEXTS), 2) and np.all(scores[:, 0] >= scores[:, 1])
    attention = served["hypothesis_attention"].numpy()
    assert attention.shape[:2] == (len(TEXTS), 2)
    np.testing.assert_array_equal(attention[:, 0], served["attention"].numpy())
    np.testing.assert_array_equal(served["hypothesis_lengths"].numpy()[:, 0],
                                  served["target_lengths"].numpy())
    with pytest.raises(ConfigError, match="'beam_widht' is not a decoding key"):
        with_decoding(model, {"beam_widht": 3})
    with pytest.raises(ConfigError, match="n_best"):
        with_decoding(model, {"n_best": 4})  # more than beam_width


def test_greedy_export_serves_one_hypothesis(exports):
    """The fixture's config decodes greedily: one hypothesis, the translation."""
    served = _serve(exports["xla"])(text=tf.constant(TEXTS))
    assert served["hypotheses"].shape == (len(TEXTS), 1)
    assert list(served["hypotheses"].numpy()[:, 0]) == list(served["translation"].numpy())
    np.testing.assert_array_equal(served["hypothesis_lengths"].numpy()[:, 0],
                                  served["target_lengths"].numpy())


# ------------------------------------------------------------------------------ warm-up, buckets

def test_warmup_requests_cover_batch_and_length_buckets(exports, trained_translator):
    records = read_warmup_requests(exports["xla"])
    shapes = set()
    for record in records:
        request = record.predict_log.request
        assert request.model_spec.name == "luong_translator"
        texts = tf.make_ndarray(request.inputs["text"])
        ids = trained_translator.model.encode_texts(tf.constant(texts))
        shapes.add(tuple(ids.shape))
    lengths = sorted({length for _, length in shapes})
    assert lengths == list(WARMUP_SOURCE_LENGTHS), lengths
    assert shapes == {(b, n) for b in BATCH_BUCKETS for n in lengths}
    assert len(records) == len(shapes)
    metadata = json.loads((exports["xla"] / "assets.extra" / METADATA_FILE).read_text())
    assert metadata["warmup"]["requests"] == len(records)
    assert metadata["batch_buckets"] == list(BATCH_BUCKETS)


def test_pad_batch_buckets():
    ids = tf.reshape(tf.range(3 * 8), [3, 8])
    for batch, padded in [(1, 1), (2, 2), (3, 4), (5, 8), (17, 32), (32, 32), (33, 64), (70, 96)]:
        rows = tf.tile(ids[:1], [batch, 1])
        assert pad_batch(rows, BATCH_BUCKETS).shape == (padded, 8)
    out = pad_batch(ids, BATCH_BUCKETS).numpy()
    np.testing.assert_array_equal(out[:3], ids.numpy())
    np.testing.assert_array_equal(out[3], ids.numpy()[0])
    assert pad_batch(tf.zeros([0, 8], tf.int32), BATCH_BUCKETS).shape == (0, 8)


def test_padded_batches_translate_like_single_sentences(exports):
    serve = _serve(exports["xla"])
    batch = serve(text=tf.constant(TEXTS))  # 5 rows, padded to 8 inside
    assert batch["translation"].shape == [5]
    assert batch["attention"].shape[0] == 5 and batch["target_lengths"].shape == [5]
    singles = [serve(text=tf.constant([text]))["translation"].numpy()[0] for text in TEXTS]
    assert list(batch["translation"].numpy()) == singles


# ------------------------------------------------------------------------------ no-XLA export

def test_no_xla_export_has_no_xla_functions(exports):
    def jitted(path):
        return [f.signature.name for f in _functions(path)
                if f.attr.get("_XlaMustCompile") and f.attr["_XlaMustCompile"].b]

    assert jitted(exports["xla"])
    assert jitted(exports["plain"]) == []
    # jit_compile=False marks functions `_XlaMustCompile: false` (never auto-clustered either)
    marked = [f.attr["_XlaMustCompile"].b for f in _functions(exports["plain"])
              if "_XlaMustCompile" in f.attr]
    assert marked and not any(marked)
    metadata = json.loads((exports["plain"] / "assets.extra" / METADATA_FILE).read_text())
    assert metadata["jit_compile"] is False


def test_no_xla_export_translates_like_the_xla_export(exports, trained_translator):
    xla, plain = _serve(exports["xla"]), _serve(exports["plain"])
    texts = tf.constant(TEXTS)
    a, b = xla(text=texts), plain(text=texts)
    assert list(a["translation"].numpy()) == list(b["translation"].numpy())
    np.testing.assert_array_equal(a["target_tokens"].numpy(), b["target_tokens"].numpy())
    np.testing.assert_allclose(a["attention"].numpy(), b["attention"].numpy(), atol=1e-4)
    assert [t.decode() for t in a["translation"].numpy()] == \
        trained_translator.model.translate(TEXTS)
