"""Luong "general" (bilinear) attention."""

import keras
from keras import ops

from zoo.attention.base_attention import (
    BaseAttention,
    expand_mask,
    expand_query,
    masked_softmax,
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
        `(context, weights)`.

    Example:
    >>> layer = LuongGeneralAttention()
    >>> context, weights = layer(np.ones((2, 8)), np.ones((2, 5, 8)))
    """

    def __init__(self, scale=False, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.use_bias = use_bias

    def build(self, query_shape, values_shape=None, keys_shape=None, *args, **kwargs):
        key_dim = (keys_shape or values_shape)[-1]
        self.query_projection = keras.layers.Dense(
            key_dim, use_bias=self.use_bias, name="query_projection"
        )
        self.query_projection.build(query_shape)
        if self.scale:
            self.score_scale = self.add_weight(name="score_scale", shape=(), initializer="ones")

    def call(self, query, values, keys=None, mask=None, state=None, projected_keys=None,
             training=None):
        keys = projected_keys if projected_keys is not None else (
            values if keys is None else keys)
        query3d, squeeze = expand_query(query)
        scores = ops.matmul(self.query_projection(query3d), ops.transpose(keys, (0, 2, 1)))
        if self.scale:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        weights = masked_softmax(scores, expand_mask(mask, query3d))
        context = weighted_context(weights, values)
        if squeeze:
            return ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "use_bias": self.use_bias})
        return config
