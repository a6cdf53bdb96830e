"""Bahdanau (additive) attention, optionally weight-normalised."""

import keras
from keras import ops

from zoo.attention.additive_score import AdditiveScoreAttention, weight_normalized
from zoo.attention.base_attention import vector_scores
from zoo.attention.registry import register


@register("additive")
@keras.saving.register_keras_serializable(package="zoo")
class AdditiveAttention(AdditiveScoreAttention):
    """Bahdanau et al. 2015 additive attention: `score(s, h_j) = v_aᵀ tanh(W_1 s + W_2 h_j)`.

    `W_2 h_j` does not depend on the query: `project_keys` computes it once per source
    sentence. With `normalize=True` the score is the weight-normalised form of TensorFlow
    Addons' `BahdanauAttention(normalize=True)` (Salimans & Kingma 2016):
    `score = g · v_aᵀ/‖v_a‖ · tanh(W_1 s + W_2 h_j + b)`, with a learned scalar `g`
    (initialised to `sqrt(1 / units)`) and bias `b`.

    In Bahdanau's paper the query is the *previous* decoder state `s_{i-1}`; which state is
    passed is up to the caller.

    Args:
        units: int or None. Size of the hidden layer of the score MLP; None = the key dim.
        normalize: bool. Weight-normalise `v_a` and add the bias `b` ("normed Bahdanau").
        kernel_initializer: initializer of `W_1`, `W_2` and `v_a`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention` (no `state`); `projected_keys` is `W_2 h_j`.

    Returns:
        `(context, weights)` as `BaseAttention`; the weights over the real positions sum to 1.

    Example:

    ```python
    layer = AdditiveAttention(units=16, normalize=True)
    memory = np.ones((2, 5, 8))
    keys = layer.project_keys(memory)  # once per source sentence
    context, weights = layer(np.ones((2, 8)), memory, projected_keys=keys)
    ```
    """

    def __init__(self, units=None, normalize=False, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(units=units, kernel_initializer=kernel_initializer, **kwargs)
        self.normalize = normalize

    def build_score_options(self, units):
        if self.normalize:
            self.score_bias = self.build_weight_norm(units, "score_bias")

    def score_vector_value(self):
        """`v_a`, or `g · v_a / ‖v_a‖` when normalised (in the variable dtype)."""
        if self.normalize:
            return weight_normalized(self.score_vector, self.score_gain)
        return self.score_vector

    def compute_scores(self, query, keys):
        hidden = self.hidden_states(query, keys)  # W_1 s + W_2 h_j: [B, T, S, U]
        if self.normalize:
            hidden = hidden + ops.cast(self.score_bias, hidden.dtype)
        return vector_scores(ops.tanh(hidden), self.score_vector_value())
