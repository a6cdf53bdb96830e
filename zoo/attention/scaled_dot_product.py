"""Scaled dot-product attention with learned Q/K/V projections (one head)."""

import math

import keras
from keras import ops

from zoo.attention.base_attention import BaseAttention, clone_initializer
from zoo.attention.registry import register


@register("scaled_dot_product")
@keras.saving.register_keras_serializable(package="zoo")
class ScaledDotProductAttention(BaseAttention):
    """Vaswani et al. 2017 scaled dot-product attention, one head with learned projections.

    `Q = W_q h_t`, `K = W_k h_s`, `V = W_v v_s`, `context = softmax(Q Kᵀ / sqrt(d)) V` with
    `d = units`. Same result as `keras.ops.dot_product_attention(Q, K, V)`.

    `project_keys` computes `K` once. `V` is never materialised per position: since the value
    projection is linear, `softmax(·) (W_v v_s + b_v) = (softmax(·) v_s) W_v + (Σ weights) b_v`,
    which costs `O(value_dim · value_units)` per query instead of `O(S · value_dim ·
    value_units)` — a decoder step does not re-project the whole memory.

    Args:
        units: int or None. Size of `Q` and `K` (d); None = the key dim.
        value_units: int or None. Size of `V` (and of `context`); None = the value dim.
        use_bias: bool. Biases on the three projections (Vaswani et al. use none).
        dropout: float. Dropout rate on the attention weights during training (the returned
            weights are the ones before dropout).
        kernel_initializer: initializer of the projections.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention` (no `state`); `projected_keys` is `K`, `training` enables dropout.

    Returns:
        `(context, weights)` as `BaseAttention`, `context` of size `value_units`; the weights
        over the real positions sum to 1.

    Example:

    ```python
    layer = ScaledDotProductAttention(units=16)
    context, weights = layer(np.ones((2, 3, 8)), np.ones((2, 5, 8)))
    ```
    """

    def __init__(self, units=None, value_units=None, use_bias=False, dropout=0.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())

    def _dense(self, units, name):
        return keras.layers.Dense(
            units, use_bias=self.use_bias, name=name,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
        )

    def build_keys(self, keys_shape):
        self.key_projection = self._dense(self.units or keys_shape[-1], "key_projection")
        self.key_projection.build(keys_shape)

    def compute_projected_keys(self, keys):
        return self.key_projection(keys)

    def build_attention(self, query_shape, keys_shape, values_shape):
        units = self.units or keys_shape[-1]
        self.query_projection = self._dense(units, "query_projection")
        self.query_projection.build(query_shape)
        self.value_projection = self._dense(self.value_units or values_shape[-1],
                                            "value_projection")
        self.value_projection.build(values_shape)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self._scale = 1.0 / math.sqrt(units)

    def compute_scores(self, query, keys):  # keys: K [B, S, d]
        q = self.query_projection(query) * ops.cast(self._scale, query.dtype)
        return ops.matmul(q, ops.transpose(keys, (0, 2, 1)))

    def compute_context(self, weights, values, training=None):
        # The value projection after the weighting (see above).
        attended = self.dropout_layer(weights, training=training)
        context = ops.matmul(ops.matmul(ops.cast(attended, values.dtype), values),
                             ops.cast(self.value_projection.kernel, values.dtype))
        if self.use_bias:
            total = ops.sum(ops.cast(attended, values.dtype), axis=-1, keepdims=True)
            context = context + total * ops.cast(self.value_projection.bias, values.dtype)
        return context
