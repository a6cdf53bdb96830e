"""Cosine-similarity attention with a learned temperature."""

import math

import keras
from keras import ops

from zoo.attention.base_attention import BaseAttention
from zoo.attention.registry import register


def l2_normalize(x, epsilon=1e-12):
    """`x / ‖x‖` over the last axis, computed in float32 (zero vectors stay zero)."""
    x32 = ops.cast(x, "float32")
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x32), axis=-1, keepdims=True), epsilon))
    return ops.cast(x32 / norm, x.dtype)


@register("cosine")
@keras.saving.register_keras_serializable(package="zoo")
class CosineAttention(BaseAttention):
    """Cosine attention: `score(h_t, h_s) = cos(h_t, h_s) / τ` with a learned temperature τ.

    Scores are bounded in `[-1/τ, 1/τ]`, so the sharpness of the distribution is a single
    learned number instead of a by-product of the hidden-state norms (as in Swin Transformer
    V2's scaled cosine attention). τ is learned in log space, starts at `temperature` and is
    kept at or above `min_temperature`. `project_keys` l2-normalises the keys once.

    Args:
        temperature: float. Initial τ (0.1 = scores in [-10, 10]).
        min_temperature: float. Lower bound of τ (caps the logits at `1 / min_temperature`).
        project_query: bool. Learn a linear map of the query to the key dim before the
            cosine (needed when query_dim != key_dim).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention` (no `state`); `projected_keys` are the unit-norm keys.

    Returns:
        `(context, weights)` as `BaseAttention`; the weights over the real positions sum to 1.

    Example:

    ```python
    layer = CosineAttention(temperature=0.05)
    context, weights = layer(np.ones((2, 8)), np.ones((2, 5, 8)))
    ```
    """

    def __init__(self, temperature=0.1, min_temperature=0.01, project_query=False, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())

    def compute_projected_keys(self, keys):
        return l2_normalize(keys)

    def build_attention(self, query_shape, keys_shape, values_shape):
        if self.project_query:
            self.query_projection = keras.layers.Dense(
                keys_shape[-1], use_bias=False, name="query_projection", dtype=self.dtype_policy
            )
            self.query_projection.build(query_shape)
        elif query_shape[-1] is not None and query_shape[-1] != keys_shape[-1]:
            raise ValueError(
                f"cosine attention needs query_dim == key_dim, got {query_shape[-1]} and "
                f"{keys_shape[-1]}; pass project_query=True."
            )
        self.log_inverse_temperature = self.add_weight(
            name="log_inverse_temperature", shape=(),
            initializer=keras.initializers.Constant(math.log(1.0 / self.temperature)),
        )

    def inverse_temperature(self):
        """`1 / τ`, float32, capped at `1 / min_temperature`."""
        log_inv = ops.cast(self.log_inverse_temperature, "float32")
        return ops.exp(ops.minimum(log_inv, math.log(1.0 / self.min_temperature)))

    def compute_scores(self, query, keys):  # keys: unit-norm
        if self.project_query:
            query = self.query_projection(query)
        cosine = ops.matmul(l2_normalize(query), ops.transpose(keys, (0, 2, 1)))
        return ops.cast(cosine, "float32") * self.inverse_temperature()
