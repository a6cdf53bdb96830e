"""Summarization end to end: the pointer-generator (copy mixture, coverage loss, trigram
blocking, greedy = beam 1), `.keras` round trip, export (XLA core, op check) served by our gRPC
server, and a tiny AESLC training through the real trainer (sqlite MLflow store)."""

import os

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

import serving
import zoo
from export import export_model
from export.op_check import check_saved_model
from tests.support import check_word_vector_init
from zoo.config import ConfigError
from zoo.data import data_dir
from zoo.layers.pointer_generator_decoder import scatter_onto_vocabulary
from zoo.losses import SmoothedSequenceLoss
from zoo.models.pointer_generator import PointerGenerator, blocked_trigrams
from zoo.text import BOS_ID, EOS_ID, SubwordTokenizer

TINY = {"embedding_dim": 16, "encoder_units": 16, "decoder_units": 16, "attention_units": 16,
        "dropout": 0.0}
TINY_TRAINING = {
    **TINY, "train_limit": 600, "eval_limit": 24, "valid_size": 48, "vocab_size": 500,
    "max_source_subwords": 48, "max_target_subwords": 12, "max_summary_length": 12,
    "batch_size": 32, "epochs": 2, "learning_rate": 0.01, "warmup_steps": 5,
    "val_rouge_limit": 24, "heatmaps": 2, "samples": 4,
    # configs/summarizer.yaml learns word vectors first: from a few texts of each corpus here
    "word_vector_limit": 50, "word_vector_epochs": 1,
}
EMAILS = ["Please send me the Q3 budget report before Friday.",
          "The meeting with Enron legal has moved to Monday at 10 am.",
          "Attached is the revised gas supply agreement for your review."]
CORPUS = [f"{e} {s}" for e in EMAILS for s in ("Thanks, John.", "Call me.", "Regards")] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train(CORPUS, vocab_size=120)


@pytest.fixture(scope="module")
def model(tokenizer):
    keras.utils.set_random_seed(1)
    return zoo.build("summarizer", tokenizer=tokenizer, **TINY)


def batch(model, texts, summaries):
    """A teacher-forcing batch: `({"source_ids", "target_in"}, target_out)`."""
    pieces = model.tokenizer.tokenize(tf.constant(summaries)).to_list()
    width = max(map(len, pieces)) + 1
    target_in = np.zeros((len(pieces), width), np.int32)
    target_out = np.zeros_like(target_in)
    for row, ids in enumerate(pieces):
        target_in[row, : len(ids) + 1] = [BOS_ID, *ids]
        target_out[row, : len(ids) + 1] = [*ids, EOS_ID]
    return ({"source_ids": model.encode_texts(tf.constant(texts)),
             "target_in": tf.constant(target_in)}, tf.constant(target_out))


# ------------------------------------------------------------------------ builders, config


def test_builders_are_registered_with_their_configs():
    assert {"summarizer", "summarizer_dialogsum"} <= set(zoo.list_models())
    aeslc = zoo.resolve_config("summarizer")
    dialogsum = zoo.resolve_config("summarizer_dialogsum")
    assert (aeslc["task"], aeslc["dataset"]) == ("summarization", "aeslc")
    assert dialogsum["dataset"] == "dialogsum"
    assert dialogsum["max_summary_length"] > aeslc["max_summary_length"]
    for config in (aeslc, dialogsum):
        assert 0 < config["time_budget_minutes"] <= 30  # the bar: ≤ 30 minutes of training
    model = zoo.build("summarizer", vocab_size=50, **TINY)
    assert isinstance(model, PointerGenerator) and model.task == "summarization"


@pytest.mark.parametrize("overrides, key", [
    ({"dataset": "cnn_dm"}, "dataset"), ({"attention": "luong_dot"}, "attention"),
    ({"max_source_subwords": 0}, "max_source_subwords"), ({"n_best": 9}, "n_best"),
    ({"coverage_loss_weight": -1.0}, "coverage_loss_weight"),
])
def test_bad_configs_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        zoo.resolve_config("summarizer", overrides)


# ------------------------------------------------------------------ the copy mixture


def test_final_distribution_sums_to_one(model):
    inputs, _ = batch(model, EMAILS, ["budget report", "meeting moved", "gas agreement"])
    log_probs = model(inputs).numpy()
    assert log_probs.shape[:2] == tuple(inputs["target_in"].shape)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-4)
    # the coverage loss is there, per token Σ_i min(a_ti, c_ti) ≤ 1
    assert len(model.losses) == 1 and 0.0 < float(model.losses[0]) <= 1.0


def test_copying_puts_the_attention_mass_on_source_ids(tokenizer):
    keras.utils.set_random_seed(2)
    model = zoo.build("summarizer", tokenizer=tokenizer, **TINY)
    switch = model.decoder.switch
    switch.set_weights([np.zeros_like(switch.kernel), np.full((1,), -1e4, np.float32)])
    inputs, _ = batch(model, EMAILS, ["budget report", "meeting moved", "gas agreement"])
    out = model.teacher_forced(inputs["source_ids"], inputs["target_in"])
    np.testing.assert_allclose(out["p_gen"].numpy(), 0.0, atol=1e-6)
    attention, ids = out["attention"].numpy(), inputs["source_ids"].numpy()
    expected = np.zeros_like(out["log_probs"].numpy())
    for b in range(ids.shape[0]):
        for i, token in enumerate(ids[b]):
            expected[b, :, token] += attention[b, :, i]
    np.testing.assert_allclose(np.exp(out["log_probs"].numpy()), expected, atol=1e-5)
    # every source subword (and only those) can be produced
    produced = np.exp(out["log_probs"].numpy()).max(1) > 1e-6
    for b in range(ids.shape[0]):
        assert set(np.flatnonzero(produced[b])) <= set(ids[b])


def test_scatter_onto_vocabulary_sums_repeated_ids():
    weights = np.array([[0.5, 0.25, 0.25, 0.0]], np.float32)
    ids = np.array([[7, 3, 7, 0]], np.int32)
    result = scatter_onto_vocabulary(weights, ids, 10).numpy()
    np.testing.assert_allclose(result[0, [7, 3]], [0.75, 0.25])
    assert result.sum() == pytest.approx(1.0)


def test_mixed_bfloat16_trains_a_step():
    from zoo.training.trainer import build_model

    config = zoo.resolve_config("summarizer", {**TINY, "vocab_size": 120})
    model = build_model(config, None, "mixed_bfloat16")
    assert model.decoder.output_projection.compute_dtype == "bfloat16"
    source = tf.constant(np.random.default_rng(0).integers(4, 120, (2, 16)), tf.int32)
    target = tf.constant([[BOS_ID, 5, 6, 7], [BOS_ID, 8, 9, 0]])
    model.compile(optimizer="adam", loss=SmoothedSequenceLoss(0.1))
    loss = model.train_on_batch({"source_ids": source, "target_in": target},
                                tf.constant([[5, 6, 7, EOS_ID], [8, 9, EOS_ID, 0]]))
    assert np.isfinite(float(loss))


def test_batches_pad_source_and_summary_separately_and_keep_every_example():
    from zoo.tasks.summarization_data import make_summary_dataset

    rng = np.random.default_rng(0)
    sources = [rng.integers(4, 50, n).tolist() for n in rng.integers(1, 60, 200)]
    summaries = [rng.integers(4, 50, n).tolist() for n in rng.integers(1, 20, 200)]
    dataset = make_summary_dataset(tf.ragged.constant(sources), tf.ragged.constant(summaries),
                                   16, drop_remainder=False)
    seen = []
    for inputs, target_out in dataset:
        source, target_in = inputs["source_ids"].numpy(), inputs["target_in"].numpy()
        source_lengths = (source != 0).sum(1)
        target_lengths = (target_in != 0).sum(1)
        assert source.shape[1] == source_lengths.max()      # padded to the batch's longest
        assert target_in.shape[1] == target_lengths.max()   # on each side separately
        assert source_lengths.max() - source_lengths.min() < 16
        assert target_lengths.max() - target_lengths.min() < 8
        assert (target_in[:, 0] == BOS_ID).all()
        assert ((target_out.numpy() == EOS_ID).sum(1) == 1).all()
        seen += [tuple(row[row != 0][:-1]) for row in source]
    assert sorted(seen) == sorted(map(tuple, sources))
    xla = make_summary_dataset(tf.ragged.constant(sources), tf.ragged.constant(summaries), 16,
                               drop_remainder=False, pad_to_multiple=8)
    for inputs, target_out in xla:
        assert inputs["source_ids"].shape[1] % 8 == 0 == target_out.shape[1] % 8


# -------------------------------------------------------------------- decoding


def test_trigram_blocking_forbids_only_repeats():
    history = tf.constant([[BOS_ID, 5, 6, 7, 5, 6, 0, 0], [BOS_ID, 5, 6, 7, 8, 6, 0, 0]])
    blocked = blocked_trigrams(history, tf.constant(5), 10).numpy()
    assert np.flatnonzero(blocked[0]).tolist() == [7]   # (5, 6) → 7 was seen
    assert not blocked[1].any()                          # (8, 6) is new


def test_decoding_never_repeats_a_trigram_and_beam_1_is_greedy(model):
    ids = model.encode_texts(tf.constant(EMAILS))
    greedy = model.greedy_decode(ids)
    beam = model.beam_decode(ids, beam_width=1)
    np.testing.assert_array_equal(greedy["ids"].numpy(), beam["ids"][:, 0].numpy())
    np.testing.assert_allclose(greedy["log_probs"].numpy(), beam["log_probs"][:, 0].numpy(),
                               rtol=1e-5)
    assert greedy["ids"].shape[1] <= model.max_summary_length
    for row in greedy["ids"].numpy():
        row = row[row > EOS_ID].tolist()
        trigrams = list(zip(row, row[1:], row[2:], strict=False))  # a sliding window
        assert len(trigrams) == len(set(trigrams))
    wide = model.beam_decode(ids, beam_width=3, n_best=2)
    assert wide["ids"].shape[:2] == (3, 2)


def test_evaluate_decodes_as_the_config_says(model):
    """`zoo evaluate --set decoding=beam` reaches a summarizer (it was silently greedy)."""
    from zoo.tasks import get_task

    task = get_task("summarization")
    config = {"decoding": "beam", "beam_width": 2, "length_penalty": 0.5}
    before = (model.decoding, model.beam_width, model.length_penalty)
    try:
        scores = task.evaluate(model, config, (EMAILS[:2], EMAILS[:2]))
        assert (model.decoding, model.beam_width, model.length_penalty) == ("beam", 2, 0.5)
        assert set(scores) >= {"rouge1", "rouge2", "rougeL"}
    finally:  # the fixture is shared
        model.decoding, model.beam_width, model.length_penalty = before


# -------------------------------------------------------------- training, saving


def test_copying_is_learned_in_a_few_steps():
    """Summary = the first three source tokens (random ids): a few dozen steps suffice when
    the copy distribution works, and the switch learns to copy (p_gen → 0)."""
    keras.utils.set_random_seed(0)
    vocab = 200
    model = zoo.build("summarizer", vocab_size=vocab, embedding_dim=16, encoder_units=32,
                      decoder_units=32, attention_units=32, dropout=0.0)
    rng = np.random.default_rng(0)

    def copy_batch(size=32):
        source = rng.integers(EOS_ID + 1, vocab, (size, 12))
        source[:, -1] = EOS_ID
        target_in = np.concatenate([np.full((size, 1), BOS_ID), source[:, :3]], 1)
        target_out = np.concatenate([source[:, :3], np.full((size, 1), EOS_ID)], 1)
        return ({"source_ids": tf.constant(source, tf.int32),
                 "target_in": tf.constant(target_in, tf.int32)}, tf.constant(target_out))

    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=SmoothedSequenceLoss(0.0))
    losses = [float(model.train_on_batch(*copy_batch())) for _ in range(80)]
    assert losses[-1] < 0.05 * losses[0], losses[::10]
    inputs, targets = copy_batch(8)
    greedy = model.greedy_decode(inputs["source_ids"])["ids"][:, :4].numpy()
    np.testing.assert_array_equal(greedy, targets.numpy())
    p_gen = model.teacher_forced(inputs["source_ids"], inputs["target_in"])["p_gen"]
    assert float(tf.reduce_mean(p_gen)) < 0.1


def test_ensemble_decodes_with_its_members_mean_and_trains_each_on_its_own_loss(tokenizer,
                                                                               tmp_path):
    keras.utils.set_random_seed(2)
    model = zoo.build("summarizer", tokenizer=tokenizer, **{**TINY, "members": 2})
    inputs, targets = batch(model, EMAILS, ["q3 budget report", "meeting moved",
                                            "gas agreement"])
    members = [model.teacher_forced(inputs["source_ids"], inputs["target_in"], member=i)
               for i in range(2)]
    assert not np.allclose(members[0]["log_probs"], members[1]["log_probs"])
    mean = np.log(np.mean([np.exp(m["log_probs"].numpy()) for m in members], 0))
    np.testing.assert_allclose(model(inputs, training=False).numpy(), mean, atol=1e-5)
    # A search step scores with the members' mean distribution and attention.
    ids = tf.cast(inputs["source_ids"], tf.int32)
    context, mask, state = model.prepare_decoding(ids, 12)
    log_probs, weights, _ = model.decoding_step(context, mask, tf.fill([3], BOS_ID), 0, state)
    np.testing.assert_allclose(log_probs.numpy(), mean[:, 0], atol=1e-5)
    np.testing.assert_allclose(
        weights.numpy(), np.mean([m["attention"][:, 0].numpy() for m in members], 0),
        atol=1e-6)
    greedy = tf.function(model.greedy_decode, jit_compile=True)(ids)
    beam = model.beam_decode(ids, beam_width=1)
    np.testing.assert_array_equal(greedy["ids"].numpy(), beam["ids"][:, 0].numpy())
    # Training: the mean of the members' own losses (cross-entropy and coverage).
    loss = SmoothedSequenceLoss(0.0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    stacked = model(inputs, training=True)
    assert stacked.shape[:2] == (3, 2)
    total = model.compute_loss(inputs, targets, stacked, training=True)
    real = (inputs["target_in"].numpy() != 0).astype("float32")
    expected = np.mean([float(loss(targets, m["log_probs"]))
                        + float(np.sum(m["coverage_loss"].numpy() * real) / real.sum())
                        for m in members])
    np.testing.assert_allclose(float(total), expected, rtol=1e-5)
    losses = [float(model.train_on_batch(inputs, targets)) for _ in range(5)]
    assert losses[-1] < losses[0], losses
    path = tmp_path / "ensemble.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert loaded.members == 2
    assert loaded.summarize(EMAILS) == model.summarize(EMAILS)
    with pytest.raises(ConfigError, match="members"):
        zoo.resolve_config("summarizer", {"members": 0})


def test_keras_round_trip(model, tmp_path):
    inputs, _ = batch(model, EMAILS, ["q3 budget report", "meeting moved", "gas agreement"])
    path = tmp_path / "summarizer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert isinstance(loaded, PointerGenerator)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), atol=1e-5)
    assert loaded.summarize(EMAILS) == model.summarize(EMAILS)


# ------------------------------------------------------------------ export and gRPC


def test_export_op_check_and_grpc_round_trip(model, tmp_path):
    version = export_model(model, tmp_path, name="summarizer", check_ops=True,
                           warmup_batch_sizes=(1,), warmup_lengths=(8,))
    assert check_saved_model(version).ok
    handle = serving.start_server(model_root=str(tmp_path), port=0)
    try:
        with serving.Client(handle.target, timeout=120) as client:
            assert client.summarize("summarizer", EMAILS) == model.summarize(EMAILS)
            outputs = client.predict("summarizer", {"text": EMAILS[:2]})
    finally:
        handle.stop()
    assert {"summary", "summary_tokens", "source_tokens", "scores", "attention",
            "summary_lengths"} <= set(outputs)
    attention = outputs["attention"]
    assert attention.shape[:2] == outputs["summary_tokens"].shape
    assert attention.shape[2] == outputs["source_tokens"].shape[1]
    expected = model.greedy_decode(model.encode_texts(tf.constant(EMAILS[:2])))
    np.testing.assert_allclose(outputs["scores"], expected["log_probs"].numpy(), rtol=1e-4)
    # `zoo evaluate EXPORT_DIR` scores the served summaries like the Keras model's
    from zoo.tasks import get_task

    task = get_task("summarization")
    config = zoo.resolve_config("summarizer")
    examples = (EMAILS, ["budget report", "meeting moved", "gas agreement"])
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    assert (task.evaluate_served(signature, config, examples, batch_size=2)
            == task.evaluate(model, config, examples))


# ------------------------------------------------------------- a real tiny training


def require_aeslc():
    if not (data_dir() / "summarization" / "train.tsv").is_file():
        pytest.skip("AESLC not found under ZOO_DATA_DIR")


@pytest.mark.parametrize("name, source_word", [("summarizer", "the"),
                                               ("summarizer_dialogsum", "#Person1#")])
def test_splits_hold_out_validation_and_score_the_documented_reference(name, source_word):
    from zoo.data.aeslc import load_aeslc
    from zoo.data.dialogsum import load_dialogsum
    from zoo.tasks import get_task

    config = zoo.resolve_config(name, {"valid_size": 50})
    folder = "summarization" if config["dataset"] == "aeslc" else "dialogsum"
    if not (data_dir() / folder).is_dir():
        pytest.skip(f"{folder} not found under ZOO_DATA_DIR")
    load = load_aeslc if config["dataset"] == "aeslc" else load_dialogsum
    task = get_task("summarization")
    train_set, valid = (task.read_split(config, split) for split in ("train", "valid"))
    assert len(valid[0]) == 50
    # Held-out sources leave training with all their copies (AESLC repeats bodies).
    assert not set(valid[0]) & set(train_set[0])
    full = [e["source" if name == "summarizer" else "dialogue"] for e in load("train")]
    copies = sum(full.count(source) for source in set(valid[0]))
    assert len(train_set[0]) + copies == len(full)
    assert task.read_split(config, "valid") == valid  # the same examples every run
    test = task.read_split({**config, "eval_limit": 20}, "test")
    assert any(source_word in text for text in test[0])
    if name == "summarizer":  # the original subject line, as PEGASUS / TFDS score
        assert test[1] == [e["target"] for e in load_aeslc("test", limit=20)]
    else:  # the first of the three references, as the BART baseline is scored
        assert test[1] == [e["summaries"][0] for e in load_dialogsum("test", limit=20)]


def test_tiny_training_logs_rouge_and_heatmaps(tracking_dir, tmp_path):
    require_aeslc()
    from zoo.training import train

    old_cwd = os.getcwd()
    os.chdir(tracking_dir)  # MLflow's default artifact root is relative to the working dir
    try:
        result = train("summarizer", TINY_TRAINING, output_dir=tmp_path, verbose=0)
    finally:
        os.chdir(old_cwd)
    losses = [epoch["loss"] for epoch in result.history]
    assert losses[-1] < losses[0]
    run = mlflow.MlflowClient().get_run(result.run_id)
    metrics = run.data.metrics
    for key in ("val_rouge1", "val_rouge2", "val_rougeL", "test_rouge1", "test_rougeL"):
        assert 0.0 <= metrics[key] <= 100.0, key
    assert run.data.tags["zoo.task"] == "summarization"
    # the YAML's choices: word vectors before the first epoch, the kept epoch by val ROUGE-1
    # (learned within the run's training time)
    assert metrics["word_vector_pieces"] > 100
    assert 0 < metrics["initialize_seconds"] < metrics["train_seconds"]
    assert run.data.params["best_by"] == "val_rouge1"
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "val_rouge1")
    val_rouge1 = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert metrics["best_epoch"] == 1 + max(range(len(val_rouge1)), key=val_rouge1.__getitem__)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id,
                                                                        "attention")}
    assert "attention/summary_00.png" in artifacts
    samples = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "samples")}
    assert {"samples/summaries.json", "samples/summaries.tsv"} <= samples
    assert result.metrics["test_rouge1"] == metrics["test_rouge1"]
    loaded = keras.saving.load_model(result.model_path, compile=False)
    assert loaded.summarize(EMAILS[:1]) == result.model.summarize(EMAILS[:1])


def test_word_vectors_start_each_members_shared_embedding_from_training_text_only():
    require_aeslc()
    config, examples, logged = check_word_vector_init(
        "summarizer", {**TINY, "members": 2, "train_limit": 300, "valid_size": 50,
                       "word_vector_limit": 40, "word_vector_epochs": 1},
        lambda model: [encoder.embedding.embeddings for encoder, _, _ in model.member_layers()])
    assert "summarization" not in config["word_vector_corpora"]  # it holds the valid e-mails
    # the other corpora's texts, then every training e-mail and subject line
    assert logged["word_vector_texts"] == 3 * 40 + 2 * len(examples[0])
    with pytest.raises(ConfigError, match="word_vector_epochs"):
        zoo.resolve_config("summarizer", {"word_vector_epochs": 0})
