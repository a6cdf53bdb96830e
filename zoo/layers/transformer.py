"""Transformer building blocks (Vaswani et al. 2017), pre-norm, on the zoo's multi-head
attention layer."""

import math

import keras
from keras import ops

from zoo import attention as attention_lib
from zoo.attention.base_attention import ArgumentConfig


def sinusoidal_positions(positions, dim):
    """Vaswani et al.'s position encodings: `[..., dim]` float32 for int `positions` `[...]`,
    `sin` in the first half of the features and `cos` in the second."""
    half = dim // 2
    rates = ops.exp(ops.arange(half, dtype="float32") * (-math.log(10000.0) / max(half - 1, 1)))
    angles = ops.cast(positions, "float32")[..., None] * rates
    encoding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
    if dim % 2:
        encoding = ops.pad(encoding, [(0, 0)] * (len(encoding.shape) - 1) + [(0, 1)])
    return encoding


@keras.saving.register_keras_serializable(package="zoo")
class PositionalEmbedding(ArgumentConfig, keras.layers.Layer):
    """Token embedding × √d plus sinusoidal position encoding, then dropout.

    Args:
        vocab_size: int, vocabulary size.
        dim: int, model size d.
        dropout: float.

    Call arguments:
        ids: int `[batch, T]` (positions 0 … T−1), or `[batch]` with `position` (one
            decoding step).
        position: optional int scalar, the position of a rank-1 `ids`.
        training: bool.

    Returns:
        `[batch, T, dim]` (or `[batch, dim]`).
    """

    def __init__(self, vocab_size, dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        self.embedding = keras.layers.Embedding(
            vocab_size, dim, name="embedding",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=dim ** -0.5))
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, ids_shape):
        self.embedding.build(ids_shape)

    def call(self, ids, position=None, training=None):
        embedded = self.embedding(ids) * ops.cast(math.sqrt(self.dim), self.compute_dtype)
        positions = ops.arange(ops.shape(ids)[1])[None, :] if position is None else position
        embedded = embedded + ops.cast(sinusoidal_positions(positions, self.dim), embedded.dtype)
        return self.dropout_layer(embedded, training=training)

    def compute_mask(self, *args, **kwargs):
        return None


class _FeedForward(keras.layers.Layer):
    """`W_2 dropout(relu(W_1 x))` (the position-wise FFN)."""

    def __init__(self, dim, ffn_dim, dropout, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(ffn_dim, activation="relu", name="inner")
        self.outer = keras.layers.Dense(dim, name="outer")
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, shape):
        self.inner.build(shape)
        self.outer.build((*shape[:-1], self.inner.units))

    def call(self, x, training=None):
        return self.outer(self.dropout_layer(self.inner(x), training=training))


@keras.saving.register_keras_serializable(package="zoo")
class TransformerEncoderLayer(ArgumentConfig, keras.layers.Layer):
    """Pre-norm encoder layer: `x += SelfAttention(LN(x))`, `x += FFN(LN(x))`.

    Args:
        dim: int, model size.
        num_heads: int, attention heads.
        ffn_dim: int, inner size of the feed-forward network.
        dropout: float, on attention weights, the FFN's inner layer and each residual branch.

    Call arguments:
        x: `[batch, S, dim]`; mask: boolean `[batch, S]` (True on real positions).

    Returns:
        `[batch, S, dim]`.
    """

    def __init__(self, dim, num_heads, ffn_dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6,
                                                              name="attention_norm")
        self.self_attention = attention_lib.get("multi_head", num_heads=num_heads,
                                                dropout=dropout, name="self_attention")
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="ffn_norm")
        self.ffn = _FeedForward(dim, ffn_dim, dropout, name="ffn")
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, shape):
        shape = (shape[0], shape[1], self.dim)
        self.attention_norm.build(shape)
        self.self_attention.build(shape, shape)
        self.ffn_norm.build(shape)
        self.ffn.build(shape)

    def call(self, x, mask=None, training=None):
        h = self.attention_norm(x)
        context, _ = self.self_attention(h, h, mask=mask, training=training)
        x = x + self.dropout_layer(context, training=training)
        h = self.ffn_norm(x)
        return x + self.dropout_layer(self.ffn(h, training=training), training=training)

    def compute_mask(self, *args, **kwargs):
        return None


@keras.saving.register_keras_serializable(package="zoo")
class TransformerDecoderLayer(ArgumentConfig, keras.layers.Layer):
    """Pre-norm decoder layer: causal self-attention, cross-attention over the encoder
    memory, FFN, each `y += Sublayer(LN(y))`.

    Teacher forcing (`call`) runs all T positions at once under a causal mask; `step` runs
    one position against a fixed-size cache of the previous positions' projected keys and
    normalised inputs (the values), as a search needs. Both compute the same function.

    Args:
        dim, num_heads, ffn_dim, dropout: as `TransformerEncoderLayer`.

    Call arguments:
        y: `[batch, T, dim]`; memory: `[batch, S, dim]`; memory_mask: boolean `[batch, S]`.

    Returns:
        `(y [batch, T, dim], cross-attention weights [batch, T, S] averaged over heads)`.
    """

    def __init__(self, dim, num_heads, ffn_dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        self.self_attention_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, name="self_attention_norm")
        self.self_attention = attention_lib.get("multi_head", num_heads=num_heads, causal=True,
                                                dropout=dropout, name="self_attention")
        self.cross_attention_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, name="cross_attention_norm")
        self.cross_attention = attention_lib.get("multi_head", num_heads=num_heads,
                                                 dropout=dropout, name="cross_attention")
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="ffn_norm")
        self.ffn = _FeedForward(dim, ffn_dim, dropout, name="ffn")
        self.dropout_layer = keras.layers.Dropout(dropout)

    @property
    def head_dim(self):
        return self.dim // self.num_heads

    def build(self, shape, memory_shape=None):
        shape = (shape[0], shape[1], self.dim)
        memory_shape = memory_shape or (shape[0], None, self.dim)
        self.self_attention_norm.build(shape)
        self.self_attention.build(shape, shape)
        self.cross_attention_norm.build(shape)
        self.cross_attention.build(shape, memory_shape)
        self.ffn_norm.build(shape)
        self.ffn.build(shape)

    def call(self, y, memory, memory_mask=None, training=None):
        h = self.self_attention_norm(y)
        context, _ = self.self_attention(h, h, training=training)
        y = y + self.dropout_layer(context, training=training)
        h = self.cross_attention_norm(y)
        context, weights = self.cross_attention(h, memory, mask=memory_mask, training=training)
        y = y + self.dropout_layer(context, training=training)
        h = self.ffn_norm(y)
        y = y + self.dropout_layer(self.ffn(h, training=training), training=training)
        return y, weights

    # -- incremental decoding ---------------------------------------------------------------
    def initial_cache(self, batch, max_length, dtype="float32"):
        """Empty self-attention cache for `max_length` positions: projected keys
        `[batch, T, heads, head_dim]` and values (normalised inputs) `[batch, T, dim]`."""
        return {"keys": ops.zeros((batch, max_length, self.num_heads, self.head_dim), dtype),
                "values": ops.zeros((batch, max_length, self.dim), dtype)}

    def step(self, y, step, cache, memory, memory_mask, memory_keys):
        """One position: `y` `[N, dim]` at `step` → `(y, cross weights [N, S], cache)`;
        `memory_keys` is `cross_attention.project_keys(memory)`."""
        h = self.self_attention_norm(y)
        new_key = self.self_attention.project_keys(h[:, None, :])[:, 0]
        max_length = ops.shape(cache["values"])[1]
        written = ops.arange(max_length) == step  # [T]
        keys = ops.where(written[None, :, None, None], new_key[:, None],
                         ops.cast(cache["keys"], new_key.dtype))
        values = ops.where(written[None, :, None], h[:, None], ops.cast(cache["values"], h.dtype))
        visible = ops.broadcast_to((ops.arange(max_length) <= step)[None, :],
                                   (ops.shape(y)[0], max_length))
        context, _ = self.self_attention(h, values, mask=visible, projected_keys=keys)
        y = y + context
        h = self.cross_attention_norm(y)
        context, weights = self.cross_attention(h, memory, mask=memory_mask,
                                                projected_keys=memory_keys)
        y = y + context
        y = y + self.ffn(self.ffn_norm(y))
        return y, weights, {"keys": keys, "values": values}

    def compute_mask(self, *args, **kwargs):
        return None
