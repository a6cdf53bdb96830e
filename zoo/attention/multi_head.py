"""Multi-head attention (self- or cross-) in the zoo's calling convention."""

import math

import keras
from keras import ops

from zoo.attention.base_attention import (
    BaseAttention,
    clone_initializer,
    expand_query,
    masked_softmax,
)
from zoo.attention.registry import register


@register("multi_head")
@keras.saving.register_keras_serializable(package="zoo")
class MultiHeadAttention(BaseAttention):
    """Vaswani et al. 2017 multi-head attention: `h` scaled dot-product heads, concatenated
    and projected: `context = concat_i(softmax(Q_i K_iᵀ / sqrt(d_k)) V_i) W_o`.

    Self-attention is `layer(x, x)`, cross-attention `layer(decoder_states, memory)`. The
    projections use the same `EinsumDense` shapes and names (`query`, `key`, `value`,
    `attention_output`) as `keras.layers.MultiHeadAttention`, so weights can be copied one
    to one and the outputs agree.

    A rank-2 query is one query (T = 1), e.g. a decoder step attending over the encoder
    memory. For it the value projection is applied after the weighting (exact, the projection
    is linear), so a decoder step costs `O(S · value_dim · heads)` instead of re-projecting the
    whole memory; `project_keys` computes the key projection once.

    `causal=True` lets query `t` see source positions `s <= t + S - T` (the usual lower
    triangle when T == S, as `keras.layers.MultiHeadAttention(use_causal_mask=True)`; the
    queries are the last T positions of the sequence otherwise, so a rank-2 query — one
    decoder step over a cache of S states ending at itself — sees all of them).

    Args:
        num_heads: int. Number of heads.
        key_dim: int or None. Size of each head for query and key; None = key dim // num_heads.
        value_dim: int or None. Size of each head for value; None = `key_dim`.
        output_dim: int or None. Size of `context`; None = the value dim.
        dropout: float. Dropout rate on the attention weights during training.
        use_bias: bool. Biases on the four projections.
        causal: bool. Causal (decoder self-attention) mask, see above.
        return_all_heads: bool. Return the weights of every head, `[batch, heads, T, S]`
            (`[batch, heads, S]` for a rank-2 query), instead of their mean over heads.
        kernel_initializer, bias_initializer: initializers of the projections.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention` (no `state`); `projected_keys` is `[batch, S, heads, key_dim]`,
        `training` enables dropout.

    Returns:
        `(context, weights)`: context `[batch, output_dim]` or `[batch, T, output_dim]`;
        weights `[batch, S]` / `[batch, T, S]`, averaged over heads (each head's weights, and
        so their mean, sum to 1 over the real positions), or per head with
        `return_all_heads=True`. The returned weights are the ones before dropout. A fully
        masked row gives a zero context (the output bias is not added).

    Multi-head attention keeps a `call` of its own (as Keras' `MultiHeadAttention` does): its
    scores, masks and weights have a heads axis, and a rank-2 query takes another path to the
    context.

    Example:

    ```python
    layer = MultiHeadAttention(num_heads=2, causal=True)
    x = np.ones((2, 5, 8))
    context, weights = layer(x, x)  # causal self-attention
    ```
    """

    def __init__(self, num_heads=8, key_dim=None, value_dim=None, output_dim=None, dropout=0.0,
                 use_bias=True, causal=False, return_all_heads=False,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())

    def _head_dim(self, keys_shape):
        if self.key_dim:
            return self.key_dim
        if keys_shape[-1] % self.num_heads:
            raise ValueError(
                f"key dim {keys_shape[-1]} is not divisible by num_heads={self.num_heads}; "
                "pass key_dim explicitly."
            )
        return keys_shape[-1] // self.num_heads

    def _projection(self, equation, output_shape, bias_axes, name):
        return keras.layers.EinsumDense(
            equation, output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None, name=name,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
        )

    def build_keys(self, keys_shape):
        self.key_dense = self._projection(
            "abc,cde->abde", (None, self.num_heads, self._head_dim(keys_shape)), "de", "key")
        self.key_dense.build(keys_shape)

    def compute_projected_keys(self, keys):
        return self.key_dense(keys)

    def build_attention(self, query_shape, keys_shape, values_shape):
        head_dim = self._head_dim(keys_shape)
        value_head_dim = self.value_dim or head_dim
        query3d_shape = (query_shape[0], 1, query_shape[-1]) if len(query_shape) == 2 else (
            query_shape)
        self.query_dense = self._projection(
            "abc,cde->abde", (None, self.num_heads, head_dim), "de", "query")
        self.query_dense.build(query3d_shape)
        self.value_dense = self._projection(
            "abc,cde->abde", (None, self.num_heads, value_head_dim), "de", "value")
        self.value_dense.build(values_shape)
        self.output_dense = self._projection(
            "abcd,cde->abe", (None, self.output_dim or values_shape[-1]), "e",
            "attention_output")
        self.output_dense.build((query3d_shape[0], query3d_shape[1], self.num_heads,
                                 value_head_dim))
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self._scale = 1.0 / math.sqrt(head_dim)

    def call(self, query, values, keys=None, mask=None, state=None, projected_keys=None,
             training=None):
        keys = self.resolve_keys(values, keys, projected_keys)  # [B, S, H, dk]
        query3d, squeeze = expand_query(query)
        q = self.query_dense(query3d) * ops.cast(self._scale, query3d.dtype)  # [B, T, H, dk]
        scores = ops.einsum("aecd,abcd->acbe", keys, q)  # [B, H, T, S]

        allowed = None
        if mask is not None:
            allowed = ops.cast(mask, "bool")[:, None, None, :]
        if self.causal:
            t_len, s_len = ops.shape(scores)[2], ops.shape(scores)[3]
            rows = ops.arange(t_len)[:, None] + (s_len - t_len)
            causal = ops.arange(s_len)[None, :] <= rows  # [T, S]
            allowed = causal if allowed is None else ops.logical_and(allowed, causal)
        weights = masked_softmax(scores, allowed)  # [B, H, T, S]
        attended = ops.cast(self.dropout_layer(weights, training=training), values.dtype)

        if squeeze:
            # Project after weighting: (Σ_s w_s v_s) W_v + (Σ_s w_s) b_v.
            mixed = ops.einsum("acbe,aef->abcf", attended, values)  # [B, T, H, Dv]
            heads = ops.einsum("abcf,fcd->abcd", mixed,
                               ops.cast(self.value_dense.kernel, values.dtype))
            if self.use_bias:
                total = ops.transpose(ops.sum(attended, axis=-1, keepdims=True), (0, 2, 1, 3))
                heads = heads + total * ops.cast(self.value_dense.bias, values.dtype)
        else:
            heads = ops.einsum("acbe,aecd->abcd", attended, self.value_dense(values))
        context = self.output_dense(heads)  # [B, T, output_dim]
        if mask is not None and self.use_bias:
            any_real = ops.any(ops.cast(mask, "bool"), axis=-1)[:, None, None]
            context = ops.where(any_real, context, ops.zeros_like(context))

        if not self.return_all_heads:
            weights = ops.mean(weights, axis=1)  # [B, T, S]
            if squeeze:
                return ops.squeeze(context, 1), ops.squeeze(weights, 1)
            return context, weights
        if squeeze:
            return ops.squeeze(context, 1), ops.squeeze(weights, 2)
        return context, weights
