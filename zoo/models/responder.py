"""The responder: a recurrent attention encoder-decoder that writes the next turn of a
conversation from its last turns (Vinyals & Le 2015, "A Neural Conversational Model", with
Luong et al. 2015 attention)."""

import keras
import tensorflow as tf
from keras import ops

from zoo.decoding.strategy import NEG_INF
from zoo.models.pointer_generator import blocked_trigrams
from zoo.models.rnn_translator import RNNTranslator
from zoo.models.tokenized_model import with_eos
from zoo.models.translator_base import source_length_buckets
from zoo.text import PAD_ID


@keras.saving.register_keras_serializable(package="zoo")
class Responder(RNNTranslator):
    """An `RNNTranslator` (Bi-LSTM encoder, LSTM decoder with input feeding and a pluggable
    attention; `attention=None`: the no-attention baseline) for dialogue: the source is the
    history, turns separated by `\\n`, each tagged `#PersonN#:`; the target is the next turn's
    text.

    What differs from a translator:

    * the history keeps its *last* `max_source_tokens - 1` subwords (the most recent turns),
      then EOS;
    * decoding stops after `max_decode_steps` tokens whatever the history's length (a reply
      is not longer for a longer history; `max_length_ratio` is not used);
    * with `trigram_blocking`, greedy and beam search never let a hypothesis repeat a subword
      trigram it already contains, as the summarizer's pointer-generator (the fed tokens are
      part of the search state, so beam search reorders them with the hypotheses).

    Args:
        trigram_blocking: bool, forbid repeated subword trigrams while decoding.
        **kwargs: `RNNTranslator` arguments (sizes, attention, tokenizer, decoding keys,
            `max_source_tokens`, `max_decode_steps`).

    Example:

    ```python
    model = zoo.load("responder")  # a trained one; zoo.build("responder") makes a new one
    model.respond(["#Person1#: Hi, how can I help you?"])
    ```
    """

    task = "dialogue"
    config_fields = ("trigram_blocking",)

    def __init__(self, trigram_blocking=True, **kwargs):
        super().__init__(**kwargs)
        self.trigram_blocking = trigram_blocking

    # -- decoding hooks (see Translator.search) -------------------------------------------------
    def max_decoding_length(self, source_ids):
        return ops.convert_to_tensor(self.max_decode_steps, "int32")

    def prepare_decoding(self, source_ids, max_length):
        context, mask, state = super().prepare_decoding(source_ids, max_length)
        # Tokens fed so far (BOS first), for trigram blocking; one spare slot per end.
        history = tf.zeros([tf.shape(source_ids)[0], max_length + 2], tf.int32)
        return context, mask, {"decoder": state, "history": history}

    def decoding_step(self, context, mask, tokens, step, state):
        logits, weights, decoder_state = super().decoding_step(context, mask, tokens, step,
                                                               state["decoder"])
        history = state["history"]
        hot = tf.equal(tf.range(tf.shape(history)[1]), step)[None, :]
        history = tf.where(hot, tf.cast(tokens, tf.int32)[:, None], history)
        if self.trigram_blocking:
            logits = tf.where(blocked_trigrams(history, step, self.vocab_size),
                              tf.constant(NEG_INF, logits.dtype), logits)
        return logits, weights, {"decoder": decoder_state, "history": history}

    # -- raw text -------------------------------------------------------------------------------
    def encode_texts(self, texts, return_truncated=False):
        """Histories → ids `[batch, S]`: the last `max_source_tokens - 1` subwords, EOS,
        padded to the next `source_length_buckets` width; with `return_truncated`, also bool
        `[batch]`: which histories were cut (their oldest subwords dropped)."""
        self._require_tokenizer()
        ragged = self.tokenizer.tokenize(texts)
        keep = self.max_source_tokens - 1
        lengths = ragged.row_lengths()
        truncated = lengths > keep
        ids = with_eos(last_subwords(ragged, keep)).to_tensor(default_value=PAD_ID)
        length = tf.shape(ids)[1]
        buckets = tf.constant(source_length_buckets(self.max_source_tokens), tf.int32)
        padded = tf.gather(buckets, tf.searchsorted(buckets, tf.reshape(length, [1]))[0])
        ids = tf.pad(ids, [[0, 0], [0, padded - length]])
        return (ids, truncated) if return_truncated else ids

    def respond(self, histories, return_attention=False):
        """Responses to raw histories with the configured decoding (see
        `Translator.translate`)."""
        return self.translate(histories, return_attention=return_attention)


def last_subwords(ragged, keep):
    """Each row of ragged ids `[batch, (n)]` cut to its last `keep` ids."""
    lengths = ragged.row_lengths()
    starts = tf.maximum(lengths - keep, 0)
    positions = tf.ragged.range(starts, lengths)
    return tf.gather(ragged, positions, batch_dims=1)
