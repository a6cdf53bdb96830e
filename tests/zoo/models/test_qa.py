"""Extractive QA end to end: the BiDAF attention layer, span mapping on real SQuAD, the
the `qa` builder (BiDAF), a tiny tracked training, export, op check and our gRPC server."""

import os
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import serving
import zoo
from export import export_model
from export.op_check import check_saved_model
from tests.layer_test_case import assert_outputs_close, padding_mask
from zoo.config import CONFIG_DIR, ConfigError
from zoo.layers.bidirectional_attention_flow import BidirectionalAttentionFlow
from zoo.layers.fused_bidirectional_lstm import FusedBidirectionalLSTM
from zoo.losses import SpanLoss
from zoo.models.bidaf_reader import best_spans, span_texts
from zoo.tasks import get_task
from zoo.tasks.qa import byte_span, token_span, tokenize_examples
from zoo.text import SubwordTokenizer
from zoo.training import train

TINY = {"embedding_dim": 16, "hidden_units": 8, "fusion_units": 16, "highway_layers": 1,
        "dropout": 0.0, "max_context_tokens": 64, "max_question_tokens": 16,
        "max_answer_tokens": 8}
TINY_TRAINING = {**TINY, "train_extra": False, "train_limit": 400, "eval_limit": 40,
                 "test_limit": 60, "vocab_size": 600, "batch_size": 16, "epochs": 2,
                 "learning_rate": 0.01, "warmup_steps": 5, "eval_batch_size": 32,
                 "heatmaps": 2, "samples": 5}


def require_squad():
    if not (Path(os.environ["ZOO_DATA_DIR"]) / "qa" / "train.jsonl").is_file():
        pytest.skip(f"SQuAD not found under ZOO_DATA_DIR={os.environ['ZOO_DATA_DIR']}")


@pytest.fixture(scope="module")
def squad():
    require_squad()
    from zoo.data.squad import load_squad

    return {"train": load_squad("train", limit=400), "test": load_squad("test", limit=200)}


@pytest.fixture(scope="module")
def tokenizer(squad):
    texts = get_task("qa").tokenizer_texts({}, squad["train"])
    return SubwordTokenizer.train(texts, vocab_size=600)


# ------------------------------------------------------------------- the attention layer


def bidaf_reference(layer, context, query, context_mask, query_mask):
    """Seo et al.'s equations, literally: S from [c; q; c∘q], row softmax, column max."""
    w_c, w_q = layer.context_weight.numpy()[:, 0], layer.query_weight.numpy()[:, 0]
    w_cq = layer.product_weight.numpy()
    weights = np.concatenate([w_c, w_q, w_cq])
    batch, length, dim = context.shape
    fused = np.zeros((batch, length, 4 * dim), np.float32)
    c2q = np.zeros((batch, length, query.shape[1]), np.float32)
    q2c = np.zeros((batch, length), np.float32)
    for b in range(batch):
        c = context[b][context_mask[b]]
        q = query[b][query_mask[b]]
        if len(c) == 0:
            continue
        scores = np.array([[weights @ np.concatenate([ci, qj, ci * qj]) for qj in q]
                           for ci in c]).reshape(len(c), len(q))
        attended = np.zeros_like(c)
        if len(q):
            a = np.exp(scores - scores.max(1, keepdims=True))
            a /= a.sum(1, keepdims=True)
            attended = a @ q
            c2q[b, np.flatnonzero(context_mask[b])[:, None], np.flatnonzero(query_mask[b])] = a
            column = scores.max(1)
            p = np.exp(column - column.max())
            p /= p.sum()
        else:  # no question: the Q2C summary has nothing to rank by; the layer says uniform
            p = np.full(len(c), 1.0 / len(c))
        q2c[b, context_mask[b]] = p
        summary = p @ c
        rows = np.concatenate([c, attended, c * attended, c * summary], axis=1)
        fused[b, context_mask[b]] = rows
    return fused, c2q, q2c


def layer_inputs(seed=0):
    rng = np.random.default_rng(seed)
    context = rng.normal(size=(4, 7, 6)).astype("float32")
    query = rng.normal(size=(4, 5, 6)).astype("float32")
    return context, query, padding_mask((7, 5, 3, 0), 7), padding_mask((5, 2, 5, 4), 5)


def test_attention_flow_matches_the_paper_and_masks_exactly():
    context, query, context_mask, query_mask = layer_inputs()
    layer = BidirectionalAttentionFlow()
    fused, c2q, q2c = (t.numpy() for t in layer(context, query, context_mask, query_mask))
    expected = bidaf_reference(layer, context, query, context_mask, query_mask)
    for b in range(3):  # the last row's context is empty
        real = context_mask[b]
        np.testing.assert_allclose(fused[b, real], expected[0][b, real], atol=1e-5)
    np.testing.assert_allclose(c2q, expected[1], atol=1e-6)
    np.testing.assert_allclose(q2c, expected[2], atol=1e-6)
    # Exact zeros on padding, sums of one elsewhere, nothing from an empty context.
    assert np.all(c2q[~np.broadcast_to(context_mask[:, :, None] & query_mask[:, None, :],
                                       c2q.shape)] == 0.0)
    np.testing.assert_allclose(c2q.sum(-1)[context_mask], 1.0, atol=1e-6)
    assert np.all(q2c[~context_mask] == 0.0)
    np.testing.assert_allclose(q2c.sum(-1)[:3], 1.0, atol=1e-6)
    assert np.all(c2q[3] == 0) and np.all(q2c[3] == 0) and np.all(np.isfinite(fused))


def test_attention_flow_is_padding_invariant_and_compiles():
    context, query, context_mask, query_mask = layer_inputs(1)
    layer = BidirectionalAttentionFlow()
    outputs = layer(context, query, context_mask, query_mask)
    for b, (c_len, q_len) in enumerate(zip(context_mask.sum(1), query_mask.sum(1), strict=True)):
        if not c_len:
            continue
        alone = layer(context[b:b + 1, :c_len], query[b:b + 1, :q_len])
        np.testing.assert_allclose(outputs[0][b, :c_len], alone[0][0], atol=1e-5)
        np.testing.assert_allclose(outputs[1][b, :c_len, :q_len], alone[1][0], atol=1e-6)

    def loss_and_gradients(context, query):
        with tf.GradientTape() as tape:
            tape.watch([context, query])
            fused, c2q, q2c = layer(context, query, context_mask, query_mask)
            loss = tf.reduce_sum(fused ** 2) + tf.reduce_sum(c2q * 3.0) + tf.reduce_sum(
                q2c * tf.range(7, dtype=tf.float32))
        return (fused, c2q, q2c), tape.gradient(loss, [*layer.trainable_variables, context,
                                                       query])

    tensors = tf.constant(context), tf.constant(query)
    eager = loss_and_gradients(*tensors)
    compiled = tf.function(loss_and_gradients, jit_compile=True)(*tensors)
    assert_outputs_close(compiled[0], eager[0], what="jit vs eager")
    for a, e in zip(compiled[1], eager[1], strict=True):
        assert np.all(np.isfinite(e.numpy())) and np.any(e.numpy() != 0)
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-4, atol=1e-5)


def test_attention_flow_serializes(tmp_path):
    context, query, context_mask, query_mask = layer_inputs(2)
    inputs = [keras.Input((7, 6)), keras.Input((5, 6)), keras.Input((7,), dtype="bool"),
              keras.Input((5,), dtype="bool")]
    layer = BidirectionalAttentionFlow(name="flow")
    model = keras.Model(inputs, list(layer(*inputs)))
    feed = [context, query, context_mask, query_mask]
    expected = model(feed)
    model.save(tmp_path / "flow.keras")
    loaded = keras.models.load_model(tmp_path / "flow.keras")
    assert type(loaded.get_layer("flow")) is BidirectionalAttentionFlow
    assert_outputs_close(loaded(feed), expected, what="saved and loaded")
    clone = BidirectionalAttentionFlow.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_attention_flow_in_mixed_precision():
    context, query, context_mask, query_mask = layer_inputs(3)
    layer = BidirectionalAttentionFlow(dtype="mixed_bfloat16")
    fused, c2q, _ = layer(context, query, context_mask, query_mask)
    assert fused.dtype == "bfloat16" and c2q.dtype == "float32"
    np.testing.assert_allclose(c2q.numpy().sum(-1)[context_mask], 1.0, atol=1e-5)


def test_fused_lstm_is_the_keras_lstm(tmp_path):
    """BlockLSTMV2 with the Keras layers' weights: same outputs on real positions and same
    gradients as the Keras loop (which XLA compiles), with and without padding."""
    rng = np.random.default_rng(4)
    inputs = tf.constant(rng.normal(size=(4, 9, 5)).astype("float32") * 2)
    mask = tf.constant(padding_mask((9, 6, 1, 3), 9))
    layer = FusedBidirectionalLSTM(7)
    weights = rng.normal(size=(9, 4, 14)).astype("float32")

    def run(fused, mask):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, mask=mask, fused=fused)
            real = tf.cast(mask if mask is not None else tf.ones((4, 9), bool), tf.float32)
            loss = tf.reduce_sum(outputs * tf.transpose(weights, (1, 0, 2)) * real[..., None])
        return outputs, tape.gradient(loss, [*layer.trainable_variables, inputs])

    layer(inputs)
    for variable in layer.trainable_variables:  # large weights: cell states beyond any clip
        variable.assign(rng.normal(size=variable.shape).astype("float32"))
    for mask_value in (mask, None):
        fused, fused_grads = run(True, mask_value)
        keras_loop, keras_grads = tf.function(lambda m=mask_value: run(False, m),
                                              jit_compile=True)()
        real = np.ones((4, 9), bool) if mask_value is None else mask.numpy()
        np.testing.assert_allclose(fused.numpy()[real], keras_loop.numpy()[real], atol=1e-5)
        for a, b in zip(fused_grads, keras_grads, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    clone = FusedBidirectionalLSTM.from_config(layer.get_config())
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(inputs, mask=mask).numpy()[mask.numpy()],
                               layer(inputs, mask=mask).numpy()[mask.numpy()], atol=1e-6)


# --------------------------------------------------------------------------- spans


def test_spans_round_trip_on_real_squad(squad, tokenizer):
    """char answer → bytes → subwords → the context's text between the subwords' offsets
    (what the model and the server answer) gives the answer back; exactly, unless the answer
    starts or ends inside a subword."""
    examples = squad["train"][:200] + squad["test"][:200]
    context_ids, _, spans, kept = tokenize_examples(tokenizer, examples, 10_000, 64)
    assert len(kept) == len(examples)  # no limits: every answer is somewhere
    contexts = [examples[i]["context"] for i in kept]
    ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(contexts))
    assert ids.to_list() == context_ids.to_list()
    texts = span_texts(tf.constant(contexts), starts.to_tensor(), ends.to_tensor(),
                       tf.constant(spans[:, 0]), tf.constant(spans[:, 1]))
    exact = 0
    for row, index in enumerate(kept):
        context, answer = examples[index]["context"], examples[index]["answers"][0]
        recovered = texts["answer"][row].numpy().decode("utf-8")
        start, end = int(texts["start"][row]), int(texts["end"][row])
        assert context[start:end] == recovered
        assert start <= answer["answer_start"]
        assert end >= answer["answer_start"] + len(answer["text"])
        assert answer["text"] in recovered
        exact += recovered == answer["text"]
    assert exact / len(kept) > 0.97, exact / len(kept)


def test_answers_beyond_the_context_limit_are_dropped(squad, tokenizer):
    examples = squad["train"][:100]
    _, _, spans, kept = tokenize_examples(tokenizer, examples, 48, 64)
    assert 0 < len(kept) < len(examples)
    assert spans.max() < 48
    for example in (e for i, e in enumerate(examples) if i not in kept):
        _, starts, _ = tokenizer.tokenize_with_offsets(tf.constant([example["context"]]))
        _, answer_end = byte_span(example["context"], example["answers"][0])
        assert np.searchsorted(starts[0].numpy(), answer_end) > 48


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S")),
                              min_size=1, max_size=8), min_size=1, max_size=20),
       data=st.data())
def test_word_aligned_spans_are_exact(tokenizer, words, data):
    """Any span of whole words in any Unicode text maps to subwords and back exactly, with
    character offsets in Python `str` units."""
    context = " ".join(words)
    first = data.draw(st.integers(0, len(words) - 1))
    last = data.draw(st.integers(first, len(words) - 1))
    start = len(" ".join(words[:first])) + (1 if first else 0)
    answer = {"text": " ".join(words[first:last + 1]), "answer_start": start}
    assert context[start:start + len(answer["text"])] == answer["text"]
    _, starts, ends = tokenizer.tokenize_with_offsets(tf.constant([context]))
    token_first, token_last = token_span(starts[0].numpy(), ends[0].numpy(),
                                         *byte_span(context, answer))
    texts = span_texts(tf.constant([context]), starts.to_tensor(), ends.to_tensor(),
                       tf.constant([token_first]), tf.constant([token_last]))
    assert texts["answer"][0].numpy().decode("utf-8") == answer["text"]
    assert (int(texts["start"][0]), int(texts["end"][0])) == (
        start, start + len(answer["text"]))


def test_best_spans_is_the_brute_force_argmax():
    rng = np.random.default_rng(0)
    start_logits = rng.normal(size=(6, 12)).astype("float32") * 3
    end_logits = rng.normal(size=(6, 12)).astype("float32") * 3
    mask = padding_mask((12, 9, 4, 1, 12, 7), 12)
    start, end, score = best_spans(tf.constant(start_logits), tf.constant(end_logits),
                                   tf.constant(mask), 5)
    log_start = tf.nn.log_softmax(np.where(mask, start_logits, -1e9)).numpy()
    log_end = tf.nn.log_softmax(np.where(mask, end_logits, -1e9)).numpy()
    for b in range(6):
        n = mask[b].sum()
        candidates = {(i, j): log_start[b, i] + log_end[b, j]
                      for i in range(n) for j in range(i, min(i + 5, n))}
        best = max(candidates, key=candidates.get)
        assert (int(start[b]), int(end[b])) == best
        assert float(score[b]) == pytest.approx(candidates[best], abs=1e-4)


def test_span_loss_is_the_sum_of_two_cross_entropies():
    logits = np.random.default_rng(0).normal(size=(3, 2, 5)).astype("float32")
    spans = np.array([[0, 1], [2, 4], [3, 3]])
    log_p = tf.nn.log_softmax(logits).numpy()
    expected = -np.mean([log_p[b, 0, s] + log_p[b, 1, e] for b, (s, e) in enumerate(spans)])
    assert float(SpanLoss()(spans, logits)) == pytest.approx(expected, rel=1e-5)


# -------------------------------------------------------------------------- the model


def test_builder_validates_and_builds(tokenizer):
    assert "qa" in zoo.list_models()
    config = zoo.resolve_config("qa")
    assert config["task"] == "qa" and 0 < config["time_budget_minutes"] <= 25
    # configs/qa.yaml (the acceptance run) spells out the defaults.
    assert zoo.resolve_config(str(CONFIG_DIR / "qa.yaml")) == config
    model = zoo.build("qa", tokenizer=tokenizer, **TINY)
    assert model.task == "qa" and model.count_params() > 0
    for bad, key in (({"rnn": "transformer"}, "'rnn'"), ({"hidden_units": 0}, "hidden_units"),
                     ({"dropout": 1.0}, "dropout"), ({"attention": "luong_dot"}, "attention"),
                     ({"hiden_units": 3}, "hiden_units")):
        with pytest.raises(ConfigError, match=key):
            zoo.resolve_config("qa", bad)


def test_training_steps_lower_the_loss_and_keras_round_trip(squad, tokenizer, tmp_path):
    config = zoo.resolve_config("qa", {**TINY_TRAINING, "batch_size": 32})
    task = get_task("qa")
    prepared = task.prepare(config, tokenizer, squad["train"], squad["test"])
    inputs, spans = next(iter(prepared.train))
    keras.utils.set_random_seed(0)
    model = zoo.build("qa", tokenizer=tokenizer, **TINY, rnn="gru", end_rnn=True)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=task.loss(config))
    losses = [float(model.train_on_batch(inputs, spans)) for _ in range(12)]
    assert losses[-1] < losses[0] - 2.0, losses  # memorising one batch of 32 questions
    logits = model(inputs).numpy()
    context_mask = inputs["context_ids"].numpy() != 0
    assert np.all(logits[:, 0][~context_mask] == -1e9)

    path = tmp_path / "reader.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(inputs).numpy(), logits, atol=1e-5)
    questions = [e["question"] for e in squad["test"][:3]]
    contexts = [e["context"] for e in squad["test"][:3]]
    assert loaded.answer(questions, contexts) == model.answer(questions, contexts)


def test_answer_gives_python_offsets(tokenizer):
    model = zoo.build("qa", tokenizer=tokenizer, **TINY)
    contexts = ["Der Zürcher Café-Besitzer — Ørsted — sagte: «Grüße!» 😀 Ende.", "",
                "Short."]
    results = model.answer(["Wer?", "Nothing?", "What?"], contexts, return_attention=True)
    for context, result in zip(contexts, results, strict=True):
        assert context[result["start"]:result["end"]] == result["answer"]
        assert result["answer"] == result["answer"].strip()
        assert result["c2q"].shape == (len(result["context_tokens"]),
                                       len(result["question_tokens"]))
    assert results[1]["answer"] == "" and results[1]["c2q"].shape[0] == 0
    with pytest.raises(ValueError, match="2 questions but 3 contexts"):
        model.answer(["a", "b"], ["x", "y", "z"])


# ------------------------------------------------------ a tracked training, export, serving


@pytest.fixture(scope="module")
def trained(tracking_dir, tmp_path_factory):
    require_squad()
    output = tmp_path_factory.mktemp("runs")
    old_cwd = os.getcwd()
    os.chdir(tracking_dir)  # MLflow's default artifact root is relative to the working dir
    try:
        return train("qa", TINY_TRAINING, output_dir=output, verbose=0)
    finally:
        os.chdir(old_cwd)


def test_tracked_training_logs_f1_and_heatmaps(trained):
    client = mlflow.MlflowClient()
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "qa"
    assert run.data.params["attention"] == "bidaf"
    history = client.get_metric_history(trained.run_id, "val_f1")
    assert [m.step for m in history] == [1, 2]
    losses = [epoch["loss"] for epoch in trained.history]
    assert losses[1] < losses[0], losses
    metrics = run.data.metrics
    for name in ("test_f1", "test_exact_match", "test_f1_first_n", "val_exact_match"):
        assert 0.0 <= metrics[name] <= 100.0, name
    assert metrics["test_f1"] >= metrics["test_exact_match"]
    heatmaps = [a.path for a in client.list_artifacts(trained.run_id, "attention")]
    assert heatmaps == ["attention/question_00.png", "attention/question_01.png"]
    with open(client.download_artifacts(trained.run_id, heatmaps[0]), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    table = client.download_artifacts(trained.run_id, "samples/answers.tsv")
    lines = Path(table).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\tquestion\tgold\tpredicted\tf1" and len(lines) == 6


def test_test_f1_is_the_official_score_of_answer(trained):
    from zoo.data.squad import load_squad
    from zoo.metrics import squad_em_f1

    examples = load_squad("test", limit=TINY_TRAINING["test_limit"])
    answers = trained.model.answer([e["question"] for e in examples],
                                   [e["context"] for e in examples])
    predictions = {e["id"]: a["answer"] for e, a in zip(examples, answers, strict=True)}
    scores = squad_em_f1(predictions, examples)
    assert scores["f1"] == pytest.approx(trained.metrics["test_f1"])
    head = squad_em_f1(predictions, examples[:TINY_TRAINING["eval_limit"]])
    assert head["f1"] == pytest.approx(trained.metrics["test_f1_first_n"])


QUESTIONS = ["What does the library hold?", "Who designed it?"]
CONTEXTS = ["The library holds two million volumes and a famous collection of maps.",
            "Its first building was designed by the architect Maria Keller in 1842 — über den "
            + "Fluss, café."]


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no_xla"])
def test_export_op_check_and_our_grpc_server(trained, tmp_path, jit_compile):
    model = trained.model
    path = export_model(model, tmp_path, name="reader", jit_compile=jit_compile,
                        warmup_batch_sizes=(2,), warmup_lengths=(64,), check_ops=True)
    assert check_saved_model(path).ok
    assert (path / "assets.extra" / "tf_serving_warmup_requests").is_file()
    expected = model.answer(QUESTIONS, CONTEXTS, return_attention=True)
    handle = serving.start_server(model_root=str(tmp_path), port=0)
    try:
        with serving.Client(handle.target, timeout=120) as client:
            answers = client.answer("reader", QUESTIONS, CONTEXTS)
            assert answers == [e["answer"] for e in expected]
            out = client.predict("reader", {"question": QUESTIONS, "context": CONTEXTS})
            for row, (context, result) in enumerate(zip(CONTEXTS, expected, strict=True)):
                start, end = int(out["start"][row]), int(out["end"][row])
                assert (start, end) == (result["start"], result["end"])
                assert context[start:end] == answers[row]
                assert float(out["score"][row]) == pytest.approx(result["score"], abs=1e-4)
                tokens = [t.decode() for t in out["context_tokens"][row] if t]
                assert tokens == result["context_tokens"]
                q_len = len(result["question_tokens"])
                np.testing.assert_allclose(out["attention"][row, :len(tokens), :q_len],
                                           result["c2q"], atol=1e-5)
            assert out["attention"].dtype == np.float32
            # One context for several questions, as the client allows.
            assert client.answer("reader", QUESTIONS, CONTEXTS[1]) == [
                r["answer"] for r in model.answer(QUESTIONS, [CONTEXTS[1]] * 2)]
            with pytest.raises(serving.ServingError) as info:
                client.predict("reader", {"question": QUESTIONS, "context": CONTEXTS[:1]})
            assert info.value.code.name == "INVALID_ARGUMENT"
    finally:
        handle.stop()
    # `zoo evaluate EXPORT_DIR` scores the served answers like the trained model's.
    from zoo.data.squad import load_squad

    examples = load_squad("test", limit=20)
    config = trained.config | {"eval_limit": 10, "eval_batch_size": 8}
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    task = get_task("qa")
    assert task.evaluate_served(signature, config, examples) == pytest.approx(
        task.evaluate(model, config, examples))
