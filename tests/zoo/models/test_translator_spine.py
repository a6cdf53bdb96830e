"""The spine end to end: train (MLflow) → export (XLA SavedModel) → gRPC → translation."""

import json

import mlflow
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import serving
from export import export_model
from export.saved_model import METADATA_FILE


def test_tiny_translator_loss_falls(trained_translator):
    losses = [epoch["loss"] for epoch in trained_translator.history]
    assert len(losses) == 3
    assert losses[0] > losses[1] > losses[2], losses
    # An untrained model scores about ln(vocab) (uniform guess); training must get well below.
    uniform = np.log(trained_translator.model.vocab_size)
    assert losses[-1] < 0.8 * uniform, (losses, uniform)
    val_losses = [epoch["val_loss"] for epoch in trained_translator.history]
    assert val_losses[-1] < val_losses[0], val_losses


def test_training_leaves_no_staging_directories(trained_translator, training_tempdir):
    """Artifacts are staged in temp dirs for MLflow to copy; none may outlive the training."""
    assert trained_translator.run_id
    leftovers = sorted(p.name for p in training_tempdir.iterdir() if p.name.startswith("zoo-"))
    assert not leftovers, leftovers


def test_mlflow_run_has_params_metrics_and_heatmaps(trained_translator, tracking_dir):
    client = mlflow.MlflowClient()
    run = client.get_run(trained_translator.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "luong_translator"
    assert params["attention"] == "luong_general"
    assert params["vocab_size"] == "1000" and params["epochs"] == "3"
    for key in ("loss", "val_loss", "val_bleu", "learning_rate", "target_tokens_per_second"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2, 3], key
    assert "test_bleu" in run.data.metrics
    assert run.data.tags["zoo.model"] == "luong_translator"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "translation"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "attention", "tokenizer", "samples", "model"} <= artifacts
    heatmaps = [a.path for a in client.list_artifacts(run.info.run_id, "attention")]
    assert heatmaps == ["attention/sentence_00.png", "attention/sentence_01.png"]
    local = client.download_artifacts(run.info.run_id, heatmaps[0])
    with open(local, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def exported(trained_translator, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    path = export_model(trained_translator.model, root, name="luong_translator",
                        source={"run_id": trained_translator.run_id})
    return root, path


def test_export_layout_and_models_config(exported):
    root, path = exported
    assert path == root / "luong_translator" / "1"
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    assert not [p for p in (root / "luong_translator").iterdir() if p.name.startswith(".")]
    config = (root / "models.config").read_text()
    assert "name: 'luong_translator'" in config or 'name: "luong_translator"' in config
    metadata = json.loads((path / "assets.extra" / METADATA_FILE).read_text())
    assert metadata["jit_compile"] is True and metadata["source"]["run_id"]


def test_second_export_is_the_next_version(trained_translator, exported):
    root, _ = exported
    path = export_model(trained_translator.model, root, name="luong_translator")
    assert path.name == "2"


def test_signature_names_dtypes_shapes(exported):
    _, path = exported
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert list(inputs) == ["text"] and inputs["text"].dtype == tf.string
    assert inputs["text"].shape.as_list() == [None]
    outputs = signature(text=tf.constant(["Ein Mann fährt Fahrrad.", "Zwei Hunde."]))
    assert outputs["translation"].dtype == tf.string and outputs["translation"].shape == [2]
    attention = outputs["attention"].numpy()
    assert attention.dtype == np.float32 and attention.ndim == 3 and attention.shape[0] == 2
    target, source = attention.shape[1:]
    assert outputs["source_tokens"].shape == [2, source]
    assert outputs["target_tokens"].shape == [2, target]
    lengths = outputs["target_lengths"].numpy()
    # each emitted token's attention row is a distribution over the source
    for row in range(2):
        sums = attention[row, : lengths[row]].sum(-1)
        np.testing.assert_allclose(sums, 1.0, atol=1e-4)
        assert np.all(attention[row, lengths[row]:] == 0)


def test_numeric_core_is_jit_compiled(exported):
    _, path = exported
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    functions = proto.meta_graphs[0].graph_def.library.function
    jitted = [f.signature.name for f in functions
              if f.attr.get("_XlaMustCompile") and f.attr["_XlaMustCompile"].b]
    assert any("decode_n_best" in name for name in jitted), jitted


def test_grpc_round_trip_through_our_server(exported, trained_translator):
    root, _ = exported
    handle = serving.start_server(model_root=str(root), port=0)
    try:
        client = serving.Client(f"127.0.0.1:{handle.port}", timeout=60)
        texts = ["Ein Mann fährt Fahrrad.", "Eine Frau singt."]
        translations = client.translate("luong_translator", texts)
        assert translations == trained_translator.model.translate(texts)
        metadata = client.metadata("luong_translator")
        assert "serving_default" in str(metadata)
    finally:
        handle.stop()
