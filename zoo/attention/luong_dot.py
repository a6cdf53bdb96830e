"""Luong "dot" attention."""

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


@register("luong_dot")
@keras.saving.register_keras_serializable(package="zoo")
class LuongDotAttention(BaseAttention):
    """Luong et al. 2015 "dot" attention: `score(h_t, h_s) = h_tᵀ h_s`.

    Parameter-free unless `scale=True`; the query and key dims must be equal. Same scores as
    `keras.layers.Attention(score_mode="dot", use_scale=scale)`.

    Args:
        scale: bool. If True, multiply scores by a learned scalar (initialised to 1; Luong's
            "scaled" form, as in tensorflow/nmt).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        query: `[batch, dim]` or `[batch, T, dim]`.
        values: `[batch, S, value_dim]`.
        keys: optional `[batch, S, dim]`, defaults to `values`.
        mask: optional boolean `[batch, S]`, True on real positions.

    Returns:
        `(context, weights)`: `[batch, value_dim]` and `[batch, S]` for a rank-2 query,
        `[batch, T, value_dim]` and `[batch, T, S]` for a rank-3 one. Weights over the real
        positions sum to 1.

    Example:
    >>> layer = LuongDotAttention(scale=True)
    >>> context, weights = layer(np.ones((2, 8)), np.ones((2, 5, 8)))
    """

    def __init__(self, scale=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def build_attention(self, query_shape, keys_shape, values_shape):
        if query_shape[-1] is not None and query_shape[-1] != keys_shape[-1]:
            raise ValueError(
                f"luong_dot needs query_dim == key_dim, got {query_shape[-1]} and "
                f"{keys_shape[-1]}; use luong_general to learn a projection."
            )
        if self.scale:
            self.score_scale = self.add_weight(name="score_scale", shape=(), initializer="ones")

    def call(self, query, values, keys=None, mask=None, state=None, projected_keys=None,
             training=None):
        keys = self.resolve_keys(values, keys, projected_keys)
        query3d, squeeze = expand_query(query)
        scores = ops.matmul(query3d, ops.transpose(keys, (0, 2, 1)))
        if self.scale:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        weights = masked_softmax(scores, expand_mask(mask))
        context = weighted_context(weights, values)
        return squeeze_outputs(squeeze, context, weights)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale})
        return config
