"""Bi-directional attention flow (Seo et al. 2017): context-to-query and query-to-context
attention fused into one query-aware representation of every context position."""

import keras
from keras import ops

from zoo.attention import masked_softmax


@keras.saving.register_keras_serializable(package="zoo")
class BidirectionalAttentionFlow(keras.layers.Layer):
    """The attention flow layer of BiDAF (Seo et al. 2017, arXiv:1611.01603, section 2.4).

    Similarity `S[t, j] = wᵀ [c_t; q_j; c_t ∘ q_j]` between context position `t` and
    question position `j` (computed as `w_c·c_t + w_q·q_j + (c_t ∘ w_cq)·q_j`, never
    materialising the `[C, Q, 3d]` tensor). Context-to-query: `a_t = softmax_j(S[t, :])`,
    `ã_t = Σ_j a_tj q_j`. Query-to-context: `b = softmax_t(max_j S[t, j])`,
    `h̃ = Σ_t b_t c_t`, the same for every `t`. Output `G_t = [c_t; ã_t; c_t ∘ ã_t; c_t ∘ h̃]`.

    Masked question positions get exactly zero C2Q weight, masked context positions exactly
    zero Q2C weight, and padded context rows all-zero C2Q weights; an empty question or
    context gives zeros, not NaN.

    Args:
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        context: float `[batch, C, d]`, the contextual context encoding.
        query: float `[batch, Q, d]`, the contextual question encoding.
        context_mask: optional bool `[batch, C]`, True on real positions.
        query_mask: optional bool `[batch, Q]`.

    Returns:
        `(G, c2q, q2c)`: `G [batch, C, 4d]`, the context-to-query weights `c2q [batch, C, Q]`
        and the query-to-context weights `q2c [batch, C]`.

    Example:

    ```python
    layer = BidirectionalAttentionFlow()
    g, c2q, q2c = layer(np.ones((2, 7, 8)), np.ones((2, 3, 8)))
    g.shape, c2q.shape, q2c.shape   # (2, 7, 32), (2, 7, 3), (2, 7)
    ```
    """

    def build(self, context_shape, query_shape=None, context_mask_shape=None,
              query_mask_shape=None):
        dim = context_shape[-1]
        self.context_weight = self.add_weight(name="context_weight", shape=(dim, 1),
                                              initializer="glorot_uniform")
        self.query_weight = self.add_weight(name="query_weight", shape=(dim, 1),
                                            initializer="glorot_uniform")
        self.product_weight = self.add_weight(name="product_weight", shape=(dim,),
                                              initializer="glorot_uniform")
        # No bias: both softmaxes are invariant to it.

    def similarity(self, context, query):
        """`S [batch, C, Q]` (float32 in mixed precision: it feeds two softmaxes)."""
        # Scores by matmul: XLA on CPU turns multiply-and-reduce into slow loops.
        context_term = ops.matmul(context, ops.cast(self.context_weight, context.dtype))
        query_term = ops.matmul(query, ops.cast(self.query_weight, query.dtype))
        product = ops.matmul(context * ops.cast(self.product_weight, context.dtype),
                             ops.transpose(query, (0, 2, 1)))
        scores = product + context_term + ops.transpose(query_term, (0, 2, 1))
        return ops.cast(scores, "float32")

    def call(self, context, query, context_mask=None, query_mask=None):
        scores = self.similarity(context, query)
        c2q_mask = None
        if query_mask is not None:
            c2q_mask = ops.expand_dims(ops.cast(query_mask, "bool"), 1)
        if context_mask is not None:
            rows = ops.expand_dims(ops.cast(context_mask, "bool"), 2)
            c2q_mask = rows if c2q_mask is None else ops.logical_and(rows, c2q_mask)
        c2q = masked_softmax(scores, c2q_mask)
        attended = ops.matmul(ops.cast(c2q, query.dtype), query)
        # Q2C: the context positions most similar to some question word; padded question
        # positions must not supply that maximum.
        if query_mask is not None:
            scores = ops.where(ops.expand_dims(ops.cast(query_mask, "bool"), 1), scores,
                               ops.full_like(scores, -1e9))
        q2c = masked_softmax(ops.max(scores, axis=-1), context_mask)
        summary = ops.matmul(ops.expand_dims(ops.cast(q2c, context.dtype), 1), context)
        fused = ops.concatenate(
            [context, attended, context * attended, context * summary], axis=-1)
        return fused, c2q, q2c

    def compute_output_shape(self, context_shape, query_shape=None, context_mask_shape=None,
                             query_mask_shape=None):
        batch, length, dim = context_shape
        query_length = query_shape[1] if query_shape is not None else None
        return ((batch, length, 4 * dim), (batch, length, query_length), (batch, length))

    def compute_mask(self, *args, **kwargs):
        return None
