"""Pointer-generator network with coverage (See et al. 2017) for abstractive summarization."""

import keras
import tensorflow as tf
from keras import ops

from zoo.decoding.strategy import NEG_INF
from zoo.layers.pointer_generator_decoder import PointerGeneratorDecoder
from zoo.layers.recurrent_encoder import RecurrentEncoder
from zoo.models.translator_base import Translator
from zoo.text import EOS_ID, PAD_ID


@keras.saving.register_keras_serializable(package="zoo")
class PointerGenerator(Translator):
    """Bi-LSTM encoder + `PointerGeneratorDecoder` (coverage attention, copy switch).

    Training (`call`) returns the *log* of the final mixture `p_gen·P_vocab + (1−p_gen)·copy`:
    already normalised, so any loss that takes logits (log-softmax first) sees the same
    distribution; `SmoothedSequenceLoss` is used unchanged. The coverage loss
    `λ · Σ_t Σ_i min(a_ti, c_ti)`, averaged over real target tokens, is added with `add_loss`.

    Decoding (greedy or beam, `Translator.search`) works on the same mixture; with
    `trigram_blocking` a hypothesis may not repeat a subword trigram it already contains (the
    history is part of the search state, so beam search reorders it with the hypotheses).
    Inputs are lower-cased in the graph when `lowercase` (the vocabulary is learned from
    lower-cased text) and cut to `max_source_length` subwords, as in training.

    Args:
        vocab_size: int, shared subword vocabulary (source and summary).
        embedding_dim: int, the one embedding shared by encoder and decoder.
        encoder_units: int, LSTM units per direction of the one-layer Bi-LSTM encoder.
        decoder_units: int, decoder LSTM units.
        attention_units: int or None, attention MLP size (None = `decoder_units`).
        coverage: bool, coverage vector as an attention feature.
        coverage_loss_weight: float λ (0 = no coverage loss).
        dropout: float, on embeddings and before the output layers.
        max_source_length: int, source subwords kept (EOS comes after them).
        max_summary_length: int, decoding stops after this many tokens.
        lowercase: bool, lower-case input text in the graph.
        trigram_blocking: bool, forbid repeated subword trigrams while decoding.
        source_pad_multiple: int, `encode_texts` pads source lengths to multiples of this (few
            compiled shapes for the XLA decoder).
        **kwargs: `Translator` arguments (tokenizer, decoding, beam_width, ...).

    Call arguments:
        inputs: dict with `source_ids` int `[batch, S]` (EOS-ended, 0-padded) and `target_in`
            int `[batch, T]` (BOS + summary).

    Returns:
        log-probabilities `[batch, T, vocab]` of the final distribution (teacher forcing).

    Example:
    >>> model = zoo.build("summarizer", vocab_size=100, embedding_dim=8, encoder_units=8,
    ...                   decoder_units=8)
    >>> model.summarize(["Please send me the Q3 budget before Friday."])
    """

    task = "summarization"

    def __init__(self, vocab_size=8000, embedding_dim=128, encoder_units=256,
                 decoder_units=256, attention_units=None, coverage=True,
                 coverage_loss_weight=1.0, dropout=0.1, max_source_length=200,
                 max_summary_length=32, lowercase=True, trigram_blocking=True,
                 source_pad_multiple=64, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.encoder_units = encoder_units
        self.decoder_units = decoder_units
        self.attention_units = attention_units
        self.coverage = coverage
        self.coverage_loss_weight = coverage_loss_weight
        self.dropout = dropout
        self.max_source_length = max_source_length
        self.max_summary_length = max_summary_length
        self.lowercase = lowercase
        self.trigram_blocking = trigram_blocking
        self.source_pad_multiple = source_pad_multiple
        self.encoder = RecurrentEncoder(vocab_size, embedding_dim, encoder_units, num_layers=1,
                                        bidirectional=True, dropout=dropout, name="encoder")
        self.decoder = PointerGeneratorDecoder(vocab_size, embedding_dim, decoder_units,
                                               attention_units, coverage, dropout,
                                               name="decoder")
        self.embedding_dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        self.encoder.build((None, None))
        self.decoder.build((None, None, self.embedding_dim),
                           (None, None, self.encoder.output_dim))

    def embed_targets(self, ids, training=None):
        # One embedding for both sides: the vocabulary is shared, and copying works best
        # when a source subword and the same generated subword have one vector.
        return self.embedding_dropout(self.encoder.embedding(ids), training=training)

    def teacher_forced(self, source_ids, target_in, training=None):
        """The decoder's dict (`log_probs`, `attention`, `p_gen`, `coverage_loss`) for the
        given summary (BOS-prefixed `target_in`)."""
        memory, mask, states = self.encoder(source_ids, training=training)
        return self.decoder(self.embed_targets(target_in, training), memory, mask,
                            ops.cast(source_ids, "int32"), states[-1], training=training)

    def call(self, inputs, training=None):
        outputs = self.teacher_forced(inputs["source_ids"], inputs["target_in"], training)
        if self.coverage_loss_weight:
            real = ops.cast(ops.not_equal(inputs["target_in"], PAD_ID), "float32")
            per_token = ops.sum(outputs["coverage_loss"] * real) / ops.maximum(ops.sum(real), 1.0)
            self.add_loss(self.coverage_loss_weight * per_token)
        return outputs["log_probs"]

    # -- decoding hooks (see Translator.search) -------------------------------------------------
    def max_decoding_length(self, source_ids):
        return ops.minimum(super().max_decoding_length(source_ids), self.max_summary_length)

    def prepare_decoding(self, source_ids, max_length):
        memory, mask, states = self.encoder(source_ids, training=False)
        state = self.decoder.initial_state(memory, states[-1])
        # Tokens fed so far (BOS first), for trigram blocking; one spare slot per end.
        state["history"] = tf.zeros([tf.shape(source_ids)[0], max_length + 2], tf.int32)
        context = (memory, self.decoder.prepare_memory(memory), source_ids)
        return context, mask, state

    def decoding_step(self, context, mask, tokens, step, state):
        memory, projected_memory, source_ids = context
        state = dict(state)
        history = state.pop("history")
        log_probs, weights, _, state = self.decoder.decoding_step(
            self.encoder.embedding(tokens), state, memory, projected_memory, mask, source_ids)
        hot = tf.equal(tf.range(tf.shape(history)[1]), step)[None, :]
        history = tf.where(hot, tokens[:, None], history)
        if self.trigram_blocking:
            log_probs = tf.where(blocked_trigrams(history, step, self.vocab_size),
                                 tf.constant(NEG_INF, log_probs.dtype), log_probs)
        state["history"] = history
        return log_probs, weights, state

    # -- raw text -------------------------------------------------------------------------------
    def encode_texts(self, texts, pad_to_multiple=None):
        """Lower-case (if `lowercase`), tokenize, keep `max_source_length` subwords, add EOS,
        pad to a multiple of `source_pad_multiple` → ids `[batch, S]`."""
        self._require_tokenizer()
        texts = tf.convert_to_tensor(texts)
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        ragged = self.tokenizer.tokenize(texts)[:, : self.max_source_length]
        eos = tf.fill([ragged.nrows(), 1], EOS_ID)
        ids = tf.concat([ragged, tf.RaggedTensor.from_tensor(eos)], axis=1).to_tensor(PAD_ID)
        multiple = pad_to_multiple or self.source_pad_multiple
        length = tf.shape(ids)[1]
        return tf.pad(ids, [[0, 0], [0, (length + multiple - 1) // multiple * multiple - length]])

    def summarize(self, texts, return_attention=False):
        """Summaries of raw strings with the configured decoding (see `Translator.translate`)."""
        return self.translate(texts, return_attention=return_attention)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
            "encoder_units": self.encoder_units, "decoder_units": self.decoder_units,
            "attention_units": self.attention_units, "coverage": self.coverage,
            "coverage_loss_weight": self.coverage_loss_weight, "dropout": self.dropout,
            "max_source_length": self.max_source_length,
            "max_summary_length": self.max_summary_length, "lowercase": self.lowercase,
            "trigram_blocking": self.trigram_blocking,
            "source_pad_multiple": self.source_pad_multiple,
        })
        return config


def blocked_trigrams(history, step, vocab_size):
    """bool `[N, vocab]`: the tokens that would repeat a trigram of `history`.

    `history` int `[N, L]` holds the fed tokens, `history[:, step]` the newest. Token `w` is
    blocked when `(history[step-1], history[step], w)` already occurs as
    `(history[i], history[i+1], history[i+2])` with `i + 2 <= step`.
    """
    last = tf.gather(history, step, axis=1)
    before = tf.gather(history, tf.maximum(step - 1, 0), axis=1)
    first, second, third = history[:, :-2], history[:, 1:-1], history[:, 2:]
    position = tf.range(tf.shape(third)[1])
    match = ((position[None, :] + 2 <= step) & (step >= 2)
             & tf.equal(first, before[:, None]) & tf.equal(second, last[:, None]))
    rows = tf.shape(history)[0]
    segments = tf.range(rows)[:, None] * vocab_size + third
    hits = tf.math.unsorted_segment_sum(tf.reshape(tf.cast(match, tf.float32), [-1]),
                                        tf.reshape(segments, [-1]), rows * vocab_size)
    return tf.reshape(hits, [rows, vocab_size]) > 0
