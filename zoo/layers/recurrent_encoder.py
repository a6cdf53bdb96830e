"""Embedding + stacked (bidirectional) LSTM encoder."""

import keras
from keras import ops

from zoo.attention.base_attention import ArgumentConfig
from zoo.layers.lstm_loop import run_lstm
from zoo.text import PAD_ID


@keras.saving.register_keras_serializable(package="zoo")
class RecurrentEncoder(ArgumentConfig, keras.layers.Layer):
    """Embeds source ids and runs a stack of (bidirectional) LSTMs over them.

    Args:
        vocab_size: int, size of the source vocabulary (id 0 is padding).
        embedding_dim: int, embedding size.
        units: int, LSTM units per direction.
        num_layers: int, stacked LSTM layers.
        bidirectional: bool, run each layer in both directions and concatenate.
        dropout: float, dropout on embeddings and between layers.

    Call arguments:
        ids: int `[batch, S]`, 0-padded at the end of each row.
        training: bool.

    Returns:
        `(memory, mask, states)`: `memory [batch, S, units * directions]` (0 on padding),
        the boolean padding `mask [batch, S]`, and per layer a `(h, c)` pair
        `[batch, units * directions]` (the forward and backward final states joined), ready
        to initialise a decoder layer.

    Example:

    ```python
    encoder = RecurrentEncoder(vocab_size=100, embedding_dim=8, units=4)
    memory, mask, states = encoder(np.array([[5, 6, 0]]))
    ```
    """

    def __init__(self, vocab_size, embedding_dim=256, units=256, num_layers=2,
                 bidirectional=True, dropout=0.2, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.recurrent_layers = []
        for index in range(num_layers):
            lstm = keras.layers.LSTM(units, return_sequences=True, return_state=True,
                                     name=f"lstm_{index}")
            if bidirectional:
                lstm = keras.layers.Bidirectional(lstm, name=f"bilstm_{index}")
            self.recurrent_layers.append(lstm)

    @property
    def output_dim(self):
        return self.units * (2 if self.bidirectional else 1)

    def build(self, ids_shape):
        self.embedding.build(ids_shape)
        shape = (ids_shape[0], ids_shape[1], self.embedding_dim)
        for layer in self.recurrent_layers:
            layer.build(shape)
            shape = (ids_shape[0], ids_shape[1], self.output_dim)

    def call(self, ids, training=None):
        mask = ops.not_equal(ids, PAD_ID)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)  # ids are right-padded
        outputs = self.dropout_layer(self.embedding(ids), training=training)
        states = []
        for index, layer in enumerate(self.recurrent_layers):
            if index > 0:
                outputs = self.dropout_layer(outputs, training=training)
            # The Keras layers hold the weights; run_lstm runs them with the input projection
            # and the mixed-precision casts hoisted out of the time loop (same outputs on
            # real positions, 0 on padding, same final states as calling the layers).
            if self.bidirectional:
                forward, (fw_h, fw_c) = run_lstm(outputs, layer.forward_layer.cell, lengths)
                backward, (bw_h, bw_c) = run_lstm(outputs, layer.backward_layer.cell, lengths,
                                                  reverse=True)
                outputs = ops.concatenate([forward, backward], axis=-1)
                states.append((ops.concatenate([fw_h, bw_h], -1),
                               ops.concatenate([fw_c, bw_c], -1)))
            else:
                outputs, state = run_lstm(outputs, layer.cell, lengths)
                states.append(state)
        return outputs, mask, states

    def compute_mask(self, ids, mask=None):
        return None
