"""Location-sensitive attention (Chorowski et al. 2015)."""

import keras
from keras import ops

from zoo.attention.additive_score import AdditiveScoreAttention
from zoo.attention.base_attention import (
    clone_initializer,
    masked_softmax,
    step_through,
    vector_scores,
    weighted_context,
)
from zoo.attention.registry import register


@register("location_sensitive")
@keras.saving.register_keras_serializable(package="zoo")
class LocationSensitiveAttention(AdditiveScoreAttention):
    """Chorowski et al. 2015 location-sensitive attention:
    `e_{i,j} = wᵀ tanh(W s_i + V h_j + U f_{i,j} + b)`, `f_i = F * [α_{i-1}, Σ_{k<i} α_k]`.

    The location features `f` are a 1-D convolution `F` (`filters` × `kernel_size`, "same"
    padding) over two channels: the previous alignment (Chorowski) and the cumulative one
    (Tacotron 2, Shen et al. 2018), projected by `U`. This lets the layer know where it
    attended before and move forward, which content-only scores cannot.

    Weights are `softmax(e)` (sum to 1 over real positions) or, with `smoothing=True`,
    Chorowski's smoothed `sigmoid(e_j) / Σ_k sigmoid(e_k)` (also sums to 1).

    The state is float32 `[batch, S, 2]`: previous and cumulative alignment, zeros at the
    first step (`get_initial_state`). A rank-3 query is stepped through its T positions.

    Args:
        units: int or None. Size of `W s`, `V h`, `U f` and `w`; None = the key dim.
        filters: int. Number of location filters.
        kernel_size: int. Width of the location filters (odd keeps them centred).
        smoothing: bool. Chorowski's sigmoid normalisation instead of softmax.
        kernel_initializer: initializer of the projections and the filters.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention`; `state` is the float32 `[batch, S, 2]` of the previous step
        (None = first step), `projected_keys` is `V h`.

    Returns:
        `(context, weights, next_state)` as `BaseAttention`.

    Example:

    ```python
    layer = LocationSensitiveAttention(units=16, filters=4, kernel_size=3)
    memory = np.ones((2, 5, 8))
    state = layer.get_initial_state(memory)
    context, weights, state = layer(np.ones((2, 8)), memory, state=state)
    ```
    """

    uses_state = True

    def __init__(self, units=None, filters=32, kernel_size=31, smoothing=False,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(units=units, kernel_initializer=kernel_initializer, **kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.smoothing = smoothing

    def build_attention(self, query_shape, keys_shape, values_shape):
        units = self._units(keys_shape)
        self.query_projection = self._projection(units, "query_projection")
        self.query_projection.build(query_shape)
        self.location_conv = keras.layers.Conv1D(
            self.filters, self.kernel_size, padding="same", use_bias=False,
            name="location_conv", dtype=self.dtype_policy,
            kernel_initializer=clone_initializer(self.kernel_initializer),
        )
        self.location_conv.build((values_shape[0], values_shape[1], 2))
        self.location_projection = self._projection(units, "location_projection")
        self.location_projection.build((values_shape[0], values_shape[1], self.filters))
        self.build_score_vector(units)
        self.score_bias = self.add_weight(name="score_bias", shape=(units,),
                                          initializer="zeros")

    def get_initial_state(self, values, mask=None):
        return ops.zeros((ops.shape(values)[0], ops.shape(values)[1], 2), dtype="float32")

    def attend(self, query, keys, values, mask, state, training=None):
        processed = self.query_projection(query)  # W s_i: [B, T, U]
        return step_through(lambda q_t, s: self.step(q_t, keys, values, mask, s), processed,
                            values, ops.cast(state, "float32"))

    def step(self, processed_query, keys, values, mask, state):
        """One decoder step; `processed_query` is `W s_i`, `[B, U]`; `keys` is `V h`."""
        location = self.location_projection(
            self.location_conv(ops.cast(state, self.compute_dtype)))  # [B, S, U]
        hidden = (processed_query[:, None, :] + keys + location
                  + ops.cast(self.score_bias, keys.dtype))
        energy = ops.cast(vector_scores(ops.tanh(hidden), self.score_vector), "float32")
        if self.smoothing:
            gate = ops.sigmoid(energy)
            if mask is not None:
                gate = ops.where(ops.cast(mask, "bool"), gate, ops.zeros_like(gate))
            weights = gate / ops.maximum(ops.sum(gate, axis=-1, keepdims=True), 1e-9)
        else:
            weights = masked_softmax(energy, mask)  # [B, S] float32
        context = weighted_context(weights[:, None, :], values)[:, 0, :]
        next_state = ops.stack([weights, state[..., 1] + weights], axis=-1)
        return context, ops.cast(weights, values.dtype), next_state
