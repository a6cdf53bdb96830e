"""Luong "dot" attention."""

import keras
from keras import ops

from zoo.attention.base_attention import BaseAttention
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
        As `BaseAttention` (no `state`); `query_dim` must equal `key_dim`.

    Returns:
        `(context, weights)` as `BaseAttention`; the weights over the real positions sum to 1.

    Example:

    ```python
    layer = LuongDotAttention(scale=True)
    context, weights = layer(np.ones((2, 8)), np.ones((2, 5, 8)))
    ```
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
        self.build_scale()

    def build_scale(self):
        """The learned scalar `score_scale` when `scale=True`."""
        if self.scale:
            self.score_scale = self.add_weight(name="score_scale", shape=(), initializer="ones")

    def compute_scores(self, query, keys):
        scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))
        if self.scale:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        return scores
