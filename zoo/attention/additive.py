"""Bahdanau (additive) attention, optionally weight-normalised."""

import math

import keras
from keras import ops

from zoo.attention.base_attention import (
    BaseAttention,
    clone_initializer,
    expand_mask,
    expand_query,
    masked_softmax,
    squeeze_outputs,
    vector_scores,
    weighted_context,
)
from zoo.attention.registry import register


@register("additive")
@keras.saving.register_keras_serializable(package="zoo")
class AdditiveAttention(BaseAttention):
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
        super().__init__(**kwargs)
        self.units = units
        self.normalize = normalize
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _units(self, keys_shape):
        return self.units or keys_shape[-1]

    def build_keys(self, keys_shape):
        self.key_projection = keras.layers.Dense(
            self._units(keys_shape), use_bias=False, name="key_projection",
            kernel_initializer=clone_initializer(self.kernel_initializer), dtype=self.dtype_policy,
        )
        self.key_projection.build(keys_shape)

    def compute_projected_keys(self, keys):
        return self.key_projection(keys)

    def build_attention(self, query_shape, keys_shape, values_shape):
        units = self._units(keys_shape)
        self.query_projection = keras.layers.Dense(
            units, use_bias=False, name="query_projection",
            kernel_initializer=clone_initializer(self.kernel_initializer), dtype=self.dtype_policy,
        )
        self.query_projection.build(query_shape)
        self.score_vector = self.add_weight(
            name="score_vector", shape=(units,), initializer=clone_initializer(self.kernel_initializer)
        )
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
        keys = self.resolve_keys(values, keys, projected_keys)  # [B, S, U]
        query3d, squeeze = expand_query(query)
        hidden = ops.expand_dims(self.query_projection(query3d), 2) + ops.expand_dims(keys, 1)
        if self.normalize:
            hidden = hidden + ops.cast(self.score_bias, hidden.dtype)
        scores = vector_scores(ops.tanh(hidden), self.score_vector_value())  # [B, T, S]
        weights = masked_softmax(scores, expand_mask(mask))
        context = weighted_context(weights, values)
        return squeeze_outputs(squeeze, context, weights)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "normalize": self.normalize,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        })
        return config
