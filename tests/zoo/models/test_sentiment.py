"""Sentiment end to end: the pooling layers, every `sentiment*` builder, a tiny SST-2 training
through the real trainer (sqlite MLflow store), `.keras` round trip, export (XLA core, op
check) and our gRPC server's Predict and Classify."""

import os

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import serving
import zoo
from export import export_model
from export.op_check import check_saved_model
from tests.layer_test_case import padding_mask, run_pooling_layer_test
from tests.support import check_word_vector_init
from zoo import attention as attention_lib
from zoo.config import CONFIG_DIR, ConfigError
from zoo.data import data_dir
from zoo.layers import AttentionPooling, StructuredSelfAttention
from zoo.layers.structured_self_attention import frobenius_penalty
from zoo.models.sentiment_classifier import SentimentClassifier
from zoo.tasks import get_task
from zoo.text import UNK_ID, WordTokenizer
from zoo.training import train

TINY = {"embedding_dim": 16, "lstm_units": 8, "hops": 2, "attention_units": 8,
        "mlp_units": 16, "dropout": 0.1}
TINY_TRAINING = {
    **TINY, "train_limit": 3000, "eval_limit": 64, "valid_sentences": 40, "valid_rows": 0,
    "vocab_size": 600,
    "batch_size": 32, "epochs": 3, "learning_rate": 0.01, "warmup_steps": 5, "heatmaps": 2,
    "samples": 5,
}
# Weights that may sum to less than 1: local-p's Gaussian leaves mass unassigned, and hard
# monotonic attention (inference) may scan past the last token.
AT_MOST_ONE = {"local", "monotonic"}
TEXTS = ["a gorgeous , witty , seductive movie .", "It's a dull, LIFELESS mess..."]


def require_sst2():
    if not (data_dir() / "sentiment" / "train.tsv").is_file():
        pytest.skip("SST-2 not found under ZOO_DATA_DIR")


# ------------------------------------------------------------------------- pooling layers


def structured_reference(layer, values, mask):
    """Lin et al. 2017 in NumPy: A = softmax(W_s2 tanh(W_s1 Hᵀ)) over the real tokens."""
    w_s1, w_s2 = (w.numpy() for w in (layer.w_s1, layer.w_s2))
    scores = np.einsum("bsu,ur->brs", np.tanh(values @ w_s1), w_s2)
    scores = np.where(mask[:, None, :], scores, -np.inf)
    top = np.max(scores, axis=-1, keepdims=True)
    exp = np.where(mask[:, None, :], np.exp(scores - np.where(np.isfinite(top), top, 0)), 0.0)
    weights = exp / np.maximum(exp.sum(-1, keepdims=True), 1e-9)
    return weights @ values, weights


def test_structured_self_attention_layer(tmp_path):
    run_pooling_layer_test(StructuredSelfAttention, {"units": 5, "hops": 3, "penalty": 0.3},
                           directory=str(tmp_path), reference=structured_reference)


@pytest.mark.parametrize("name", ["additive", "multi_head", "location_sensitive"])
def test_attention_pooling_layer(tmp_path, name):
    run_pooling_layer_test(AttentionPooling, {"attention": name, "hops": 2, "penalty": 0.1},
                           directory=str(tmp_path))


def test_frobenius_penalty_is_added_in_training_only():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = padding_mask([5, 3, 1], 5)
    layer = StructuredSelfAttention(units=6, hops=3, penalty=0.5)
    _, weights = layer(values, mask=mask, training=True)
    assert len(layer.losses) == 1
    a = weights.numpy()
    gram = a @ a.transpose(0, 2, 1)
    expected = 0.5 * np.mean(np.sum((gram - np.eye(3)) ** 2, axis=(1, 2)))
    np.testing.assert_allclose(layer.losses[0].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(frobenius_penalty(tf.eye(3)[None]).numpy(), 0.0, atol=1e-7)
    layer(values, mask=mask, training=False)
    assert not layer.losses


# ------------------------------------------------------------------------------- builders


def sentiment_builders():
    return [name for name in zoo.list_models() if name.startswith("sentiment")]


def test_one_builder_and_config_per_attention():
    expected = {"sentiment"} | {f"sentiment_{name}" for name in attention_lib.names()}
    assert set(sentiment_builders()) == expected
    for name in expected:
        assert (CONFIG_DIR / f"{name}.yaml").is_file(), name
        config = zoo.resolve_config(name)
        assert config["task"] == "sentiment"
        assert config["attention"] == ("structured" if name == "sentiment"
                                       else name[len("sentiment_"):])
        assert 0 < config["time_budget_minutes"] <= 30  # the bar: ≤ 30 minutes of training


@pytest.mark.parametrize("name", sentiment_builders())
def test_every_builder_builds_and_masks_padding(name):
    model = zoo.build(name, vocab_size=50, **TINY)
    assert model.task == "sentiment"
    ids = np.array([[5, 6, 7, 8, 9, 0, 0, 0], [4, 9, 0, 0, 0, 0, 0, 0]], np.int32)
    result = model.classify(ids)
    probabilities = result["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    weights = result["attention"].numpy()
    assert weights.shape == (2, 2, 8)
    assert np.all(weights[ids[:, None, :].repeat(2, 1) == 0] == 0.0)
    sums = weights.sum(-1)
    if model.attention_name in AT_MOST_ONE:
        assert np.all(sums <= 1.0 + 1e-5)
    else:
        np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    # Padding never changes a row's result.
    alone = model.classify(ids[1:, :2])
    np.testing.assert_allclose(alone["probabilities"].numpy(), probabilities[1:], atol=1e-5)


def test_ensemble_predicts_the_members_mean_and_trains_each_on_its_own_loss():
    # No dropout: a training call is deterministic, so the members can be re-run one by one.
    model = zoo.build("sentiment", vocab_size=50, **{
        **TINY, "dropout": 0.0, "embedding_dropout": 0.0, "word_dropout": 0.0, "members": 3})
    ids = np.array([[5, 6, 7, 8, 9, 0, 0, 0], [4, 9, 0, 0, 0, 0, 0, 0]], np.int32)
    result = model.classify(ids)
    members = [tower(ids, training=False) for tower in model.towers]
    logits = np.stack([logit.numpy() for logit, _ in members])
    assert not np.allclose(logits[0], logits[1])  # independently initialised
    np.testing.assert_allclose(result["probabilities"].numpy(),
                               tf.nn.softmax(logits).numpy().mean(0), atol=1e-6)
    np.testing.assert_allclose(result["attention"].numpy(),
                               np.mean([w.numpy() for _, w in members], 0), atol=1e-6)
    assert np.all(result["attention"].numpy()[:, :, 5:] == 0.0)  # padding, every member
    np.testing.assert_allclose(tf.function(model.classify, jit_compile=True)(ids)
                               ["probabilities"].numpy(), result["probabilities"], atol=1e-5)
    # Training: each member's cross-entropy and penalty against the labels, averaged.
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    model.compile(optimizer="adam", loss=loss)
    labels = tf.one_hot([1, 0], 2)
    member_logits = model(ids, training=True)
    assert member_logits.shape == (2, 3, 2)
    total = model.compute_loss(ids, labels, member_logits, training=True)
    expected = 0.0
    for index, tower in enumerate(model.towers):
        logit, weights = tower(ids, training=True)
        np.testing.assert_allclose(member_logits[:, index], logit, atol=1e-6)
        expected += (loss(labels, logit) + 0.3 * frobenius_penalty(weights)) / 3
    np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=1e-5)
    # Evaluation scores the ensemble's mean probability, as served.
    mean_logits = model(ids, training=False)
    np.testing.assert_allclose(tf.nn.softmax(mean_logits).numpy(), result["probabilities"],
                               atol=1e-6)
    with pytest.raises(ConfigError, match="members"):
        zoo.resolve_config("sentiment", {"members": 0})


def test_word_dropout_turns_real_tokens_into_unk_in_training_only():
    model = zoo.build("sentiment", vocab_size=50, **{**TINY, "word_dropout": 0.3, "members": 1})
    ids = np.full((64, 40), 7, np.int32)
    ids[:, 30:] = 0
    dropped = model.drop_words(tf.constant(ids), training=True).numpy()
    assert np.all(dropped[:, 30:] == 0)  # padding stays padding
    assert set(np.unique(dropped[:, :30])) == {UNK_ID, 7}
    assert abs(np.mean(dropped[:, :30] == UNK_ID) - 0.3) < 0.03  # 1,920 tokens
    np.testing.assert_array_equal(model.drop_words(tf.constant(ids), training=False), ids)
    logits = model(ids[:4], training=True)  # and it trains, under jit_compile too
    assert logits.shape == (4, 2)
    assert tf.function(lambda x: model(x, training=True), jit_compile=True)(ids[:4]).shape \
        == (4, 2)
    restored = SentimentClassifier.from_config(model.get_config())
    assert restored.word_dropout == 0.3
    with pytest.raises(ConfigError, match="word_dropout"):
        zoo.resolve_config("sentiment", {"word_dropout": 1.0})


def test_length_weighted_batches_keep_each_weight_with_its_example():
    from zoo.tasks.sentiment import length_weights, make_dataset

    lengths = [1, 2, 3, 4, 6, 8, 10, 12] * 4
    ids = tf.ragged.constant([[5 + n] * n for n in lengths], dtype=tf.int32)
    labels = np.array([n % 2 for n in lengths], np.int32)
    weights = length_weights(ids)
    np.testing.assert_allclose(weights.mean(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(weights, np.array(lengths) / np.mean(lengths), rtol=1e-6)
    seen = 0
    for batch_ids, one_hot, batch_weights in make_dataset(ids, labels, 8, shuffle=True,
                                                          weights=weights):
        real = np.sum(batch_ids.numpy() != 0, axis=1)
        np.testing.assert_allclose(batch_weights, real / np.mean(lengths), rtol=1e-6)
        np.testing.assert_array_equal(np.argmax(one_hot, -1), real % 2)
        seen += len(real)
    assert seen == len(lengths)
    # Keras takes the third element as sample weights.
    model = zoo.build("sentiment", vocab_size=50, **{**TINY, "word_dropout": 0.2})
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    history = model.fit(make_dataset(ids, labels, 8, weights=weights, repeat=True),
                        steps_per_epoch=3, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def test_bad_configs_name_the_key():
    with pytest.raises(ConfigError, match="attention"):
        zoo.resolve_config("sentiment", {"attention": "nope"})
    with pytest.raises(ConfigError, match="attention_options"):
        zoo.resolve_config("sentiment", {"attention_options": {"units": 3}})
    with pytest.raises(ConfigError, match="hops"):
        zoo.resolve_config("sentiment", {"hops": 0})
    with pytest.raises(ConfigError, match="word_vector_corpora"):
        zoo.resolve_config("sentiment", {"word_vector_corpora": ["qa", "imdb"]})


def test_word_vectors_start_every_members_embedding_and_nothing_else():
    require_sst2()
    _, examples, logged = check_word_vector_init(
        "sentiment", {**TINY, "members": 2, "train_limit": 2000, "valid_sentences": 20,
                      "valid_rows": 0,
                      "word_vector_limit": 50, "word_vector_epochs": 1},
        lambda model: [tower.encoder.embedding.embeddings for tower in model.towers])
    assert logged["word_vector_texts"] == 4 * 50 + len(examples)


def test_valid_rows_holds_out_random_rows_and_trains_on_the_rest():
    require_sst2()
    from zoo.tasks.sentiment import split_train_valid

    train, valid = split_train_valid(3000, 40, 0, 300)
    assert len(valid) == 300 and len(train) == 2700
    assert not {id(e) for e in train} & {id(e) for e in valid}
    assert split_train_valid(3000, 40, 1, 300)[1] != valid  # drawn with the seed
    sentences, _ = split_train_valid(3000, 40, 0)  # held-out sentences drop their phrases
    assert len(sentences) < 3000 - 40
    with pytest.raises(ValueError, match="valid_rows"):
        split_train_valid(100, 40, 0, 60)


def test_raw_text_is_normalized_like_sst():
    normalize = SentimentClassifier.normalize
    out = normalize(["It's GREAT, isn't it?! 10,000 times... (Mr. Smith)."]).numpy()[0]
    assert out.decode() == "it 's great , is n't it ? ! 10,000 times ... ( mr. smith ) ."
    sst = "the film 's ending has a `` what was it all for ? '' and does n't care ."
    assert normalize([sst]).numpy()[0].decode() == sst


# -------------------------------------------------------------- training through the trainer


@pytest.fixture(scope="module")
def trained(tracking_dir, tmp_path_factory):
    require_sst2()
    output = tmp_path_factory.mktemp("runs")
    old_cwd = os.getcwd()
    os.chdir(tracking_dir)  # MLflow's default artifact root is relative to the working dir
    try:
        return train("sentiment", TINY_TRAINING, output_dir=output, verbose=0)
    finally:
        os.chdir(old_cwd)


def test_tiny_training_loss_falls_and_learns(trained):
    # The training loss includes the Frobenius penalty; the validation loss does not.
    losses = [epoch["loss"] for epoch in trained.history]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2], losses
    assert min(epoch["val_loss"] for epoch in trained.history) < np.log(2), trained.history
    assert trained.metrics["test_accuracy"] > 55.0, trained.metrics  # chance is about 50


def test_mlflow_run_has_accuracy_and_heatmaps(trained, tracking_dir):
    client = mlflow.MlflowClient()
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "sentiment"
    assert run.data.params["model"] == "sentiment"
    assert run.data.params["attention"] == "structured"
    assert run.data.params["precision"] == "mixed_bfloat16"  # configs/sentiment.yaml
    assert run.data.params["tokenization"] == "word"  # configs/sentiment.yaml
    tokenizer = {a.path for a in client.list_artifacts(trained.run_id, "tokenizer")}
    assert tokenizer == {"tokenizer/words.txt", "tokenizer/vocabulary.txt"}
    history = client.get_metric_history(trained.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert all(0.0 <= m.value <= 100.0 for m in history)
    assert 0.0 <= run.data.metrics["test_accuracy"] <= 100.0
    heatmaps = [a.path for a in client.list_artifacts(trained.run_id, "attention")]
    assert heatmaps == ["attention/sentence_00.png", "attention/sentence_01.png"]
    with open(client.download_artifacts(trained.run_id, heatmaps[0]), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    samples = {a.path for a in client.list_artifacts(trained.run_id, "samples")}
    assert "samples/predictions.tsv" in samples
    table = client.download_artifacts(trained.run_id, "samples/predictions.tsv")
    with open(table, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == "text\tlabel\tprediction\tprobability" and len(lines) == 6


def test_predict_texts_and_keras_round_trip(trained):
    model = trained.model
    result = model.predict_texts(TEXTS)
    assert result["labels"] == [model.labels[i] for i in result["probabilities"].argmax(-1)]
    # Raw text is read as SST's lower-cased, split form.
    sst_form = model.predict_texts(["it 's a dull , lifeless mess ..."])
    assert sst_form["tokens"][0] == result["tokens"][1]
    np.testing.assert_allclose(sst_form["probabilities"][0], result["probabilities"][1],
                               atol=1e-6)
    for weights, tokens in zip(result["attention"], result["tokens"], strict=True):
        assert weights.shape == (2, len(tokens))
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    loaded = keras.saving.load_model(trained.model_path, compile=False)
    assert isinstance(loaded.tokenizer, WordTokenizer)  # the vocabulary travels in the config
    again = loaded.predict_texts(TEXTS)
    np.testing.assert_allclose(again["probabilities"], result["probabilities"], atol=1e-6)
    assert again["tokens"] == result["tokens"] and again["labels"] == result["labels"]


def test_test_accuracy_is_the_glue_dev_accuracy(trained):
    from zoo.data.sst2 import load_sst2
    from zoo.metrics import accuracy

    examples = load_sst2("test", limit=TINY_TRAINING["eval_limit"])
    result = trained.model.predict_texts([e["sentence"] for e in examples])
    predicted = result["probabilities"].argmax(-1)
    assert accuracy(predicted, [e["label"] for e in examples]) == pytest.approx(
        trained.metrics["test_accuracy"])


# ------------------------------------------------------------------------ export and serving


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    path = export_model(trained.model, root, name="sentiment", warmup_batch_sizes=(1, 2),
                        warmup_lengths=(8, 16), check_ops=True)
    return root, path


def test_export_passes_the_op_check_and_compiles_the_core(exported):
    _, path = exported
    assert check_saved_model(path).ok
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    jitted = [f.signature.name for f in proto.meta_graphs[0].graph_def.library.function
              if f.attr.get("_XlaMustCompile") and f.attr["_XlaMustCompile"].b]
    assert any("classify" in name for name in jitted), jitted
    signatures = proto.meta_graphs[0].signature_def
    assert set(signatures) >= {"serving_default", "classification"}
    assert set(signatures["classification"].inputs) == {"inputs"}
    assert set(signatures["classification"].outputs) == {"classes", "scores"}
    assert (path / "assets.extra" / "tf_serving_warmup_requests").is_file()


def test_no_xla_export_serves_the_same(exported, trained, tmp_path):
    _, xla_path = exported
    path = export_model(trained.model, tmp_path, name="sentiment", jit_compile=False,
                        warmup_lengths=(), check_ops=True)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    assert not [f for f in proto.meta_graphs[0].graph_def.library.function
                if f.attr.get("_XlaMustCompile") and f.attr["_XlaMustCompile"].b]
    outputs = [tf.saved_model.load(str(p)).signatures["serving_default"](
        text=tf.constant(TEXTS)) for p in (path, xla_path)]
    np.testing.assert_allclose(outputs[0]["probabilities"], outputs[1]["probabilities"],
                               atol=1e-5)


def test_export_scores_like_the_model(exported, trained):
    """`zoo evaluate EXPORT`: the served signature's accuracy is the Keras model's."""
    _, path = exported
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    task = get_task("sentiment")
    examples = task.read_split(trained.config, "test")
    assert task.evaluate_served(signature, trained.config, examples) == pytest.approx(
        {"accuracy": trained.metrics["test_accuracy"]})


def test_predict_and_classify_through_our_grpc_server(exported, trained, capsys):
    root, _ = exported
    expected = trained.model.predict_texts(TEXTS)
    handle = serving.start_server(model_root=str(root), port=0)
    try:
        with serving.Client(handle.target, timeout=120) as client:
            out = client.predict("sentiment", {"text": TEXTS})
            assert [label.decode() for label in out["label"]] == expected["labels"]
            np.testing.assert_allclose(out["probabilities"], expected["probabilities"],
                                       atol=1e-5)
            assert out["attention"].dtype == np.float32
            assert out["attention"].shape[:2] == (2, 2)
            for row, tokens in enumerate(expected["tokens"]):
                assert [t.decode() for t in out["tokens"][row] if t] == tokens
                np.testing.assert_allclose(out["attention"][row, :, :len(tokens)],
                                           expected["attention"][row], atol=1e-5)
                assert np.all(out["attention"][row, :, len(tokens):] == 0)
            classified = client.classify("sentiment", TEXTS)
            for row, classes in enumerate(classified):
                assert [label for label, _ in classes] == trained.model.labels
                np.testing.assert_allclose([score for _, score in classes],
                                           expected["probabilities"][row], atol=1e-5)
            # A batch of 3 is padded to the bucket of 4 inside and cut back.
            three = client.predict("sentiment", {"text": [*TEXTS, ""]})
            assert three["probabilities"].shape == (3, 2)
            np.testing.assert_allclose(three["probabilities"][:2], out["probabilities"],
                                       atol=1e-5)
        # `zoo predict` sees the label output in the signature and prints label + probability.
        from zoo import cli

        assert cli.main(["predict", "--server", handle.target, "--model", "sentiment",
                         *TEXTS]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert [line.split("\t")[:2] for line in lines] == [
            [text, label] for text, label in zip(TEXTS, expected["labels"], strict=True)]
    finally:
        handle.stop()
