"""Structured self-attentive pooling (Lin et al. 2017)."""

import keras
from keras import ops

from zoo.attention import masked_softmax
from zoo.attention.base_attention import ArgumentConfig, clone_initializer


def frobenius_penalty(weights):
    """`‖A Aᵀ − I‖²_F` per example of `weights` `A [batch, hops, S]`, averaged over the batch
    (Lin et al. 2017, eq. 8): pushes the hops to attend to different tokens."""
    weights = ops.cast(weights, "float32")
    gram = ops.matmul(weights, ops.transpose(weights, (0, 2, 1)))
    identity = ops.eye(ops.shape(weights)[1], dtype="float32")
    return ops.mean(ops.sum(ops.square(gram - identity), axis=(1, 2)))


@keras.saving.register_keras_serializable(package="zoo")
class StructuredSelfAttention(ArgumentConfig, keras.layers.Layer):
    """Pools a sequence into `hops` weighted sums: `A = softmax(W_s2 tanh(W_s1 Hᵀ))`, `M = A H`.

    Lin et al. 2017, "A Structured Self-attentive Sentence Embedding". Each of the `hops` rows
    of `A` is a distribution over the real (non-padding) tokens; in training, `penalty ·
    ‖A Aᵀ − I‖²_F` is added to the model's loss (`add_loss`) so that the hops differ.

    Args:
        units: int, `d_a`, the hidden size of the scorer (`W_s1` is `[dim, units]`).
        hops: int, `r`, the number of attention distributions.
        penalty: float, coefficient of the Frobenius penalty (0 = none).
        kernel_initializer: initializer of `W_s1` and `W_s2`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        values: `[batch, S, dim]`, e.g. BiLSTM outputs.
        mask: optional boolean `[batch, S]`, True on real tokens; defaults to the Keras mask of
            `values`.
        training: bool; the penalty is added only in training.

    Returns:
        `(pooled, weights)`: `pooled [batch, hops, dim]` and `weights [batch, hops, S]`.
        Padding gets exactly zero weight; a fully masked row gives zeros, never NaN.

    Example:

    ```python
    layer = StructuredSelfAttention(units=16, hops=2, penalty=0.3)
    pooled, weights = layer(np.ones((2, 5, 8)), mask=np.array([[1, 1, 1, 0, 0]] * 2) > 0)
    ```
    """

    def __init__(self, units=128, hops=4, penalty=0.0, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        if units <= 0 or hops <= 0:
            raise ValueError(f"units and hops must be positive, got {units} and {hops}")
        if penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {penalty}")
        self.keep_arguments(locals())
        # The padding mask is consumed: the pooled output has no time axis to mask.
        self.supports_masking = True

    def build(self, values_shape):
        self.w_s1 = self.add_weight(
            name="w_s1", shape=(values_shape[-1], self.units),
            initializer=clone_initializer(self.kernel_initializer))
        self.w_s2 = self.add_weight(
            name="w_s2", shape=(self.units, self.hops),
            initializer=clone_initializer(self.kernel_initializer))

    def call(self, values, mask=None, training=None):
        hidden = ops.tanh(ops.matmul(values, ops.cast(self.w_s1, values.dtype)))
        scores = ops.transpose(ops.matmul(hidden, ops.cast(self.w_s2, values.dtype)), (0, 2, 1))
        if mask is not None:
            mask = ops.expand_dims(ops.cast(mask, "bool"), 1)
        weights = masked_softmax(scores, mask)
        pooled = ops.matmul(weights, values)
        if training and self.penalty:
            self.add_loss(self.penalty * frobenius_penalty(weights))
        return pooled, weights

    def compute_mask(self, values, mask=None):
        return None

    def compute_output_shape(self, values_shape):
        return ((values_shape[0], self.hops, values_shape[-1]),
                (values_shape[0], self.hops, values_shape[1]))
