"""Luong "concat" attention."""

import keras
from keras import ops

from zoo.attention.additive_score import AdditiveScoreAttention
from zoo.attention.base_attention import vector_scores
from zoo.attention.registry import register


@register("luong_concat")
@keras.saving.register_keras_serializable(package="zoo")
class LuongConcatAttention(AdditiveScoreAttention):
    """Luong et al. 2015 "concat" attention: `score(h_t, h_s) = v_aᵀ tanh(W_a [h_t; h_s])`.

    `W_a` is split into its query and key halves, `W_a [h_t; h_s] = W_q h_t + W_k h_s`, so
    `project_keys` can compute `W_k h_s` once per source sentence. This is the same score
    family as `additive` (Bahdanau); Luong feeds the *current* decoder state as the query.

    Args:
        units: int or None. Rows of `W_a` (size of `v_a`); None = the key dim.
        scale: bool. If True, multiply scores by a learned scalar (initialised to 1).
        kernel_initializer: initializer of `W_a` and `v_a`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention` (no `state`); `projected_keys` is `W_k h_s`.

    Returns:
        `(context, weights)` as `BaseAttention`; the weights over the real positions sum to 1.

    Example:

    ```python
    layer = LuongConcatAttention(units=16)
    context, weights = layer(np.ones((2, 3, 8)), np.ones((2, 5, 8)))
    ```
    """

    def __init__(self, units=None, scale=False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(units=units, kernel_initializer=kernel_initializer, **kwargs)
        self.scale = scale

    def build_score_options(self, units):
        if self.scale:
            self.score_scale = self.add_weight(name="score_scale", shape=(), initializer="ones")

    def compute_scores(self, query, keys):
        scores = vector_scores(ops.tanh(self.hidden_states(query, keys)), self.score_vector)
        if self.scale:
            scores = scores * ops.cast(self.score_scale, scores.dtype)
        return scores
