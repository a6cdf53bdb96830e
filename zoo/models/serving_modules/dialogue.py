"""Serving module of the responders (`task = "dialogue"`): a history in, the next turn out."""

import tensorflow as tf

from zoo.models.serving_modules.base import SERVING_MODULES
from zoo.models.serving_modules.translation import TranslatorServingModule

# Filler for warm-up requests: tagged turns, repeated until a history length bucket is reached
# (warm-up requests only need the right shapes).
_WARMUP_TURNS = ("#Person1#: Hello, I'd like to book a table for two tonight, please.\n"
                 "#Person2#: Certainly. What time would you like to come in?\n")


@SERVING_MODULES.register("dialogue")
class ResponderServingModule(TranslatorServingModule):
    """Exports a `Responder`.

    `serving_default`: `text` (string `[batch]`, a history: turns separated by `\\n`, each
    `#PersonN#: ...`) → `response` (string `[batch]`, the next turn's text, untagged),
    `attention` (float32 `[batch, response, history]`), `history_tokens` / `response_tokens`
    (string, padded with ""), `response_lengths` (int32 `[batch]`, tokens including EOS),
    `history_truncated` (bool `[batch]`: the history was longer than `max_source_tokens` ids
    and only its end was read); and the configured decoding's n-best `hypotheses`,
    `hypothesis_scores`, `hypothesis_lengths`, `hypothesis_attention` as the translators'
    (`response` is the first).

    The numeric core is the model's configured decoding (`decode_n_best`: beam search with
    trigram blocking for configs/responder.yaml), on bucketed shapes only: the
    history's last `max_source_tokens - 1` subwords and EOS padded to
    `source_length_buckets`, the batch padded to `batch_buckets`, at most `max_decode_steps`
    steps.

    Args: see `BaseServingModule`.
    """

    module_name = "responder"

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        history_ids, truncated = self.model.encode_texts(text, return_truncated=True)
        best, hypotheses = self.decode(history_ids)
        ids = best["ids"]
        return {
            "response": self.model.decode_ids(ids),
            "attention": tf.cast(best["attention"], tf.float32),
            "history_tokens": self._tokens(history_ids),
            "response_tokens": self._tokens(ids),
            "response_lengths": best["lengths"],
            "history_truncated": truncated,
            **hypotheses,
        }

    def texts_for_warmup(self, lengths):
        """`{padded history length: history}` for the buckets of `lengths`."""
        texts, words = {}, []
        longest = max(lengths, default=0)
        for word in (_WARMUP_TURNS * (1 + longest // 8)).split(" "):  # "\n" inside words
            words.append(word)
            text = " ".join(words).strip()
            length = int(tf.shape(self.model.encode_texts(tf.constant([text])))[1])
            if length in lengths:
                texts[length] = text  # the longest history of its bucket
            if length >= longest:
                break
        return dict(sorted(texts.items()))


__all__ = ["ResponderServingModule"]
