"""Luong "general" (bilinear) attention."""

import keras

from zoo.attention.luong_dot import LuongDotAttention
from zoo.attention.registry import register


@register("luong_general")
@keras.saving.register_keras_serializable(package="zoo")
class LuongGeneralAttention(LuongDotAttention):
    """Luong et al. 2015 "general" attention: `score(h_t, h_s) = h_tᵀ W_a h_s`.

    `W_a` is applied to the query (`(W_aᵀ h_t) · h_s`, Luong's "dot" score of the projected
    query), which is the same score and keeps the per-step cost independent of the source
    length.

    Args:
        scale: bool. If True, multiply scores by a learned scalar (Luong's "scaled" form,
            as in tensorflow/nmt).
        use_bias: bool. Whether the query projection has a bias.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention` (no `state`).

    Returns:
        `(context, weights)` as `BaseAttention`; the weights over the real positions sum to 1.

    Example:

    ```python
    layer = LuongGeneralAttention()
    context, weights = layer(np.ones((2, 8)), np.ones((2, 5, 8)))
    ```
    """

    def __init__(self, scale=False, use_bias=False, **kwargs):
        super().__init__(scale=scale, **kwargs)
        self.use_bias = use_bias

    def build_attention(self, query_shape, keys_shape, values_shape):
        self.query_projection = keras.layers.Dense(
            keys_shape[-1], use_bias=self.use_bias, name="query_projection",
            dtype=self.dtype_policy,
        )
        self.query_projection.build(query_shape)
        self.build_scale()

    def compute_projected_query(self, query):
        # Project before the T axis is added: a rank-2 Dense is a plain matmul, whose gradient
        # XLA compiles inside decoder while-loops (the rank-3 tensordot's is not).
        return self.query_projection(query)
