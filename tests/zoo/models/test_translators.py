"""The translator family: one builder per attention variant, the no-attention baseline and a
Transformer; each builds, trains under XLA, survives `.keras`, decodes greedy and beam, and
translates raw text through the same interface the trainer and the exporter use."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.config import CONFIG_DIR, ConfigError, load_yaml
from zoo.losses import SmoothedSequenceLoss
from zoo.text import BOS_ID, EOS_ID, SubwordTokenizer

# builder → the attention it stands for (None: the no-attention baseline)
VARIANTS = {
    "luong_translator": "luong_general",
    "luong_dot_translator": "luong_dot",
    "luong_concat_translator": "luong_concat",
    "bahdanau_translator": "additive",
    "normed_bahdanau_translator": "additive",
    "cosine_translator": "cosine",
    "scaled_dot_translator": "scaled_dot_product",
    "multi_head_translator": "multi_head",
    "local_translator": "local",
    "location_translator": "location_sensitive",
    "monotonic_translator": "monotonic",
    "hard_translator": "hard",
    "seq2seq_translator": None,
    "transformer_translator": "multi_head",
}
BUILDERS = sorted(VARIANTS)
VOCAB = 24
TINY_RNN = {"vocab_size": VOCAB, "embedding_dim": 8, "encoder_units": 16,
            "decoder_units": 16, "encoder_layers": 1, "bidirectional": False, "dropout": 0.1}
TINY_TRANSFORMER = {"vocab_size": VOCAB, "d_model": 16, "num_layers": 1, "num_heads": 2,
                    "ffn_dim": 32, "dropout": 0.1}
# What a fair leaderboard holds fixed: data, vocabulary, batch, epochs, time, loss.
BUDGET_KEYS = ("dataset", "source_lang", "target_lang", "vocab_size", "max_subwords",
               "batch_size", "epochs", "time_budget_minutes", "final_lr_fraction",
               "clip_norm", "label_smoothing", "max_length_ratio", "decoding", "beam_width",
               "length_penalty", "coverage_penalty", "val_decoding", "precision")
RNN_SIZE_KEYS = ("embedding_dim", "encoder_units", "encoder_layers", "bidirectional",
                 "decoder_units", "dropout", "learning_rate", "warmup_steps", "jit_compile")


def tiny(name, **overrides):
    sizes = TINY_TRANSFORMER if name == "transformer_translator" else TINY_RNN
    return zoo.build(name, **{**sizes, **overrides})


def copy_task(count=16, length=8, seed=0):
    """Teacher-forcing batches of a learnable task: the target is the source shifted."""
    rng = np.random.default_rng(seed)
    source = rng.integers(4, VOCAB, size=(count, length)).astype("int32")
    source[:, -1] = EOS_ID
    source[::3, -3:] = [EOS_ID, 0, 0]  # some padding
    target = np.roll(source, 1, axis=1)
    target_in = np.concatenate([np.full((count, 1), BOS_ID), target[:, :-1]], 1)
    return {"source_ids": source, "target_in": target_in.astype("int32")}, target


# ------------------------------------------------------------------------------ registry


def test_every_variant_is_registered_and_every_attention_has_a_builder():
    assert set(BUILDERS) <= set(zoo.list_models())
    missing = set(zoo.attention.names()) - set(VARIANTS.values())
    assert not missing, f"attention layers without a translator builder: {sorted(missing)}"


@pytest.mark.parametrize("name", BUILDERS)
def test_config_file_has_the_reference_budget(name):
    path = CONFIG_DIR / f"{name}.yaml"
    assert path.is_file() and load_yaml(path)["model"] == name
    config = zoo.resolve_config(str(path))
    reference = zoo.resolve_config("luong_translator")
    assert {key: config[key] for key in BUDGET_KEYS} == {
        key: reference[key] for key in BUDGET_KEYS}
    assert config["attention"] == VARIANTS[name]
    if name != "transformer_translator":
        assert {key: config[key] for key in RNN_SIZE_KEYS} == {
            key: reference[key] for key in RNN_SIZE_KEYS}


# -------------------------------------------------------------- train under XLA, save, load


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_trains_under_xla_and_round_trips(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny(name)
    inputs, target = copy_task()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SmoothedSequenceLoss(0.0),
                  jit_compile=True)
    losses = model.fit(inputs, target, batch_size=8, epochs=4, shuffle=False,
                       verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=1e-6)
    source = inputs["source_ids"][:4]
    expected, actual = model.greedy_decode(source), loaded.greedy_decode(source)
    np.testing.assert_array_equal(actual["ids"], expected["ids"])
    np.testing.assert_allclose(actual["attention"], expected["attention"], atol=1e-6)


# ------------------------------------------------------------- every attention, one builder


@pytest.mark.parametrize("attention", [*zoo.attention.names(), None])
def test_luong_translator_takes_every_attention(attention):
    model = zoo.build("luong_translator", attention=attention, **TINY_RNN)
    if attention is None:
        assert model.decoder.attention is None
    else:
        assert model.decoder.attention.registered_name == attention
    inputs, _ = copy_task(count=4)
    assert model(inputs).shape == (4, 8, VOCAB)
    result = model.greedy_decode(inputs["source_ids"])
    steps = result["ids"].shape[1]
    assert result["attention"].shape == (4, steps, 8)
    weights, lengths = result["attention"].numpy(), result["lengths"].numpy()
    real = inputs["source_ids"] != 0
    for row in range(4):
        emitted = weights[row, : lengths[row]]
        assert np.all(weights[row, lengths[row]:] == 0)
        assert np.all(emitted[:, ~real[row]] == 0)  # padding gets no attention
        if attention is None:
            assert np.all(emitted == 0)
        else:
            assert np.all(emitted.sum(-1) <= 1 + 1e-5)


# ------------------------------------------------------------------------------ config keys


def test_decoding_keys_reach_the_model_and_its_config():
    model = tiny("bahdanau_translator", decoding="beam", beam_width=3, length_penalty=0.6,
                 coverage_penalty=0.2, n_best=2)
    assert (model.decoding, model.beam_width, model.n_best) == ("beam", 3, 2)
    config = model.get_config()
    assert config["length_penalty"] == 0.6 and config["coverage_penalty"] == 0.2
    result = model.beam_decode(copy_task(count=2)[0]["source_ids"])
    assert result["ids"].shape[:2] == (2, 2)  # n_best from the config
    assert model.beam_decode(copy_task(count=2)[0]["source_ids"],
                             beam_width=1)["ids"].shape[:2] == (2, 1)


@pytest.mark.parametrize("overrides, message", [
    ({"decoding": "sampling"}, "'decoding'"),
    ({"decoding": "beam", "beam_width": 2, "n_best": 3}, "'n_best'"),
    ({"beam_width": 0}, "'beam_width'"),
    ({"length_penalty": -1.0}, "'length_penalty'"),
    ({"attention": None, "coverage_penalty": 0.2}, "'coverage_penalty'"),
])
def test_bad_decoding_keys_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        zoo.resolve_config("luong_translator", overrides)


def test_transformer_keys_are_checked():
    with pytest.raises(ConfigError, match="'d_model'"):
        zoo.resolve_config("transformer_translator", {"d_model": 30, "num_heads": 4})
    with pytest.raises(ConfigError, match="multi_head"):
        zoo.resolve_config("transformer_translator", {"attention": "additive"})
    with pytest.raises(ConfigError, match="unknown config key 'encoder_units'"):
        zoo.resolve_config("transformer_translator", {"encoder_units": 8})


def test_transformer_has_the_documented_size():
    config = zoo.resolve_config("transformer_translator")
    assert (config["num_layers"], config["d_model"], config["num_heads"],
            config["ffn_dim"]) == (3, 256, 4, 1024)
    model = zoo.build("transformer_translator")
    assert 8e6 < model.count_params() < 14e6, model.count_params()


# -------------------------------------------------------- raw text: trainer and exporter path

SENTENCES = [
    "ein mann fährt fahrrad .", "a man rides a bike .", "zwei hunde spielen im schnee .",
    "two dogs play in the snow .", "eine frau liest ein buch .", "a woman reads a book .",
    "ein kind spielt am strand .", "a child plays on the beach .",
] * 4


@pytest.fixture(scope="module")
def tokenizer():
    return SubwordTokenizer.train(SENTENCES, vocab_size=60)


def test_transformer_translates_text_greedy_beam_and_exported(tokenizer, tmp_path):
    from export import export_model

    keras.utils.set_random_seed(0)
    model = zoo.build("transformer_translator", tokenizer=tokenizer,
                      **{**TINY_TRANSFORMER, "dropout": 0.0})
    texts = ["ein mann liest .", "zwei kinder spielen am strand ."]
    translations, result, source_ids = model.translate(texts, return_attention=True)
    assert len(translations) == 2 and all(isinstance(t, str) for t in translations)
    steps = result["ids"].shape[1]
    assert result["attention"].shape == (2, steps, source_ids.shape[1])

    model.decoding, model.beam_width = "beam", 3
    beam_translations, beam_result, _ = model.translate(texts, return_attention=True)
    best = model.beam_decode(source_ids, beam_width=3, n_best=1)
    np.testing.assert_array_equal(beam_result["ids"], best["ids"][:, 0])
    assert beam_translations == [t.decode() for t in model.decode_ids(best["ids"][:, 0]).numpy()]

    version = export_model(model, tmp_path, name="transformer_translator")
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    outputs = signature(text=tf.constant(texts))
    served = [t.decode() for t in outputs["translation"].numpy()]
    assert served == beam_translations  # the export decodes as the model says: beam 3
    assert outputs["attention"].shape[0] == 2


def test_rnn_translator_text_interface_is_unchanged(tokenizer):
    model = zoo.build("seq2seq_translator", tokenizer=tokenizer, **TINY_RNN)
    ids = model.encode_texts(tf.constant(["ein mann ."]))
    assert ids.shape[1] % 8 == 0 and int(ids[0, -1]) in (0, EOS_ID)
    result = model.greedy_decode(ids)
    assert set(result) >= {"ids", "attention", "lengths"}
    assert isinstance(model.decode_ids(result["ids"]).numpy()[0], bytes)



# ------------------------------------------------- every variant exported and served over gRPC


@pytest.fixture(scope="module")
def served_variants(tokenizer, tmp_path_factory):
    """Every translator builder (tiny, untrained) exported with its XLA core into ONE model
    repository, op-checked, and served by our gRPC server: name → Keras model, and the client."""
    from export import export_model
    from export.op_check import check_saved_model
    from serving import Client, start_server

    root = tmp_path_factory.mktemp("variant_repo")
    models = {}
    for name in BUILDERS:
        keras.utils.set_random_seed(0)
        sizes = TINY_TRANSFORMER if name == "transformer_translator" else TINY_RNN
        # Greedy (the YAMLs say beam): fast exports, compared with `translate` below.
        models[name] = zoo.build(name, tokenizer=tokenizer,
                                 **{**sizes, "dropout": 0.0, "decoding": "greedy"})
        version = export_model(models[name], root, name=name, warmup_batch_sizes=(1,),
                               warmup_lengths=(8,))
        report = check_saved_model(version)
        assert report.ok, (name, report)
    handle = start_server(model_root=str(root), port=0)
    client = Client(handle.target, timeout=120)
    yield models, client
    client.close()
    handle.stop()


@pytest.mark.parametrize("name", BUILDERS)
def test_every_variant_exports_and_answers_over_grpc(served_variants, name):
    models, client = served_variants
    model = models[name]
    texts = ["ein mann liest .", "zwei kinder spielen am strand ."]
    assert client.translate(name, texts) == model.translate(texts)
    outputs = client.predict(name, {"text": texts[:1]})
    assert outputs["attention"].shape[:2] == outputs["target_tokens"].shape
    assert outputs["attention"].shape[2] == outputs["source_tokens"].shape[1]
    signature = client.metadata(name)["signatures"]["serving_default"]
    assert set(signature["inputs"]) == {"text"}
    assert {"translation", "attention", "source_tokens", "target_tokens"} <= set(
        signature["outputs"])
