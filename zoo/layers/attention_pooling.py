"""Pooling a sequence with any registered attention layer and learned queries."""

import keras
from keras import ops

from zoo import attention as attention_lib
from zoo.attention.base_attention import ArgumentConfig
from zoo.layers.structured_self_attention import frobenius_penalty


@keras.saving.register_keras_serializable(package="zoo")
class AttentionPooling(ArgumentConfig, keras.layers.Layer):
    """Attention pooling: `hops` learned query vectors attend over a sequence through a layer
    of `zoo.attention`, so a classifier can compare the zoo's scoring functions.

    The queries are trainable `[hops, query_dim]` weights, the same for every example; the
    attention layer scores every token against each of them. Stateful layers (location-
    sensitive, monotonic, local) take the hops as consecutive decoder steps from their initial
    state. As in `StructuredSelfAttention`, `penalty · ‖A Aᵀ − I‖²_F` is added in training.

    Args:
        attention: str, a name from `zoo.attention.names()`.
        attention_options: dict, keyword arguments of that layer.
        hops: int, number of learned queries.
        query_dim: int or None, size of the queries (None = the values' size, which every
            layer accepts, e.g. `luong_dot` needs equal sizes).
        penalty: float, coefficient of the Frobenius penalty (0 = none).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        values: `[batch, S, dim]`.
        mask: optional boolean `[batch, S]`, True on real tokens (default: the Keras mask of
            `values`).
        training: bool.

    Returns:
        `(pooled [batch, hops, context_dim], weights [batch, hops, S])`; the weights are the
        attention layer's (multi-head: averaged over heads), zero on padding.

    Example:

    ```python
    layer = AttentionPooling("additive", hops=2)
    pooled, weights = layer(np.ones((2, 5, 8)))
    ```
    """

    def __init__(self, attention="luong_general", attention_options=None, hops=1,
                 query_dim=None, penalty=0.0, **kwargs):
        super().__init__(**kwargs)
        if hops <= 0:
            raise ValueError(f"hops must be positive, got {hops}")
        self.keep_arguments(locals())
        self.attention_name = attention
        self.attention_options = dict(attention_options or {})
        self.attention = attention_lib.get(attention, **self.attention_options,
                                           name="attention", dtype=self.dtype_policy)
        self.supports_masking = True

    def build(self, values_shape):
        query_dim = self.query_dim or values_shape[-1]
        self.queries = self.add_weight(name="queries", shape=(self.hops, query_dim),
                                       initializer="glorot_uniform")
        self.attention.build((values_shape[0], self.hops, query_dim), tuple(values_shape))

    def call(self, values, mask=None, training=None):
        batch = ops.shape(values)[0]
        queries = ops.cast(self.queries, values.dtype)
        queries = ops.broadcast_to(queries[None], (batch, *ops.shape(queries)))
        kwargs = {}
        if self.attention.uses_state:
            kwargs["state"] = self.attention.get_initial_state(values, mask)
        result = self.attention(queries, values, mask=mask, training=training, **kwargs)
        pooled, weights = result[0], result[1]
        if len(weights.shape) == 4:  # per-head weights [batch, heads, hops, S]
            weights = ops.mean(weights, axis=1)
        if training and self.penalty:
            self.add_loss(self.penalty * frobenius_penalty(weights))
        return pooled, weights

    def compute_mask(self, values, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "attention": self.attention_name}
