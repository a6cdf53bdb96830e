"""Pointer-generator network with coverage (See et al. 2017) for abstractive summarization."""

import keras
import tensorflow as tf
from keras import ops

from zoo.decoding.strategy import NEG_INF
from zoo.layers.pointer_generator_decoder import PointerGeneratorDecoder
from zoo.layers.recurrent_encoder import RecurrentEncoder
from zoo.models.ensemble import MemberLossMixin, mean_log_probability
from zoo.models.tokenized_model import pad_width, with_eos
from zoo.models.translator_base import Translator
from zoo.text import PAD_ID


@keras.saving.register_keras_serializable(package="zoo")
class PointerGenerator(MemberLossMixin, Translator):
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
        members: int, pointer-generators in a deep ensemble (Lakshminarayanan et al. 2017; 1 =
            a single model). The members differ only in initialisation and dropout; each is
            trained on its own loss (the mean of theirs is minimised), and every decoding step
            and validation loss uses their mean distribution, the attention their mean.
        **kwargs: `Translator` arguments (tokenizer, decoding, beam_width, ...).

    Call arguments:
        inputs: dict with `source_ids` int `[batch, S]` (EOS-ended, 0-padded) and `target_in`
            int `[batch, T]` (BOS + summary).

    Returns:
        log-probabilities `[batch, T, vocab]` of the final distribution (teacher forcing; of
        the members' mean for an ensemble). In training with `members > 1`, each member's,
        `[batch, members, T, vocab]`, for `compute_loss` to score separately.

    Example:

    ```python
    model = zoo.build("summarizer", vocab_size=100, embedding_dim=8, encoder_units=8,
                      decoder_units=8)
    model.summarize(["Please send me the Q3 budget before Friday."])
    ```
    """

    task = "summarization"
    member_output_rank = 4  # [batch, members, T, vocab] in training
    config_fields = ("vocab_size", "embedding_dim", "encoder_units", "decoder_units",
                     "attention_units", "coverage", "coverage_loss_weight", "dropout",
                     "max_source_length", "max_summary_length", "lowercase", "trigram_blocking",
                     "source_pad_multiple", "members")

    def __init__(self, vocab_size=8000, embedding_dim=128, encoder_units=256,
                 decoder_units=256, attention_units=None, coverage=True,
                 coverage_loss_weight=1.0, dropout=0.1, max_source_length=200,
                 max_summary_length=32, lowercase=True, trigram_blocking=True,
                 source_pad_multiple=64, members=1, **kwargs):
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
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        self.members = members
        # The first member keeps the single model's layer names (its saved weights load).
        self.encoder, self.decoder, self.embedding_dropout = self._new_member("")
        self.extra_encoders, self.extra_decoders, self.extra_dropouts = [], [], []
        for index in range(1, members):
            encoder, decoder, dropout_layer = self._new_member(f"_{index}")
            self.extra_encoders.append(encoder)
            self.extra_decoders.append(decoder)
            self.extra_dropouts.append(dropout_layer)

    def _new_member(self, suffix):
        encoder = RecurrentEncoder(self.vocab_size, self.embedding_dim, self.encoder_units,
                                   num_layers=1, bidirectional=True, dropout=self.dropout,
                                   name=f"encoder{suffix}")
        decoder = PointerGeneratorDecoder(self.vocab_size, self.embedding_dim,
                                          self.decoder_units, self.attention_units,
                                          self.coverage, self.dropout, name=f"decoder{suffix}")
        return encoder, decoder, keras.layers.Dropout(self.dropout)

    def member_layers(self):
        """`(encoder, decoder, embedding dropout)` of each member, the first first."""
        return [(self.encoder, self.decoder, self.embedding_dropout),
                *zip(self.extra_encoders, self.extra_decoders, self.extra_dropouts, strict=True)]

    def build(self, input_shape=None):
        for encoder, decoder, _ in self.member_layers():
            encoder.build((None, None))
            decoder.build((None, None, self.embedding_dim), (None, None, encoder.output_dim))

    def teacher_forced(self, source_ids, target_in, training=None, member=0):
        """A member's decoder dict (`log_probs`, `attention`, `p_gen`, `coverage_loss`) for
        the given summary (BOS-prefixed `target_in`)."""
        encoder, decoder, embedding_dropout = self.member_layers()[member]
        memory, mask, states = encoder(source_ids, training=training)
        # One embedding for both sides: the vocabulary is shared, and copying works best
        # when a source subword and the same generated subword have one vector.
        embedded = embedding_dropout(encoder.embedding(target_in), training=training)
        return decoder(embedded, memory, mask, ops.cast(source_ids, "int32"), states[-1],
                       training=training)

    def call(self, inputs, training=None):
        outputs = [self.teacher_forced(inputs["source_ids"], inputs["target_in"], training,
                                       member) for member in range(self.members)]
        if self.coverage_loss_weight:
            real = ops.cast(ops.not_equal(inputs["target_in"], PAD_ID), "float32")
            per_token = sum(ops.sum(o["coverage_loss"] * real) for o in outputs) / (
                self.members * ops.maximum(ops.sum(real), 1.0))  # the members' mean
            self.add_loss(self.coverage_loss_weight * per_token)
        if self.members == 1:
            return outputs[0]["log_probs"]
        stacked = ops.stack([o["log_probs"] for o in outputs], axis=1)  # [batch, m, T, V]
        return stacked if training else mean_log_probability(stacked)

    # -- decoding hooks (see Translator.search) -------------------------------------------------
    def max_decoding_length(self, source_ids):
        return ops.minimum(super().max_decoding_length(source_ids), self.max_summary_length)

    def prepare_decoding(self, source_ids, max_length):
        contexts, states = [], []
        for encoder, decoder, _ in self.member_layers():
            memory, mask, encoder_states = encoder(source_ids, training=False)
            states.append(decoder.initial_state(memory, encoder_states[-1]))
            contexts.append((memory, decoder.prepare_memory(memory)))
        # Tokens fed so far (BOS first), for trigram blocking; one spare slot per end.
        history = tf.zeros([tf.shape(source_ids)[0], max_length + 2], tf.int32)
        return (tuple(contexts), source_ids), mask, {"members": tuple(states),
                                                      "history": history}

    def decoding_step(self, context, mask, tokens, step, state):
        """The members' mean distribution (and attention) after `tokens`."""
        contexts, source_ids = context
        history = state["history"]
        log_probs, weights, states = [], [], []
        for (encoder, decoder, _), (memory, projected_memory), member_state in zip(
                self.member_layers(), contexts, state["members"], strict=True):
            member_log_probs, member_weights, _, member_state = decoder.decoding_step(
                encoder.embedding(tokens), member_state, memory, projected_memory, mask,
                source_ids)
            log_probs.append(member_log_probs)
            weights.append(member_weights)
            states.append(member_state)
        if self.members == 1:
            log_probs, weights = log_probs[0], weights[0]
        else:
            log_probs = mean_log_probability(ops.stack(log_probs), axis=0)
            weights = ops.mean(ops.stack(weights), axis=0)
        state = {"members": tuple(states)}
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
        ids = with_eos(ragged).to_tensor(PAD_ID)
        return pad_width(ids, pad_to_multiple or self.source_pad_multiple)

    def summarize(self, texts, return_attention=False):
        """Summaries of raw strings with the configured decoding (see `Translator.translate`)."""
        return self.translate(texts, return_attention=return_attention)


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
