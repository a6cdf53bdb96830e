"""The calling convention every attention layer of the zoo follows."""

import keras
from keras import ops


class BaseAttention(keras.layers.Layer):
    """Base class of the zoo's attention layers.

    One calling convention for every variant:
    `layer(query, values, keys=None, mask=None, state=None, projected_keys=None, training=None)`.

    Shapes: `query` is `[batch, query_dim]` (one decoder step) or `[batch, T, query_dim]`
    (T queries at once); `values` is `[batch, S, value_dim]`; `keys` defaults to `values`;
    `mask` is a boolean `[batch, S]`, True on real (non-padding) positions.

    Returns `(context, weights)`; layers with `uses_state = True` (those that need the previous
    alignment) return `(context, weights, next_state)` and take the previous one through `state`
    (start from `get_initial_state(values, mask)`). `context` is `[batch, value_dim]` or
    `[batch, T, value_dim]`; `weights` is `[batch, S]` or `[batch, T, S]`.

    Masked positions get exactly zero weight; a fully masked row gives zero weights and a zero
    context, never NaN.

    Decoder loops call `project_keys(keys)` once, outside the loop, and pass the result as
    `projected_keys=` at every step, so query-independent work (e.g. Bahdanau's `W_2 h_s`)
    is not repeated per step.
    """

    uses_state = False

    def project_keys(self, keys):
        """Query-independent transform of the keys (identity unless the score needs one)."""
        return keys

    def get_initial_state(self, values, mask=None):
        """Alignment state before the first step (stateful layers override)."""
        return None

    def call(self, query, values, keys=None, mask=None, state=None, projected_keys=None,
             training=None):
        raise NotImplementedError


def masked_softmax(scores, mask):
    """Softmax over the last axis giving exactly 0 on masked positions and no NaN on empty rows.

    `scores` is `[..., S]`; `mask` is boolean, broadcastable to `scores` (None = all valid).
    Computed in float32 so mixed-precision callers stay stable.
    """
    dtype = scores.dtype
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.cast(ops.softmax(scores, axis=-1), dtype)
    mask = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(scores))
    scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
    scores = scores - ops.max(scores, axis=-1, keepdims=True)
    exp = ops.where(mask, ops.exp(scores), ops.zeros_like(scores))
    total = ops.sum(exp, axis=-1, keepdims=True)
    weights = exp / ops.maximum(total, 1e-9)
    return ops.cast(weights, dtype)


def expand_query(query):
    """Return `(query3d, squeeze)`: rank-2 queries become `[batch, 1, dim]`."""
    if len(query.shape) == 2:
        return ops.expand_dims(query, 1), True
    return query, False


def expand_mask(mask, query3d):
    """`[batch, S]` mask → `[batch, 1, S]`, broadcastable to `[batch, T, S]` scores."""
    if mask is None:
        return None
    return ops.expand_dims(ops.cast(mask, "bool"), 1)


def weighted_context(weights, values):
    """`weights [batch, T, S] @ values [batch, S, dim]` → `[batch, T, dim]`."""
    return ops.matmul(ops.cast(weights, values.dtype), values)
