"""Luong "concat" attention."""

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


@register("luong_concat")
@keras.saving.register_keras_serializable(package="zoo")
class LuongConcatAttention(BaseAttention):
    """Luong et al. 2015 "concat" attention: `score(h_t, h_s) = v_aᵀ tanh(W_a [h_t; h_s])`.

    `W_a` is split into its query and key halves, `W_a [h_t; h_s] = W_q h_t + W_k h_s`, so
    `project_keys` can compute `W_k h_s` once per source sentence. This is the same score
    family as `additive` (Bahdanau); Luong feeds the *current* decoder state as the query.

    Args:
        units: int or None. Rows of `W_a` (size of `v_a`); None = the key dim.
        scale: bool. If True, multiply scores by a learned scalar (initialised to 1).
        kernel_initializer: initializer of `W_a` and `v_a`.
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
    >>> layer = LuongConcatAttention(units=16)
    >>> context, weights = layer(np.ones((2, 3, 8)), np.ones((2, 5, 8)))
    """

    def __init__(self, units=None, scale=False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale
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
        if self.scale:
            self.score_scale = self.add_weight(name="score_scale", shape=(), initializer="ones")

    def call(self, query, values, keys=None, mask=None, state=None, projected_keys=None,
             training=None):
        keys = self.resolve_keys(values, keys, projected_keys)  # W_k h_s: [B, S, U]
        query3d, squeeze = expand_query(query)
        hidden = ops.expand_dims(self.query_projection(query3d), 2) + ops.expand_dims(keys, 1)
        scores = vector_scores(ops.tanh(hidden), self.score_vector)
        if self.scale:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        weights = masked_softmax(scores, expand_mask(mask))
        context = weighted_context(weights, values)
        return squeeze_outputs(squeeze, context, weights)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "scale": self.scale,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        })
        return config
