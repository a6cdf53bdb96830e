"""An LSTM cell that `model.quantize("int8")` covers, the way Keras's `Dense` is covered."""

import keras
from keras import ops
from keras.quantizers import abs_max_quantize

from zoo.layers.lstm_loop import QuantizedKernel, lstm_update, project


@keras.saving.register_keras_serializable(package="zoo")
class QuantizableLSTMCell(keras.layers.LSTMCell):
    """`keras.layers.LSTMCell` with int8 post-training quantization.

    `quantize("int8")` (which `model.quantize("int8")` calls on every leaf layer) replaces the
    float kernel and recurrent kernel by int8 values with one float scale per output channel
    (`abs_max`, Keras's `Dense` convention: `float ≈ int8 / scale`); the bias stays float.
    The zoo's decoder loops read the cell's weights through `zoo.layers.lstm_loop.cell_weights`,
    which hands them out as `QuantizedKernel`s: each step then quantizes its inputs per row,
    multiplies int8 by int8 into int32 and rescales, as Keras's int8 `Dense` does. A quantized
    cell's config carries its dtype policy (`int8_from_float32`): a cell made from it builds
    int8 variables. The zoo quantizes at export time and does not save quantized models as
    `.keras` (a decoder makes its cells in `__init__`, with the float policy).

    Args:
        units: int, as `keras.layers.LSTMCell` (and its other keyword arguments).

    Call arguments:
        As `keras.layers.LSTMCell`: `inputs [batch, d]`, `states` `[h, c]`.

    Returns:
        `(h, [h, c])`.

    Example:

    ```python
    cell = QuantizableLSTMCell(8)
    cell.build((None, 4))
    cell.quantize("int8")
    h, (h, c) = cell(np.ones((2, 4)), [np.zeros((2, 8)), np.zeros((2, 8))])
    ```
    """

    def build(self, input_shape):
        if self.quantization_mode is None:
            super().build(input_shape)
        else:
            self.quantized_build(input_shape, self.quantization_mode)

    def quantized_build(self, input_shape, mode, config=None):
        if mode != "int8":
            raise self._quantization_mode_error(mode)
        gates = 4 * self.units
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], gates),
                                      initializer="zeros", dtype="int8", trainable=False)
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel",
                                                shape=(self.units, gates),
                                                initializer="zeros", dtype="int8",
                                                trainable=False)
        self.bias = (self.add_weight(name="bias", shape=(gates,), initializer="zeros")
                     if self.use_bias else None)
        self.kernel_scale = self.add_weight(name="kernel_scale", shape=(gates,),
                                            initializer="ones", trainable=False)
        self.recurrent_kernel_scale = self.add_weight(name="recurrent_kernel_scale",
                                                      shape=(gates,), initializer="ones",
                                                      trainable=False)
        self._is_quantized = True

    def quantize(self, mode=None, type_check=True, config=None):
        if type_check and type(self) is not QuantizableLSTMCell:
            raise self._not_implemented_error(self.quantize)
        if mode != "int8":
            raise self._quantization_mode_error(mode)
        input_shape = (None, self.kernel.shape[0])
        kernel, kernel_scale = abs_max_quantize(self.kernel, axis=0, to_numpy=True)
        recurrent, recurrent_scale = abs_max_quantize(self.recurrent_kernel, axis=0,
                                                      to_numpy=True)
        bias = None if self.bias is None else ops.convert_to_numpy(self.bias)
        # All three rebuilt, so the variables come in the order a quantized cell builds them
        # in when a `.keras` file loads (kernel, recurrent kernel, bias, scales).
        del self.kernel, self.recurrent_kernel
        if self.bias is not None:
            del self.bias
        self.quantized_build(input_shape, mode)
        self.kernel.assign(kernel)
        self.recurrent_kernel.assign(recurrent)
        if bias is not None:
            self.bias.assign(bias)
        self.kernel_scale.assign(ops.squeeze(kernel_scale, 0))
        self.recurrent_kernel_scale.assign(ops.squeeze(recurrent_scale, 0))
        self.dtype_policy = keras.dtype_policies.get(f"{mode}_from_{self.dtype_policy.name}")

    def _int8_call(self, inputs, states, training=False):
        h, c = states
        z = (project(inputs, QuantizedKernel(self.kernel, self.kernel_scale))
             + project(h, QuantizedKernel(self.recurrent_kernel, self.recurrent_kernel_scale)))
        if self.bias is not None:
            z = z + ops.cast(self.bias, z.dtype)
        h, c = lstm_update(z, c)
        return h, [h, c]
