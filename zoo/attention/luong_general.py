"""Luong "general" (bilinear) attention."""

import keras
from keras import ops

from zoo.attention.base_attention import (
    BaseAttention,
    expand_mask,
    expand_query,
    masked_softmax,
    squeeze_outputs,
    weighted_context,
)
from zoo.attention.registry import register


@register("luong_general")
@keras.saving.register_keras_serializable(package="zoo")
class LuongGeneralAttention(BaseAttention):
    """Luong et al. 2015 "general" attention: `score(h_t, h_s) = h_tᵀ W_a h_s`.

    `W_a` is applied to the query (`(W_aᵀ h_t) · h_s`), which is the same score and keeps the
    per-step cost independent of the source length.

    Args:
        scale: bool. If True, multiply scores by a learned scalar (Luong's "scaled" form,
            as in tensorflow/nmt).
        use_bias: bool. Whether the query projection has a bias.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        query: `[batch, query_dim]` or `[batch, T, query_dim]`.
        values: `[batch, S, value_dim]`.
        keys: optional `[batch, S, key_dim]`, defaults to `values`.
        mask: optional boolean `[batch, S]`, True on real positions.

    Returns:
        `(context, weights)`: `[batch, value_dim]` and `[batch, S]` for a rank-2 query,
        `[batch, T, value_dim]` and `[batch, T, S]` for a rank-3 one. Weights over the real
        positions sum to 1.

    Example:
    >>> layer = LuongGeneralAttention()
    >>> context, weights = layer(np.ones((2, 8)), np.ones((2, 5, 8)))
    """

    def __init__(self, scale=False, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.use_bias = use_bias

    def build_attention(self, query_shape, keys_shape, values_shape):
        self.query_projection = keras.layers.Dense(
            keys_shape[-1], use_bias=self.use_bias, name="query_projection",
            dtype=self.dtype_policy,
        )
        self.query_projection.build(query_shape)
        if self.scale:
            self.score_scale = self.add_weight(name="score_scale", shape=(), initializer="ones")

    def call(self, query, values, keys=None, mask=None, state=None, projected_keys=None,
             training=None):
        keys = self.resolve_keys(values, keys, projected_keys)
        # Project before adding the T axis: a rank-2 Dense is a plain matmul, whose gradient
        # XLA compiles inside decoder while-loops (the rank-3 tensordot's is not).
        projected, squeeze = expand_query(self.query_projection(query))
        scores = ops.matmul(projected, ops.transpose(keys, (0, 2, 1)))
        if self.scale:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        weights = masked_softmax(scores, expand_mask(mask))
        context = weighted_context(weights, values)
        return squeeze_outputs(squeeze, context, weights)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "use_bias": self.use_bias})
        return config
