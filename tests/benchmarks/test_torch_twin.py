"""The PyTorch twin in benchmarks/torch_luong.py is the same model and the same training step
as the Keras `luong_translator` (issue 7 compares their speed; the per-step diagnosis their
learning). torch is a `bench` extra: skipped when it is not installed."""

import sys

import numpy as np
import pytest

from tests.support import REPO, require_multi30k

torch = pytest.importorskip("torch")

sys.path.insert(0, str(REPO / "benchmarks"))
import torch_luong  # noqa: E402  (needs torch, checked above, and benchmarks/ on sys.path)

TINY = {"embedding_dim": 8, "encoder_units": 8, "decoder_units": 16, "encoder_layers": 2,
        "bidirectional": True}


@pytest.fixture(scope="module")
def real_batches():
    """Three of the zoo's own padded training batches (bucketed, multiples of 8) from
    Multi30k, with a small tokenizer."""
    require_multi30k()
    from zoo.data import read_multi30k
    from zoo.tasks.translation_data import make_dataset, tokenize_pairs
    from zoo.text import SubwordTokenizer

    sources, targets = read_multi30k("train", "de", "en", limit=1000)
    tokenizer = SubwordTokenizer.train(sources + targets, vocab_size=300)
    source_ids, target_ids, _ = tokenize_pairs(tokenizer, sources, targets, 30)
    dataset = make_dataset(source_ids, target_ids, 16, shuffle=True, seed=0)
    batches = [tuple(torch.from_numpy(x.numpy().astype(np.int64)) for x in
                     (inputs["source_ids"], inputs["target_in"], target_out))
               for inputs, target_out in dataset.take(3)]
    assert any(bool((b[0] == 0).any()) for b in batches), "batches must contain padding"
    return tokenizer, batches


def keras_model(tokenizer, **overrides):
    import zoo

    return zoo.build("luong_translator", tokenizer=tokenizer, **{**TINY, **overrides})


def keras_inputs(batch):
    import tensorflow as tf

    return ({"source_ids": tf.constant(batch[0].numpy(), tf.int32),
             "target_in": tf.constant(batch[1].numpy(), tf.int32)},
            tf.constant(batch[2].numpy(), tf.int32))


def test_same_parameter_count_and_weights_round_trip(real_batches):
    tokenizer, _ = real_batches
    model = keras_model(tokenizer)
    twin = torch_luong.twin_of(model)
    assert twin.count_params() == model.count_params()
    other = keras_model(tokenizer)
    torch_luong.port_torch_to_keras(twin, other)
    for mine, theirs in zip(model.weights, other.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_same_logits_loss_and_gradients_on_real_batches(real_batches, bidirectional):
    import tensorflow as tf

    from zoo.losses import SmoothedSequenceLoss

    tokenizer, batches = real_batches
    units = {} if bidirectional else {"encoder_units": 16}
    model = keras_model(tokenizer, bidirectional=bidirectional, **units)
    # The anchor's ±0.1 init, ported: logits far from zero, so equality means something.
    start = torch_luong.TorchLuongTranslator(
        tokenizer.vocab_size, 8, units.get("encoder_units", 8), 2, bidirectional, 16,
        0.2).init_uniform(0.1, seed=3)
    torch_luong.port_torch_to_keras(start, model)
    twin = torch_luong.twin_of(model).eval()
    loss_fn = SmoothedSequenceLoss(0.1)
    for batch in batches[:2]:
        inputs, y_true = keras_inputs(batch)
        with tf.GradientTape() as tape:
            logits = model(inputs, training=False)
            loss = loss_fn(y_true, logits)
        twin.zero_grad()
        twin_logits = twin(batch[0], batch[1])
        twin_loss = torch_luong.sequence_loss(twin_logits, batch[2])
        twin_loss.backward()
        assert float(np.abs(logits.numpy()).max()) > 0.1
        np.testing.assert_allclose(twin_logits.detach().numpy(), logits.numpy(),
                                   rtol=1e-4, atol=1e-5)
        assert float(twin_loss.detach()) == pytest.approx(float(loss), rel=1e-5)
        # The loss functions agree on identical logits.
        assert float(torch_luong.sequence_loss(torch.from_numpy(logits.numpy()), batch[2])) \
            == pytest.approx(float(loss), rel=1e-6)
        grads = torch_luong.keras_layout(twin, gradients=True)
        for weight, grad in zip(model.trainable_weights,
                                tape.gradient(loss, model.trainable_weights), strict=True):
            grad = np.asarray(tf.convert_to_tensor(grad))
            path = weight.path.split("/", 1)[1]
            np.testing.assert_allclose(grads[path], grad, rtol=1e-3,
                                       atol=1e-4 * np.abs(grad).max() + 1e-9, err_msg=path)


def test_keras_training_step_is_the_documented_recipe(real_batches):
    """Dropout off, same start: Keras' compiled step (Adam, global-norm clip, WarmupCosine,
    label-smoothed loss) equals the twin's step with Keras' Adam formula, step for step."""
    import keras

    from zoo.losses import SmoothedSequenceLoss
    from zoo.training.schedules import WarmupCosineDecay

    tokenizer, batches = real_batches
    model = keras_model(tokenizer, dropout=0.0)
    twin = torch_luong.twin_of(model)
    # A tiny clip norm, so that clipping is active and checked too.
    model.compile(optimizer=keras.optimizers.Adam(WarmupCosineDecay(0.01, 2, 6, 0.05),
                                                  global_clipnorm=0.05),
                  loss=SmoothedSequenceLoss(0.1))
    trainer = torch_luong.Trainer(twin, 0.01, 2, 6, 0.05, clip_norm=0.05, adam="keras")
    for batch in batches:
        keras_loss = float(model.train_on_batch(*keras_inputs(batch)))
        twin_loss, norm = trainer.train_step(*batch)
        assert twin_loss == pytest.approx(keras_loss, rel=1e-4)
    assert norm > 0.05  # clipping was on
    final = torch_luong.keras_layout(twin)
    for weight in model.weights:
        np.testing.assert_allclose(final[weight.path.split("/", 1)[1]], weight.numpy(),
                                   atol=2e-5, err_msg=weight.path)


def test_twin_greedy_decodes_and_trains(real_batches):
    tokenizer, batches = real_batches
    twin = torch_luong.TorchLuongTranslator(tokenizer.vocab_size, **TINY).init_uniform(0.1)
    result = torch_luong.train_throughput(twin, batches, steps=3, warmup_batches=1,
                                          learning_rate=0.01, warmup_steps=1, total_steps=10)
    assert result["target_tokens_per_second"] > 0 and len(result["losses"]) == 3
    ids = twin.greedy_decode(batches[0][0][:2])
    assert ids.shape[0] == 2
    assert ids.shape[1] <= int(batches[0][0].shape[1] * 1.5) + 10


def test_twin_beam_search_finds_the_zoos_hypotheses(trained_translator):
    """decode_throughput's PyTorch beam rows decode what the export does: the twin's beam
    search returns the zoo's best hypothesis (the tiny trained translator's weights, beam 5,
    GNMT α = 1; trained, so hypotheses end at different steps and α ranks them)."""
    model = trained_translator.model
    twin = torch_luong.twin_of(model).eval()
    sources = model.encode_texts(tf_constant(["Ein Mann fährt Fahrrad.",
                                             "Zwei Kinder spielen im Sand am Strand.",
                                             "Eine Frau mit einem roten Hut singt.",
                                             "Hunde."])).numpy()
    for alpha in (0.0, 1.0):
        ours = model.beam_decode(sources, beam_width=5, length_penalty=alpha,
                                 n_best=1)["ids"].numpy()[:, 0]
        theirs = twin.beam_decode(torch.from_numpy(sources.astype(np.int64)), beam_width=5,
                                  length_penalty=alpha).numpy()
        width = max(ours.shape[1], theirs.shape[1])
        ours = np.pad(ours, ((0, 0), (0, width - ours.shape[1])))
        theirs = np.pad(theirs, ((0, 0), (0, width - theirs.shape[1])))
        lengths = (ours != 0).sum(1)
        assert len(set(lengths.tolist())) > 1, lengths  # EOS at different steps
        np.testing.assert_array_equal(theirs, ours)


def tf_constant(values):
    import tensorflow as tf

    return tf.constant(values)
