"""Hard (one-position) attention: Gumbel-softmax straight-through in training."""

import keras
from keras import ops

from zoo.attention.base_attention import BaseAttention, masked_softmax
from zoo.attention.registry import register


def one_hot_argmax(scores, mask):
    """One-hot of the best real position, float32 `[..., S]`; zeros for a fully masked row."""
    if mask is None:
        mask = ops.ones_like(scores, dtype="bool")
    mask = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(scores))
    best = ops.argmax(ops.where(mask, scores, ops.full_like(scores, -1e9)), axis=-1)
    positions = ops.arange(ops.shape(scores)[-1])
    hot = ops.cast(positions == ops.cast(best[..., None], positions.dtype), "float32")
    return hot * ops.cast(ops.any(mask, axis=-1, keepdims=True), "float32")


@register("hard")
@keras.saving.register_keras_serializable(package="zoo")
class HardAttention(BaseAttention):
    """Hard attention: the context is a single source position.

    Scores are Luong's "general" `h_tᵀ W_a h_s`. Choosing one position is not
    differentiable, so:

    * training: Gumbel-softmax (Jang et al. 2017; Maddison et al. 2017),
      `y = softmax((scores + g) / τ)`, `g ~ Gumbel(0, 1)`; with `straight_through=True` the
      forward pass uses the one-hot `argmax(y)` and the backward pass the gradient of `y`.
    * inference: `argmax(scores)` (deterministic), or with `sample_at_inference=True` a
      sample from `softmax(scores)` (Gumbel-max), as in Xu et al. 2015's stochastic hard
      attention.

    The weights are one-hot over the real positions (sum to 1), or the soft Gumbel-softmax
    distribution when training with `straight_through=False`; zeros for a fully masked row.
    Noise comes from a `keras.random.SeedGenerator`, so it is reproducible with `seed` and
    works inside a compiled loop.

    Args:
        temperature: float. Gumbel-softmax temperature τ.
        straight_through: bool. One-hot forward / soft backward in training (else the soft
            Gumbel-softmax weights are used as they are).
        sample_at_inference: bool. Sample the position at inference instead of argmax.
        use_bias: bool. Bias on the query projection `W_a`.
        seed: int or None. Seed of the noise.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        As `BaseAttention` (no `state`); `training`: Gumbel-softmax if True, argmax /
        sampling otherwise.

    Returns:
        `(context, weights)` as `BaseAttention`.

    Example:

    ```python
    layer = HardAttention(temperature=0.5, seed=0)
    context, weights = layer(np.ones((2, 8)), np.ones((2, 5, 8)), training=True)
    ```
    """

    def __init__(self, temperature=1.0, straight_through=True, sample_at_inference=False,
                 use_bias=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build_attention(self, query_shape, keys_shape, values_shape):
        self.query_projection = keras.layers.Dense(
            keys_shape[-1], use_bias=self.use_bias, name="query_projection",
            dtype=self.dtype_policy,
        )
        self.query_projection.build(query_shape)

    def gumbel_noise(self, shape):
        uniform = keras.random.uniform(shape, minval=1e-10, maxval=1.0, dtype="float32",
                                       seed=self.seed_generator)
        return -ops.log(-ops.log(uniform))

    def compute_scores(self, query, keys):
        scores = ops.matmul(self.query_projection(query), ops.transpose(keys, (0, 2, 1)))
        return ops.cast(scores, "float32")

    def compute_weights(self, scores, mask, training=None):
        """Gumbel-softmax (straight-through) in training, one-hot argmax otherwise."""
        if training:
            soft = masked_softmax((scores + self.gumbel_noise(ops.shape(scores)))
                                  / self.temperature, mask)
            if self.straight_through:
                return one_hot_argmax(soft, mask) + (soft - ops.stop_gradient(soft))
            return soft
        if self.sample_at_inference:
            scores = scores + self.gumbel_noise(ops.shape(scores))
        return one_hot_argmax(scores, mask)
