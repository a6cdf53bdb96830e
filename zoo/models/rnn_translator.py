"""Recurrent encoder-decoder translator with a pluggable attention layer."""

import keras

from zoo.layers import AttentionDecoder, RecurrentEncoder
from zoo.models.translator_base import Translator


@keras.saving.register_keras_serializable(package="zoo")
class RNNTranslator(Translator):
    """Bi-LSTM encoder + LSTM decoder with attention and input feeding.

    Args:
        vocab_size: int, size of the shared subword vocabulary.
        embedding_dim: int, source and target embedding size.
        encoder_units: int, LSTM units per direction in the encoder.
        encoder_layers: int, encoder (and decoder) depth.
        bidirectional: bool, bidirectional encoder.
        decoder_units: int, decoder LSTM units (= encoder state size).
        dropout: float.
        attention: str or None, a registered attention name (None: no-attention baseline).
        attention_options: dict, keyword arguments of the attention layer.
        init_scale: float, draw every weight from U(-init_scale, init_scale) when the model is
            built, as Luong et al. (2015) and the PyTorch anchor do; 0 keeps the Keras
            initializers (per-step comparison on identical batches:
            benchmarks/per_step_diagnosis.py).
        max_length_ratio: float, decoding stops after `min(ratio * S + 10,
            max_decode_steps)` tokens.
        tokenizer: optional base64 SentencePiece model (see `SubwordTokenizer`), carried in
            the config so a `.keras` file is a complete translator.
        decoding, beam_width, length_penalty, coverage_penalty, n_best: decoding defaults
            (see `Translator`).
        max_source_tokens, max_decode_steps: what one source may cost (see `Translator`).

    Call arguments:
        inputs: dict with `source_ids` int `[batch, S]` and `target_in` int `[batch, T]`.

    Returns:
        logits `[batch, T, vocab]` (teacher forcing).

    Example:

    ```python
    model = zoo.build("luong_translator", vocab_size=100, embedding_dim=8, ...)
    model.translate(["Ein Mann fährt Fahrrad."])
    model.beam_decode(model.encode_texts(["Ein Mann fährt Fahrrad."]), beam_width=5)
    ```
    """

    config_fields = ("vocab_size", "embedding_dim", "encoder_units", "encoder_layers",
                     "bidirectional", "decoder_units", "dropout", ("attention", "attention_name"),
                     "attention_options", "init_scale")

    def __init__(self, vocab_size=8000, embedding_dim=256, encoder_units=256, encoder_layers=2,
                 bidirectional=True, decoder_units=512, dropout=0.2,
                 attention="luong_general", attention_options=None, init_scale=0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.encoder_units = encoder_units
        self.encoder_layers = encoder_layers
        self.bidirectional = bidirectional
        self.decoder_units = decoder_units
        self.dropout = dropout
        self.attention_name = attention
        self.attention_options = dict(attention_options or {})
        self.init_scale = init_scale
        self.encoder = RecurrentEncoder(vocab_size, embedding_dim, encoder_units, encoder_layers,
                                        bidirectional, dropout, name="encoder")
        if self.encoder.output_dim != decoder_units:
            raise ValueError(
                f"decoder_units ({decoder_units}) must equal the encoder state size "
                f"(encoder_units × directions = {self.encoder.output_dim})")
        self.decoder = AttentionDecoder(vocab_size, embedding_dim, decoder_units, encoder_layers,
                                        attention, self.attention_options, dropout,
                                        name="decoder")

    @property
    def has_attention(self):
        return self.attention_name is not None

    def build(self, input_shape=None):
        self.encoder.build((None, None))
        self.decoder.build((None, None), (None, None, self.encoder.output_dim))
        if self.init_scale:
            # Draws from Keras's global seed (keras.utils.set_random_seed): reproducible runs.
            for weight in self.weights:
                weight.assign(keras.random.uniform(weight.shape, -self.init_scale,
                                                   self.init_scale, dtype=weight.dtype))

    def call(self, inputs, training=None):
        memory, mask, states = self.encoder(inputs["source_ids"], training=training)
        logits, _ = self.decoder(inputs["target_in"], memory, mask, states, training=training)
        return logits

    def teacher_forced_attention(self, source_ids, target_in):
        """Attention weights `[batch, T, S]` of the reference translation."""
        memory, mask, states = self.encoder(source_ids, training=False)
        _, alignments = self.decoder(target_in, memory, mask, states, training=False)
        return alignments

    # -- decoding hooks (see Translator.search) -------------------------------------------------
    def prepare_decoding(self, source_ids, max_length):
        memory, mask, states = self.encoder(source_ids, training=False)
        projected_keys = self.decoder.prepare_memory(memory)
        state = self.decoder.initial_state(memory, mask, states)
        return (memory, projected_keys), mask, state

    def decoding_step(self, context, mask, tokens, step, state):
        memory, projected_keys = context
        return self.decoder.decoding_step(tokens, state, memory, mask, projected_keys)
