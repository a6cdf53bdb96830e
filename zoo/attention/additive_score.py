"""The `v_aᵀ tanh(W_q q + W_k k)` score shared by Bahdanau (additive), Luong "concat",
location-sensitive and monotonic attention."""

import math

import keras
from keras import ops

from zoo.attention.base_attention import BaseAttention, clone_initializer


class AdditiveScoreAttention(BaseAttention):
    """Base of the layers scoring with a one-hidden-layer MLP, `v_aᵀ tanh(W_q q + W_k k)`.

    `W_k k` does not depend on the query: `project_keys` computes it once per source sentence.
    The weights are `W_k` (`key_projection`), `W_q` (`query_projection`) and `v_a`
    (`score_vector`); subclasses add theirs in `build_score_options(units)` and compute their
    scores from `hidden_states(query, keys)`.

    Args:
        units: int or None. Size of the MLP's hidden layer (of `v_a`); None = the key dim.
        kernel_initializer: initializer of `W_q`, `W_k` and `v_a`.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, units=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())

    def _units(self, keys_shape):
        return self.units or keys_shape[-1]

    def _projection(self, units, name):
        return keras.layers.Dense(
            units, use_bias=False, name=name,
            kernel_initializer=clone_initializer(self.kernel_initializer), dtype=self.dtype_policy,
        )

    def build_keys(self, keys_shape):
        self.key_projection = self._projection(self._units(keys_shape), "key_projection")
        self.key_projection.build(keys_shape)

    def compute_projected_keys(self, keys):
        return self.key_projection(keys)

    def build_attention(self, query_shape, keys_shape, values_shape):
        units = self._units(keys_shape)
        self.query_projection = self._projection(units, "query_projection")
        self.query_projection.build(query_shape)
        self.build_score_vector(units)
        self.build_score_options(units)

    def build_score_vector(self, units):
        self.score_vector = self.add_weight(
            name="score_vector", shape=(units,),
            initializer=clone_initializer(self.kernel_initializer)
        )

    def build_score_options(self, units):
        """Weights of the subclass's options, created after `v_a` (hook, default none)."""

    def build_weight_norm(self, units, bias_name):
        """The gain `g` (`score_gain`, initialised to `sqrt(1 / units)`) of a weight-normalised
        `v_a` (see `weight_normalized`), and the bias `b` added to the hidden states, returned."""
        self.score_gain = self.add_weight(
            name="score_gain", shape=(),
            initializer=keras.initializers.Constant(math.sqrt(1.0 / units)),
        )
        return self.add_weight(name=bias_name, shape=(units,), initializer="zeros")

    def hidden_states(self, query, keys):
        """`W_q q + W_k k` for every (query, key) pair: `[batch, T, S, units]` from the query
        `[batch, T, query_dim]` and the projected keys."""
        return ops.expand_dims(self.query_projection(query), 2) + ops.expand_dims(keys, 1)


def weight_normalized(vector, gain):
    """`g · v / ‖v‖` (Salimans & Kingma 2016), in the variables' dtype."""
    return gain * vector / ops.sqrt(ops.sum(ops.square(vector)))
