"""Stacked LSTM decoder with attention and input feeding (Luong et al. 2015)."""

import keras
import tensorflow as tf
from keras import ops

from zoo import attention as attention_lib
from zoo.attention.base_attention import ArgumentConfig
from zoo.layers.lstm_loop import (
    QuantizedKernel,
    cell_weights,
    lstm_update,
    project,
    split_rows,
    time_steps,
)
from zoo.layers.quantizable_lstm_cell import QuantizableLSTMCell


@keras.saving.register_keras_serializable(package="zoo")
class AttentionDecoder(ArgumentConfig, keras.layers.Layer):
    """LSTM decoder attending over an encoder memory, one step at a time.

    Each step: `h_t = LSTM([y_{t-1}; h̃_{t-1}])` (input feeding), `c_t = attention(h_t, memory)`,
    `h̃_t = tanh(W_c [c_t; h_t])`, `p(y_t) = softmax(W_o h̃_t)`. With `attention=None` the
    decoder is the no-attention baseline (`h̃_t = h_t`, no input feeding): the whole source
    must pass through the encoder's final state.

    Args:
        vocab_size: int, target vocabulary size.
        embedding_dim: int, target embedding size.
        units: int, LSTM units (must equal the encoder's state size).
        num_layers: int, stacked LSTM layers (must equal the encoder's).
        attention: str or None, a name from `zoo.attention.names()`.
        attention_options: dict, keyword arguments for the attention layer.
        dropout: float, dropout on embeddings, between layers and on `h̃_t`.

    Call arguments:
        target_in: int `[batch, T]` (BOS-prefixed targets, teacher forcing).
        memory: `[batch, S, dim]` encoder outputs; `mask`: boolean `[batch, S]`.
        encoder_states: list of `(h, c)` per layer.

    Returns:
        `(logits [batch, T, vocab], attention [batch, T, S])`.
    """

    def __init__(self, vocab_size, embedding_dim=256, units=512, num_layers=2,
                 attention="luong_general", attention_options=None, dropout=0.2, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        self.attention_name = attention
        self.attention_options = dict(attention_options or {})
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.cells = [QuantizableLSTMCell(units, name=f"lstm_cell_{i}")
                      for i in range(num_layers)]
        if attention:
            self.attention = attention_lib.get(attention, **self.attention_options,
                                               name="attention")
            self.attentional_projection = keras.layers.Dense(
                units, activation="tanh", use_bias=False, name="attentional_projection")
        else:
            self.attention = None
        self.output_projection = keras.layers.Dense(vocab_size, name="output_projection")
        self.seed_generator = keras.random.SeedGenerator(0)

    @property
    def input_feeding(self):
        return self.attention is not None

    def build(self, target_shape, memory_shape=None, *args, **kwargs):
        batch = target_shape[0]
        self.embedding.build(target_shape)
        input_dim = self.embedding_dim + (self.units if self.input_feeding else 0)
        for cell in self.cells:
            cell.build((batch, input_dim))
            input_dim = self.units
        if self.attention is not None:
            query = (batch, self.units)
            self.attention.build(query, memory_shape)
            self.attentional_projection.build((batch, self.units + memory_shape[-1]))
        self.output_projection.build((batch, self.units))

    # -- one step, shared by teacher forcing, greedy and beam search -------------------------
    def initial_state(self, memory, mask, encoder_states):
        batch = ops.shape(memory)[0]
        state = {"cells": [tuple(s) for s in encoder_states],
                 "feed": ops.zeros((batch, self.units), memory.dtype)}
        if self.attention is not None and self.attention.uses_state:
            state["attention"] = self.attention.get_initial_state(memory, mask)
        return state

    def prepare_memory(self, memory):
        """Loop-invariant work on the memory (e.g. Bahdanau's key projection)."""
        if self.attention is None:
            return memory
        return self.attention.project_keys(memory)

    def loop_weights(self, dtype, stacked=True):
        """Per LSTM layer `(token kernel, step kernels, bias)` in `dtype`, cast once per
        sequence rather than at every step (see `zoo.layers.lstm_loop`).

        Layer 0's token kernel is the embedding part of its kernel: its product with all the
        target embeddings is one matmul before the loop (`project_tokens`). The step kernels
        multiply what the step itself produces (the fed-back `h̃_{t-1}`, a lower layer's
        output, `h_{t-1}`): `stacked`, one `[input; recurrent]` matrix and one matmul per
        layer and step (teacher forcing: concatenated once per batch); otherwise the pair
        `(input kernel, recurrent kernel)` as the cell holds it (a search step, where a
        concatenation per step would copy the weights at every token)."""
        weights = []
        for index, cell in enumerate(self.cells):
            kernel, recurrent_kernel, bias = cell_weights(cell, dtype)
            token_kernel = None
            if index == 0:
                token_kernel, kernel = split_rows(kernel, self.embedding_dim)
            # int8 kernels keep a scale per kernel: never stacked.
            stack = stacked and not isinstance(kernel, QuantizedKernel)
            kernels = ((ops.concatenate([kernel, recurrent_kernel], axis=0),) if stack
                       else (kernel, recurrent_kernel))
            weights.append((token_kernel, kernels, bias))
        return weights

    def project_tokens(self, token_embeddings, weights):
        """Layer 0's input projection of target embeddings `[..., embedding_dim]`."""
        token_kernel, _, bias = weights[0]
        return project(token_embeddings, token_kernel) + bias

    def step(self, token_projection, state, memory, mask, projected_keys, weights,
             training=None, dropout_masks=None):
        """One decoder step → `(h̃_t, attention weights [batch, S], next state)`.

        `token_projection` is `project_tokens` of the fed-back token's embedding and
        `weights` is `loop_weights` (both computed outside the loop)."""
        cell_states = []
        inputs = state["feed"] if self.input_feeding else None
        for index, (_, kernels, bias) in enumerate(weights):
            h, c = state["cells"][index]
            if index > 0 and dropout_masks is not None:
                inputs = inputs * dropout_masks[index - 1]
            if len(kernels) == 1:  # stacked [input; recurrent]
                step_inputs = h if inputs is None else ops.concatenate([inputs, h], axis=-1)
                z = ops.matmul(step_inputs, kernels[0])
            else:
                z = project(h, kernels[1])
                if inputs is not None:
                    z = z + project(inputs, kernels[0])
            z = z + (token_projection if index == 0 else bias)
            inputs, c = lstm_update(z, c)
            cell_states.append((inputs, c))
        next_state = {"cells": cell_states}
        if self.attention is None:
            alignment = ops.zeros(ops.shape(mask), inputs.dtype)
            output = inputs
        else:
            kwargs = {}
            if self.attention.uses_state:
                kwargs["state"] = state["attention"]
            result = self.attention(inputs, memory, mask=mask, projected_keys=projected_keys,
                                    training=training, **kwargs)
            context, alignment = result[0], result[1]
            if self.attention.uses_state:
                next_state["attention"] = result[2]
            output = self.attentional_projection(ops.concatenate([context, inputs], axis=-1))
        if dropout_masks is not None:
            output = output * dropout_masks[-1]
        next_state["feed"] = output
        return output, alignment, next_state

    def _dropout_masks(self, batch, steps, dtype, training):
        """Per-step dropout masks drawn once outside the loop: `[layers, T, batch, units]`."""
        if not training or self.dropout == 0:
            return None
        ones = ops.ones((self.num_layers, steps, batch, self.units), dtype)
        return keras.random.dropout(ones, self.dropout, seed=self.seed_generator)

    # -- teacher forcing ----------------------------------------------------------------------
    def call(self, target_in, memory, mask, encoder_states, training=None):
        batch, steps = ops.shape(target_in)[0], ops.shape(target_in)[1]
        embedded = self.embedding_dropout(self.embedding(target_in), training=training)
        embedded = ops.transpose(embedded, (1, 0, 2))  # time-major for the loop
        masks = self._dropout_masks(batch, steps, embedded.dtype, training)
        weights = self.loop_weights(embedded.dtype)
        # All steps' input projections in one matmul, read per step from a TensorArray.
        token_projections = time_steps(self.project_tokens(embedded, weights))
        projected_keys = self.prepare_memory(memory)
        state = self.initial_state(memory, mask, encoder_states)
        outputs = tf.TensorArray(embedded.dtype, size=steps)
        alignments = tf.TensorArray(embedded.dtype, size=steps)

        def body(t, state, outputs, alignments):
            step_masks = None if masks is None else masks[:, t]
            output, attention, state = self.step(
                token_projections.read(t), state, memory, mask, projected_keys, weights,
                training=training, dropout_masks=step_masks)
            return (t + 1, state, outputs.write(t, output),
                    alignments.write(t, ops.cast(attention, embedded.dtype)))

        _, _, outputs, alignments = tf.while_loop(
            lambda t, *_: t < steps, body, (0, state, outputs, alignments),
            maximum_iterations=steps)  # XLA needs the bound to size gradient accumulators
        outputs = ops.transpose(outputs.stack(), (1, 0, 2))
        alignments = ops.transpose(alignments.stack(), (1, 0, 2))
        logits = self.output_projection(outputs)
        return logits, alignments

    # -- one step of a search (greedy or beam, see zoo.decoding) ------------------------------
    def decoding_step(self, tokens, state, memory, mask, projected_keys):
        """Feed back `tokens` `[N]` → `(logits [N, vocab], attention [N, S], next state)`.

        `memory`, `mask`, `projected_keys` (from `prepare_memory`) and `state` (from
        `initial_state`) have N rows (a beam search tiles them per hypothesis).
        """
        embedded = self.embedding(tokens)
        weights = self.loop_weights(embedded.dtype, stacked=False)  # no per-step copies
        output, attention, state = self.step(self.project_tokens(embedded, weights), state,
                                             memory, mask, projected_keys, weights)
        return self.output_projection(output), attention, state

    def compute_mask(self, *args, **kwargs):
        return None

    def get_config(self):
        return {**super().get_config(), "attention": self.attention_name}
