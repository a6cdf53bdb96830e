"""Recurrent encoder-decoder translator with a pluggable attention layer."""

import keras
import tensorflow as tf
from keras import ops

from zoo.layers import AttentionDecoder, RecurrentEncoder
from zoo.text import EOS_ID, PAD_ID, SubwordTokenizer


@keras.saving.register_keras_serializable(package="zoo")
class RNNTranslator(keras.Model):
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
        max_length_ratio: float, greedy decoding stops after `ratio * S + 10` tokens.
        tokenizer: optional base64 SentencePiece model (see `SubwordTokenizer`), carried in
            the config so a `.keras` file is a complete translator.

    Call arguments:
        inputs: dict with `source_ids` int `[batch, S]` and `target_in` int `[batch, T]`.

    Returns:
        logits `[batch, T, vocab]` (teacher forcing).

    Example:
    >>> model = zoo.build("luong_translator", vocab_size=100, embedding_dim=8, ...)
    >>> model.translate(["Ein Mann fährt Fahrrad."])
    """

    def __init__(self, vocab_size=8000, embedding_dim=256, encoder_units=256, encoder_layers=2,
                 bidirectional=True, decoder_units=512, dropout=0.2,
                 attention="luong_general", attention_options=None, max_length_ratio=1.5,
                 tokenizer=None, **kwargs):
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
        self.max_length_ratio = max_length_ratio
        self.tokenizer_b64 = tokenizer
        self.tokenizer = SubwordTokenizer.from_base64(tokenizer) if tokenizer else None
        self.encoder = RecurrentEncoder(vocab_size, embedding_dim, encoder_units, encoder_layers,
                                        bidirectional, dropout, name="encoder")
        if self.encoder.output_dim != decoder_units:
            raise ValueError(
                f"decoder_units ({decoder_units}) must equal the encoder state size "
                f"(encoder_units × directions = {self.encoder.output_dim})")
        self.decoder = AttentionDecoder(vocab_size, embedding_dim, decoder_units, encoder_layers,
                                        attention, self.attention_options, dropout,
                                        name="decoder")

    def build(self, input_shape=None):
        self.encoder.build((None, None))
        self.decoder.build((None, None), (None, None, self.encoder.output_dim))

    def set_tokenizer(self, tokenizer):
        self.tokenizer = tokenizer
        self.tokenizer_b64 = tokenizer.to_base64()

    def call(self, inputs, training=None):
        memory, mask, states = self.encoder(inputs["source_ids"], training=training)
        logits, _ = self.decoder(inputs["target_in"], memory, mask, states, training=training)
        return logits

    def teacher_forced_attention(self, source_ids, target_in):
        """Attention weights `[batch, T, S]` of the reference translation."""
        memory, mask, states = self.encoder(source_ids, training=False)
        _, alignments = self.decoder(target_in, memory, mask, states, training=False)
        return alignments

    def greedy_decode(self, source_ids):
        """ids `[batch, S]` → dict of `ids`, `attention`, `lengths` (XLA-compilable)."""
        memory, mask, states = self.encoder(source_ids, training=False)
        source_length = ops.shape(source_ids)[1]
        max_length = ops.cast(ops.cast(source_length, "float32") * self.max_length_ratio,
                              "int32") + 10
        ids, alignments, lengths = self.decoder.greedy(memory, mask, states, max_length)
        return {"ids": ids, "attention": alignments, "lengths": lengths}

    # -- raw strings in, raw strings out ------------------------------------------------------
    def encode_texts(self, texts, pad_to_multiple=8):
        """Tokenize raw strings into 0-padded ids `[batch, S]` (S a multiple of 8, EOS-ended)."""
        self._require_tokenizer()
        ragged = self.tokenizer.tokenize(texts)
        eos = tf.fill([ragged.nrows(), 1], EOS_ID)
        ragged = tf.concat([ragged, tf.RaggedTensor.from_tensor(eos)], axis=1)
        ids = ragged.to_tensor(default_value=PAD_ID)
        length = tf.shape(ids)[1]
        padded = (length + pad_to_multiple - 1) // pad_to_multiple * pad_to_multiple
        return tf.pad(ids, [[0, 0], [0, padded - length]])

    def decode_ids(self, ids):
        """Output ids (EOS-terminated, 0-padded) → detokenized strings."""
        self._require_tokenizer()
        ids = tf.where(tf.equal(ids, EOS_ID), tf.zeros_like(ids), ids)
        return self.tokenizer.detokenize(ids)

    def translate(self, texts, return_attention=False):
        """Greedy-translate a list of raw strings (eager convenience; export for serving)."""
        ids = self.encode_texts(tf.constant(list(texts)))
        if getattr(self, "_jit_greedy", None) is None:
            self._jit_greedy = tf.function(self.greedy_decode, jit_compile=True)
        result = self._jit_greedy(ids)
        translations = [t.decode("utf-8") for t in self.decode_ids(result["ids"]).numpy()]
        if return_attention:
            return translations, result, ids
        return translations

    def _require_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer: train it (zoo train) or call "
                             "model.set_tokenizer(SubwordTokenizer...) first")

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
            "encoder_units": self.encoder_units, "encoder_layers": self.encoder_layers,
            "bidirectional": self.bidirectional, "decoder_units": self.decoder_units,
            "dropout": self.dropout, "attention": self.attention_name,
            "attention_options": self.attention_options,
            "max_length_ratio": self.max_length_ratio, "tokenizer": self.tokenizer_b64,
        })
        return config

