"""Monotonic attention (Raffel et al. 2017)."""

import keras
from keras import ops

from zoo.attention.additive_score import AdditiveScoreAttention, weight_normalized
from zoo.attention.base_attention import step_through, vector_scores, weighted_context
from zoo.attention.registry import register


def exclusive_cumprod(x):
    """`[1, x_0, x_0 x_1, ...]` over the last axis."""
    shifted = ops.concatenate([ops.ones_like(x[..., :1]), x[..., :-1]], axis=-1)
    return ops.cumprod(shifted, axis=-1)


def safe_exclusive_cumprod(x, tiny=1e-10):
    """`exclusive_cumprod` in log space, inputs clipped to `[tiny, 1]` (no underflow to 0)."""
    log_x = ops.log(ops.clip(x, tiny, 1.0))
    shifted = ops.concatenate([ops.zeros_like(log_x[..., :1]), log_x[..., :-1]], axis=-1)
    return ops.exp(ops.cumsum(shifted, axis=-1))


def expected_alignment(p_choose, previous):
    """Raffel et al. eq. 11, closed form (TF Addons' "parallel" mode).

    `α_j = p_j Π_{k<j}(1 - p_k) Σ_{k<=j} α'_k / Π_{l<k}(1 - p_l)`; the denominator is clipped
    at 1e-10, so the result is exact unless a row's `Π(1 - p)` underflows (long memories
    with choosing probabilities near 1).
    """
    cumprod = safe_exclusive_cumprod(1.0 - p_choose)
    return p_choose * cumprod * ops.cumsum(previous / ops.clip(cumprod, 1e-10, 1.0), axis=-1)


def hard_alignment(p_choose, previous):
    """Test-time hard monotonic attention: from the previously attended position, attend to
    the first `j` with `p_j > 0.5`; attend nowhere (all zeros) if there is none."""
    choose = ops.cast(p_choose > 0.5, p_choose.dtype) * ops.cumsum(previous, axis=-1)
    return choose * exclusive_cumprod(1.0 - choose)


@register("monotonic")
@keras.saving.register_keras_serializable(package="zoo")
class MonotonicAttention(AdditiveScoreAttention):
    """Raffel et al. 2017 monotonic attention: the decoder scans the memory left to right
    and stops at position j with probability `p_{i,j} = sigmoid(e_{i,j})`, never going back.

    Energy (Bahdanau-style, weight-normalised as in the paper):
    `e_{i,j} = g · vᵀ/‖v‖ · tanh(W s_i + V h_j + b) + r` (`normalize=False`: `vᵀ tanh(W s_i
    + V h_j) + r`), with `r` a learned scalar starting at `score_bias_init`.

    * training: the expected (soft) alignment of Raffel's eq. 11 given the previous one,
      computed in closed form (`expected_alignment`); optional Gaussian pre-sigmoid noise
      (`sigmoid_noise`, the paper uses 1) pushes `p` towards 0/1.
    * inference: the hard monotonic alignment (one-hot or, once it runs off the end,
      zeros), as at test time in the paper.

    Masked positions get `p = 0` (never stopped at). The weights do **not** always sum to 1:
    the mass of "scanned past the last real position" is left unassigned (in the paper the
    context is then the zero vector), so they sum to at most 1.

    The state is the previous alignment, float32 `[batch, S]`, starting as one-hot on the
    first position (`get_initial_state`; zeros for a fully masked row). A rank-3 query is
    stepped through its T positions.

    Args:
        units: int or None. Size of the energy MLP; None = the key dim.
        normalize: bool. Weight-normalised energy (paper) instead of plain Bahdanau.
        score_bias_init: float. Initial `r` (0 as in TF Addons). A negative value makes
            early stops less likely at the start of training, which TF Addons recommends
            for long memories.
        sigmoid_noise: float. Std of the pre-sigmoid noise added during training.
        seed: int or None. Seed of the noise.
        kernel_initializer: initializer of `W`, `V` and `v`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention`; `state` is the float32 `[batch, S]` previous alignment (None =
        first step), `projected_keys` is `V h`, `training`: expected alignment if True, hard
        alignment otherwise.

    Returns:
        `(context, weights, next_state)` as `BaseAttention`.

    Example:

    ```python
    layer = MonotonicAttention(units=16)
    memory = np.ones((2, 5, 8))
    state = layer.get_initial_state(memory)
    context, weights, state = layer(np.ones((2, 8)), memory, state=state, training=True)
    ```
    """

    uses_state = True

    def __init__(self, units=None, normalize=True, score_bias_init=0.0, sigmoid_noise=0.0,
                 seed=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(units=units, kernel_initializer=kernel_initializer, **kwargs)
        self.normalize = normalize
        self.score_bias_init = score_bias_init
        self.sigmoid_noise = sigmoid_noise
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if sigmoid_noise > 0 else None

    def build_score_options(self, units):
        if self.normalize:
            self.attention_bias = self.build_weight_norm(units, "attention_bias")
        self.energy_bias = self.add_weight(
            name="energy_bias", shape=(),
            initializer=keras.initializers.Constant(self.score_bias_init),
        )

    def get_initial_state(self, values, mask=None):
        s_len = ops.shape(values)[1]
        first = ops.cast(ops.arange(s_len) == 0, "float32")[None, :]
        state = ops.broadcast_to(first, (ops.shape(values)[0], s_len))
        if mask is not None:
            state = state * ops.cast(mask, "float32")
        return state

    def energy(self, processed_query, keys):
        """`e_{i,j}`, float32 `[B, S]`, from `W s_i` `[B, U]` and `V h` `[B, S, U]`."""
        hidden = processed_query[:, None, :] + keys
        v = self.score_vector
        if self.normalize:
            hidden = hidden + ops.cast(self.attention_bias, hidden.dtype)
            v = weight_normalized(v, self.score_gain)
        energy = vector_scores(ops.tanh(hidden), v)
        return ops.cast(energy, "float32") + ops.cast(self.energy_bias, "float32")

    def attend(self, query, keys, values, mask, state, training=None):
        processed = self.query_projection(query)  # W s_i: [B, T, U]
        training = bool(training)
        return step_through(lambda q_t, s: self.step(q_t, keys, values, mask, s, training),
                            processed, values, ops.cast(state, "float32"))

    def step(self, processed_query, keys, values, mask, previous, training):
        """One decoder step; `processed_query` is `W s_i`, `[B, U]`; `keys` is `V h`."""
        energy = self.energy(processed_query, keys)
        if training and self.sigmoid_noise > 0:
            energy = energy + self.sigmoid_noise * keras.random.normal(
                ops.shape(energy), seed=self.seed_generator)
        p_choose = ops.sigmoid(energy)
        if mask is not None:
            p_choose = ops.where(ops.cast(mask, "bool"), p_choose, ops.zeros_like(p_choose))
        if training:
            weights = expected_alignment(p_choose, previous)
        else:
            weights = hard_alignment(p_choose, previous)
        context = weighted_context(weights[:, None, :], values)[:, 0, :]
        return context, ops.cast(weights, values.dtype), weights
