"""Serving module of the summarizers (`task = "summarization"`): text in, summary out."""

import tensorflow as tf

from zoo.models.serving_modules.base import SERVING_MODULES, WARMUP_SOURCE_LENGTHS
from zoo.models.serving_modules.translation import TranslatorServingModule

# Filler for warm-up requests: e-mail-like English, repeated until a source length bucket is
# reached (warm-up requests only need the right shapes).
_WARMUP_TEXT = ("Hi team, please find attached the revised schedule for the gas supply "
                "agreement. The meeting with the legal group has moved to Friday at 10 am in "
                "the usual conference room; call me if you cannot make it. Thanks, John. ")


@SERVING_MODULES.register("summarization")
class SummarizerServingModule(TranslatorServingModule):
    """Exports a `PointerGenerator` (or any summarization `Translator`).

    `serving_default`: `text` (string `[batch]`) → `summary` (string `[batch]`),
    `summary_tokens` and `source_tokens` (string `[batch, len]`, "" = padding), `scores`
    (float32 `[batch]`, the summary's log-probability), `summary_lengths` (int32 `[batch]`,
    tokens including EOS) and `attention` (float32 `[batch, summary, source]`); and the
    configured decoding's n-best `hypotheses`, `hypothesis_scores`, `hypothesis_lengths`,
    `hypothesis_attention` as the translators' (`summary` is the first).

    The numeric core is the model's `decode_n_best` (with its trigram blocking), a
    `tf.function(jit_compile=...)` that sees bucketed shapes only: the model lower-cases and
    cuts the source to its `max_source_length` and pads it to a multiple of its
    `source_pad_multiple` (64 by default: 4 shapes up to 256 subwords), the batch is padded to
    `batch_buckets`.

    Args: see `BaseServingModule`.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        source_ids = self.model.encode_texts(text)
        best, hypotheses = self.decode(source_ids)
        ids = best["ids"]
        return {
            "summary": self.model.decode_ids(ids),
            "summary_tokens": self._tokens(ids),
            "source_tokens": self._tokens(source_ids),
            "scores": best["log_probs"],
            "summary_lengths": best["lengths"],
            "attention": tf.cast(best["attention"], tf.float32),
            **hypotheses,
        }

    def limits(self):
        """The summarizer cuts sources its own way (`max_source_length` subwords, then EOS)
        and stops at `max_summary_length` (and `max_decode_steps`)."""
        multiple = self.model.source_pad_multiple
        longest = -(-(self.model.max_source_length + 1) // multiple) * multiple
        return {"max_source_tokens": self.model.max_source_length + 1,
                "max_decode_steps": min(self.model.max_summary_length,
                                        self.model.max_decode_steps),
                "source_lengths": list(range(multiple, longest + 1, multiple))}

    def texts_for_warmup(self, lengths):
        """`lengths` are source lengths in subwords, each warmed up at its padded bucket; the
        exporter's default (the translators' short lengths) means every bucket the model can
        produce."""
        return summary_warmup_texts(
            self.model, None if tuple(lengths) == tuple(WARMUP_SOURCE_LENGTHS) else lengths)


def summary_warmup_texts(model, lengths=None):
    """`{padded source length: text}` for the buckets of `lengths` (None: every bucket up to
    the model's longest source), measured with the model's own tokenizer."""
    multiple = model.source_pad_multiple
    longest = -(-(model.max_source_length + 1) // multiple) * multiple
    if lengths is None:
        wanted = set(range(multiple, longest + 1, multiple))
    else:
        wanted = {min(-(-length // multiple) * multiple, longest) for length in lengths}
    texts, words = {}, []
    for word in (_WARMUP_TEXT * (2 + 2 * longest // 40)).split():
        words.append(word)
        text = " ".join(words)
        length = int(tf.shape(model.encode_texts(tf.constant([text])))[1])
        if length in wanted:
            texts[length] = text  # the longest text of its bucket
        if length >= longest:
            break
    return dict(sorted(texts.items()))


__all__ = ["SummarizerServingModule", "summary_warmup_texts"]
