"""LSTM arithmetic for the zoo's recurrent layers, with the loop-invariant work hoisted.

A `keras.layers.LSTM` (or an `LSTMCell` called in a `tf.while_loop`) on CPU multiplies the
input by its kernel at every time step and, under mixed precision, casts its float32 weights
to the compute dtype at every step (and the gradient back). The profile of a translator's
training step (`benchmarks/profile_train_step.py`) put those casts at a tenth of the step. Here
the weights are cast once per sequence and the input projection of all time steps is one
large matmul before the loop, as PyTorch's fused LSTM and cuDNN do; the loop keeps only
`h_{t-1} · U`. The weights stay those of the Keras cells, so saved models load unchanged.
"""

import tensorflow as tf
from keras import ops
from keras.quantizers import abs_max_quantize


def time_steps(tensor):
    """A time-major tensor `[T, ...]` as a `tf.TensorArray` to `read(t)` inside a loop.

    Why not `tensor[t]`: the gradient of a slice is a zero tensor of the whole `[T, ...]`
    shape with one step filled in, summed over the T steps — O(T²) memory traffic that the
    profile put at a fifth of a translator's training step. A TensorArray's gradient writes
    each step's gradient into its own slot."""
    return tf.TensorArray(tensor.dtype, size=ops.shape(tensor)[0]).unstack(tensor)


class QuantizedKernel:
    """An int8 kernel `[in, out]` with its float scale per output channel (`float ≈ values /
    scale`, Keras's convention), as a `QuantizableLSTMCell` holds it after `quantize("int8")`.
    """

    def __init__(self, values, scale):
        self.values = values
        self.scale = scale

    def rows(self, start=None, stop=None):
        """The kernel of input rows `[start:stop]` (the same per-output scales)."""
        return QuantizedKernel(self.values[start:stop], self.scale)


def project(inputs, kernel):
    """`inputs [..., in] · kernel`, for a float kernel or a `QuantizedKernel`: then the inputs
    are quantized per row on the fly (abs-max to int8), multiplied int8 × int8 into int32 and
    rescaled, as Keras's int8 `Dense` does."""
    if not isinstance(kernel, QuantizedKernel):
        return ops.matmul(inputs, kernel)
    quantized, inputs_scale = abs_max_quantize(inputs, axis=-1)
    product = ops.matmul(quantized, kernel.values)
    return ops.cast(product, inputs.dtype) / (inputs_scale * ops.cast(kernel.scale,
                                                                       inputs.dtype))


def split_rows(kernel, row):
    """`(kernel[:row], kernel[row:])` of a float kernel or a `QuantizedKernel`."""
    if isinstance(kernel, QuantizedKernel):
        return kernel.rows(stop=row), kernel.rows(start=row)
    return kernel[:row], kernel[row:]


def cell_weights(cell, dtype):
    """A Keras `LSTMCell`'s `(kernel, recurrent_kernel, bias)`, each cast once to `dtype`; an
    int8-quantized cell's kernels as `QuantizedKernel`s (the bias stays float)."""
    bias = ops.cast(cell.bias, dtype)
    if getattr(cell, "quantization_mode", None) == "int8":
        return (QuantizedKernel(cell.kernel, cell.kernel_scale),
                QuantizedKernel(cell.recurrent_kernel, cell.recurrent_kernel_scale), bias)
    return ops.cast(cell.kernel, dtype), ops.cast(cell.recurrent_kernel, dtype), bias


def lstm_update(z, c):
    """Keras `LSTMCell` gates (order i, f, c, o; sigmoid and tanh) from the pre-activation
    `z` `[batch, 4 · units]` and the previous carry `c` → `(h, c)`."""
    i, f, g, o = ops.split(z, 4, axis=-1)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


def run_lstm(inputs, cell, lengths, reverse=False):
    """Run a Keras `LSTMCell`'s weights over right-padded `inputs` `[batch, T, d]`.

    Args:
        inputs: float `[batch, T, d]`, real positions a prefix of each row.
        cell: the built `keras.layers.LSTMCell` holding the weights.
        lengths: int32 `[batch]`, real positions per row.
        reverse: run each row backwards over its real positions (the backward half of a
            bidirectional LSTM); outputs come back in the original order.

    Returns:
        `(outputs [batch, T, units], (h, c))`: outputs are 0 on padding (as Keras's
        `Bidirectional` gives), `(h, c)` is the state after each row's last real step (for
        `reverse`, after its first token), as `keras.layers.LSTM(return_state=True)` gives
        with the padding mask.
    """
    dtype = inputs.dtype
    kernel, recurrent_kernel, bias = cell_weights(cell, dtype)
    if reverse:
        inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
    batch, steps = ops.shape(inputs)[0], ops.shape(inputs)[1]
    projected = ops.einsum("btd,dg->tbg", inputs, kernel) + bias  # all steps, one matmul
    projected = time_steps(projected)
    lengths = ops.cast(lengths, "int32")
    zeros = ops.zeros((batch, cell.units), dtype)
    outputs = tf.TensorArray(dtype, size=steps)

    def body(t, h, c, outputs):
        h_next, c_next = lstm_update(projected.read(t) + ops.matmul(h, recurrent_kernel), c)
        real = ops.expand_dims(t < lengths, -1)  # past a row's end its state is carried
        h, c = ops.where(real, h_next, h), ops.where(real, c_next, c)
        return t + 1, h, c, outputs.write(t, h_next * ops.cast(real, dtype))

    _, h, c, outputs = tf.while_loop(lambda t, *_: t < steps, body, (0, zeros, zeros, outputs),
                                     maximum_iterations=steps)
    outputs = ops.transpose(outputs.stack(), (1, 0, 2))
    if reverse:
        outputs = tf.reverse_sequence(outputs, lengths, seq_axis=1, batch_axis=0)
    return outputs, (h, c)
