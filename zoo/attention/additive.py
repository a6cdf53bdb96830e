"""Bahdanau (additive) attention, optionally weight-normalised."""

import math

import keras
from keras import ops

from zoo.attention.additive_score import AdditiveScoreAttention
from zoo.attention.base_attention import (
    expand_mask,
    masked_softmax,
    squeeze_outputs,
    vector_scores,
    weighted_context,
)
from zoo.attention.registry import register


@register("additive")
@keras.saving.register_keras_serializable(package="zoo")
class AdditiveAttention(AdditiveScoreAttention):
    """Bahdanau et al. 2015 additive attention: `score(s, h_j) = v_aᵀ tanh(W_1 s + W_2 h_j)`.

    `W_2 h_j` does not depend on the query: `project_keys` computes it once per source
    sentence. With `normalize=True` the score is the weight-normalised form of TensorFlow
    Addons' `BahdanauAttention(normalize=True)` (Salimans & Kingma 2016):
    `score = g · v_aᵀ/‖v_a‖ · tanh(W_1 s + W_2 h_j + b)`, with a learned scalar `g`
    (initialised to `sqrt(1 / units)`) and bias `b`.

    In Bahdanau's paper the query is the *previous* decoder state `s_{i-1}`; which state is
    passed is up to the caller.

    Args:
        units: int or None. Size of the hidden layer of the score MLP; None = the key dim.
        normalize: bool. Weight-normalise `v_a` and add the bias `b` ("normed Bahdanau").
        kernel_initializer: initializer of `W_1`, `W_2` and `v_a`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        query: `[batch, query_dim]` or `[batch, T, query_dim]`.
        values: `[batch, S, value_dim]`.
        keys: optional `[batch, S, key_dim]`, defaults to `values`.
        mask: optional boolean `[batch, S]`, True on real positions.
        projected_keys: optional result of `project_keys(keys)`.

    Returns:
        `(context, weights)`: `[batch, value_dim]` and `[batch, S]` for a rank-2 query,
        `[batch, T, value_dim]` and `[batch, T, S]` for a rank-3 one. Weights over the real
        positions sum to 1.

    Example:
    >>> layer = AdditiveAttention(units=16, normalize=True)
    >>> memory = np.ones((2, 5, 8))
    >>> keys = layer.project_keys(memory)              # once per source sentence
    >>> context, weights = layer(np.ones((2, 8)), memory, projected_keys=keys)
    """

    def __init__(self, units=None, normalize=False, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(units=units, kernel_initializer=kernel_initializer, **kwargs)
        self.normalize = normalize

    def build_score_options(self, units):
        if self.normalize:
            self.score_gain = self.add_weight(
                name="score_gain", shape=(),
                initializer=keras.initializers.Constant(math.sqrt(1.0 / units)),
            )
            self.score_bias = self.add_weight(name="score_bias", shape=(units,),
                                              initializer="zeros")

    def score_vector_value(self):
        """`v_a`, or `g · v_a / ‖v_a‖` when normalised (in the variable dtype)."""
        v = self.score_vector
        if self.normalize:
            v = self.score_gain * v / ops.sqrt(ops.sum(ops.square(v)))
        return v

    def call(self, query, values, keys=None, mask=None, state=None, projected_keys=None,
             training=None):
        keys = self.resolve_keys(values, keys, projected_keys)  # W_2 h_j: [B, S, U]
        hidden, squeeze = self.hidden_states(query, keys)
        if self.normalize:
            hidden = hidden + ops.cast(self.score_bias, hidden.dtype)
        scores = vector_scores(ops.tanh(hidden), self.score_vector_value())  # [B, T, S]
        weights = masked_softmax(scores, expand_mask(mask))
        context = weighted_context(weights, values)
        return squeeze_outputs(squeeze, context, weights)

    def get_config(self):
        config = super().get_config()
        config.update({"normalize": self.normalize})
        return config
