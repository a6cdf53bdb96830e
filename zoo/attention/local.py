"""Luong local attention, monotonic (local-m) or predictive (local-p)."""

import keras
from keras import ops

from zoo.attention.base_attention import (
    BaseAttention,
    clone_initializer,
    expand_mask,
    masked_softmax,
    valid_lengths,
    weighted_context,
)
from zoo.attention.registry import register

MODES = ("m", "p")
SCORES = ("dot", "general")


@register("local")
@keras.saving.register_keras_serializable(package="zoo")
class LocalAttention(BaseAttention):
    """Luong et al. 2015 local attention: attend only to the window `[p_t - D, p_t + D]`.

    * `mode="m"` (local-m, monotonic): `p_t = t`, the decoder step, carried in `state`
      (an int32 step counter per row). `p_t` is clipped to the last real source position,
      so targets longer than the source keep attending to its end. Inside the window the
      weights are the softmax of the scores: they sum to 1 over the real positions in the
      window, 0 elsewhere.
    * `mode="p"` (local-p, predictive): `p_t = (S_b - 1) · sigmoid(v_pᵀ tanh(W_p h_t))` with
      `S_b` the real length of row b (the paper's `S · sigmoid(·)`, mapped onto the 0-based
      real positions), and the window softmax is multiplied by a Gaussian centred at `p_t`,
      `exp(-(s - p_t)² / (2σ²))` with `σ = D / 2`. As in the paper the Gaussian leaves mass
      unassigned: the weights sum to **at most 1**. Gradients reach `W_p`, `v_p` through the
      Gaussian (the window edges are a hard cut).

    The score inside the window is Luong's "general" `h_tᵀ W_a h_s` (the paper's best
    local-p) or "dot" `h_tᵀ h_s`.

    Scores are computed for every position and masked outside the window (XLA-friendly
    static shapes), so the cost is that of global attention; the window restricts where the
    weight goes, not the work.

    `uses_state` is True for both modes (the step counter is carried but unused in local-p)
    so a decoder loop drives both the same way. A rank-3 query covers steps
    `state, state + 1, ..., state + T - 1`.

    Args:
        mode: "m" or "p".
        window_size: int, D ≥ 1: the window is `[p_t - D, p_t + D]` (2D + 1 positions) and
            `σ = D / 2`. Luong et al. use D = 10.
        score: "general" or "dot" (dot needs query_dim == key_dim).
        units: int or None. Hidden size of the local-p position network (`W_p`);
            None = the key dim.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention`; `state` is the int32 `[batch]` decoder step of the (first) query,
        None = 0.

    Returns:
        `(context, weights, next_state)` as `BaseAttention`; `next_state = state + T`
        (T = 1 for a rank-2 query).

    Example:

    ```python
    layer = LocalAttention(mode="p", window_size=2)
    memory = np.ones((2, 7, 8))
    state = layer.get_initial_state(memory)
    context, weights, state = layer(np.ones((2, 8)), memory, state=state)
    ```
    """

    uses_state = True

    def __init__(self, mode="p", window_size=10, score="general", units=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if int(window_size) < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        self.keep_arguments(locals())
        self.window_size = int(window_size)

    def build_attention(self, query_shape, keys_shape, values_shape):
        if self.score == "general":
            self.query_projection = keras.layers.Dense(
                keys_shape[-1], use_bias=False, name="query_projection", dtype=self.dtype_policy
            )
            self.query_projection.build(query_shape)
        elif query_shape[-1] is not None and query_shape[-1] != keys_shape[-1]:
            raise ValueError("score='dot' needs query_dim == key_dim; use score='general'.")
        if self.mode == "p":
            units = self.units or keys_shape[-1]
            self.position_projection = keras.layers.Dense(
                units, use_bias=False, activation="tanh", name="position_projection",
                dtype=self.dtype_policy,
            )
            self.position_projection.build(query_shape)
            self.position_vector = self.add_weight(
                name="position_vector", shape=(units,),
                initializer=clone_initializer("glorot_uniform"),
            )

    def get_initial_state(self, values, mask=None):
        return ops.zeros((ops.shape(values)[0],), dtype="int32")

    def predict_position(self, query3d, lengths):
        """`[B, T]` float32 window centres."""
        hidden = self.position_projection(query3d)
        logit = ops.sum(ops.cast(hidden, "float32") *
                        ops.cast(self.position_vector, "float32"), axis=-1)
        return (lengths[:, None] - 1.0) * ops.sigmoid(logit)

    def compute_scores(self, query, keys):
        scored = self.query_projection(query) if self.score == "general" else query
        return ops.cast(ops.matmul(scored, ops.transpose(keys, (0, 2, 1))), "float32")

    def attend(self, query, keys, values, mask, state, training=None):
        # The window: scores → softmax inside [p_t - D, p_t + D] only (× a Gaussian in local-p).
        step = ops.cast(state, "int32")
        t_len = ops.shape(query)[1]
        scores = self.compute_scores(query, keys)
        lengths = valid_lengths(values, mask)  # [B]
        if self.mode == "m":
            steps = ops.cast(step[:, None] + ops.arange(t_len, dtype="int32")[None, :],
                             "float32")
            centre = ops.minimum(steps, lengths[:, None] - 1.0)  # [B, T]
        else:
            centre = self.predict_position(query, lengths)
        offset = ops.cast(ops.arange(ops.shape(values)[1]), "float32")[None, None, :] - (
            centre[:, :, None])
        allowed = ops.abs(offset) <= float(self.window_size)  # [B, T, S]
        if mask is not None:
            allowed = ops.logical_and(allowed, expand_mask(mask))
        weights = masked_softmax(scores, allowed)
        if self.mode == "p":
            sigma = self.window_size / 2.0
            weights = weights * ops.exp(-ops.square(offset) / (2.0 * sigma * sigma))
        weights = ops.cast(weights, values.dtype)
        return weighted_context(weights, values), weights, step + t_len
