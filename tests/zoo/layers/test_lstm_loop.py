"""The hoisted LSTM loops (zoo/layers/lstm_loop.py) compute what the Keras layers they replace
compute, on the same weights: the encoder what `Bidirectional(LSTM)` gives with the padding
mask, the decoder what its `LSTMCell`s give step by step; the loss what its formula says."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import AttentionDecoder, RecurrentEncoder
from zoo.layers.lstm_loop import run_lstm
from zoo.losses import SmoothedSequenceLoss

IDS = np.array([[3, 4, 5, 6, 7, 2], [8, 9, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0]])
MASK = IDS != 0
LENGTHS = MASK.sum(1).astype("int32")


def test_run_lstm_is_keras_lstm_with_the_padding_mask():
    inputs = np.random.default_rng(0).normal(size=(3, 6, 5)).astype("float32")
    lstm = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True,
                                                        return_state=True))
    expected = lstm(inputs, mask=MASK)
    forward, (fw_h, fw_c) = run_lstm(inputs, lstm.forward_layer.cell, LENGTHS)
    backward, (bw_h, bw_c) = run_lstm(inputs, lstm.backward_layer.cell, LENGTHS, reverse=True)
    outputs = np.concatenate([forward, backward], -1)
    np.testing.assert_allclose(outputs, expected[0], atol=1e-6)  # 0 on padding, as Keras
    for got, want in zip((fw_h, fw_c, bw_h, bw_c), expected[1:], strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(outputs[~MASK]).max() == 0


@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_matches_its_keras_layers_and_compiles_under_xla(bidirectional):
    encoder = RecurrentEncoder(20, 6, 4, num_layers=2, bidirectional=bidirectional, dropout=0.0)
    memory, mask, states = encoder(IDS)
    np.testing.assert_array_equal(mask, MASK)
    outputs = encoder.embedding(IDS)  # the reference: the Keras layers, called with the mask
    for index, layer in enumerate(encoder.recurrent_layers):
        result = layer(outputs, mask=MASK)
        outputs = result[0]
        final = (np.concatenate([result[1], result[3]], -1),
                 np.concatenate([result[2], result[4]], -1)) if bidirectional else result[1:]
        np.testing.assert_allclose(states[index][0], final[0], atol=1e-6)
        np.testing.assert_allclose(states[index][1], final[1], atol=1e-6)
    np.testing.assert_allclose(np.asarray(memory)[MASK], np.asarray(outputs)[MASK], atol=1e-6)
    compiled = tf.function(lambda ids: encoder(ids)[0], jit_compile=True)
    np.testing.assert_allclose(compiled(IDS), memory, atol=1e-6)


@pytest.mark.parametrize("attention", ["luong_general", None])
def test_decoder_matches_its_cells_step_by_step(attention):
    encoder = RecurrentEncoder(20, 6, 4, num_layers=2, dropout=0.0)
    decoder = AttentionDecoder(20, 6, 8, 2, attention=attention, dropout=0.0)
    decoder.build((None, None), (None, None, 8))
    memory, mask, states = encoder(IDS)
    target = np.array([[1, 5, 6], [1, 8, 0], [1, 2, 0]])
    logits, alignments = decoder(target, memory, mask, states)
    cells = [list(state) for state in states]
    feed = np.zeros((3, 8), "float32")
    for t in range(target.shape[1]):  # the reference: the Keras cells called one step at a time
        inputs = decoder.embedding(target[:, t])
        if attention:
            inputs = np.concatenate([inputs, feed], -1)
        for index, cell in enumerate(decoder.cells):
            inputs, cells[index] = cell(inputs, cells[index])
        if attention:
            context, weights = decoder.attention(inputs, memory, mask=mask)[:2]
            np.testing.assert_allclose(alignments[:, t], weights, atol=1e-6)
            inputs = decoder.attentional_projection(np.concatenate([context, inputs], -1))
            feed = inputs
        np.testing.assert_allclose(logits[:, t], decoder.output_projection(inputs), atol=1e-5)
    # A search step (unstacked kernels) computes what teacher forcing does at step 0.
    step_logits = decoder.decoding_step(target[:, 0], decoder.initial_state(memory, mask, states),
                                        memory, mask, decoder.prepare_memory(memory))[0]
    np.testing.assert_allclose(step_logits, logits[:, 0], atol=1e-5)


def test_smoothed_loss_is_its_formula_over_real_tokens():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 7)).astype("float32")
    labels = np.array([[4, 2, 0], [6, 0, 0]])
    eps = 0.1
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    per_token = (1 - eps) * nll - eps * log_probs.mean(-1)
    real = labels != 0
    expected = (per_token * real).sum() / real.sum()
    got = float(SmoothedSequenceLoss(eps)(labels, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
