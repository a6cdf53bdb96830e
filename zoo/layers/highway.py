"""Highway network (Srivastava et al. 2015), as BiDAF applies it to its embeddings."""

import keras
from keras import ops

from zoo.attention.base_attention import ArgumentConfig


@keras.saving.register_keras_serializable(package="zoo")
class Highway(ArgumentConfig, keras.layers.Layer):
    """`y = g ∘ relu(W_h x + b_h) + (1 − g) ∘ x`, `g = σ(W_g x + b_g)`, stacked `num_layers`
    times (Srivastava et al. 2015, arXiv:1505.00387). The gate bias starts at −1 so each layer
    begins close to the identity (the paper's recommendation for deep stacks).

    Args:
        num_layers: int, stacked highway layers (0: the identity).
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float `[..., dim]`.

    Returns:
        float `[..., dim]`.

    Example:

    ```python
    Highway(num_layers=2)(np.ones((2, 5, 8))).shape   # (2, 5, 8)
    ```
    """

    def __init__(self, num_layers=2, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        self.transforms = []

    def build(self, input_shape):
        dim = input_shape[-1]
        self.transforms = []
        for index in range(self.num_layers):
            # Transform and gate in one kernel: one matmul per layer.
            dense = keras.layers.Dense(
                2 * dim, name=f"highway_{index}",
                bias_initializer=keras.initializers.Constant([0.0] * dim + [-1.0] * dim))
            dense.build(input_shape)
            self.transforms.append(dense)

    def call(self, inputs):
        outputs = inputs
        for dense in self.transforms:
            transform, gate = ops.split(dense(outputs), 2, axis=-1)
            gate = ops.sigmoid(gate)
            outputs = gate * ops.relu(transform) + (1.0 - gate) * outputs
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape
