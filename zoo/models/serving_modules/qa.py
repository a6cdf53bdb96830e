"""Serving module of the extractive QA readers (`task = "qa"`): question + context in, answer
span out."""

import tensorflow as tf

from zoo.models.bidaf_reader import span_texts
from zoo.models.serving_modules.base import (
    SERVING_MODULES,
    WARMUP_SOURCE_LENGTHS,
    BaseServingModule,
)

# Contexts are padded to multiples of 64 subwords and questions to the model's longest, so the
# XLA core sees (batch buckets) × (max_context_tokens / 64) shapes — 30 for 6 batch buckets and
# 320-subword contexts, all of them warmed up — instead of one per multiple of 8 of each side.
CONTEXT_MULTIPLE = 64
_WARMUP_PARAGRAPH = (
    "The university was founded in 1842 by a small group of teachers who wanted to offer a "
    "free education to the children of the region. Its first building, designed by the "
    "architect Maria Keller, still stands on the northern bank of the river and houses the "
    "library, which holds more than two million volumes and a famous collection of maps. ")


@SERVING_MODULES.register("qa")
class QAServingModule(BaseServingModule):
    """Exports a `BiDAFReader`.

    `serving_default`: `question` and `context` (string `[batch]`, one context per question)
    → `answer` (string `[batch]`), `start` / `end` (int32 `[batch]`: CHARACTER offsets into
    the context, counted in Unicode code points like Python `str` indexes, `end` exclusive,
    so `context[start:end] == answer`), `score` (float32 `[batch]`, `log p(start) +
    log p(end)`), `attention` (float32 `[batch, C, Q]`, the context-to-query weights),
    `context_tokens` / `question_tokens` (string `[batch, C]` / `[batch, Q]`, "" = padding).
    Only the first `max_context_tokens` subwords of a context are searched.

    Tokenization and the answer's text and offsets are tf-text / core string ops around the
    numeric core, a `tf.function(jit_compile=...)` that sees bucketed shapes only: contexts
    padded to multiples of 64 subwords, questions to `max_question_tokens`, the batch to
    `batch_buckets` (`pad_batch`).

    Args: see `BaseServingModule`.
    """

    module_name = "qa"

    def numeric_core(self, model, jit_compile):
        # XLA has no kernel for the fused LSTM: the compiled core runs the Keras LSTM loop.
        return lambda context_ids, question_ids: model.predict_spans(
            context_ids, question_ids, fused=not jit_compile)

    @property
    def question_length(self):
        """Questions are padded to `max_question_tokens` rounded up to 8."""
        return -(-self.model.max_question_tokens // 8) * 8

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="question"),
                                  tf.TensorSpec([None], tf.string, name="context")])
    def serve(self, question, context):
        encoded = self.model.encode(question, context)
        context_ids = encoded["context_ids"]
        context_length = -(-tf.shape(context_ids)[1] // CONTEXT_MULTIPLE) * CONTEXT_MULTIPLE
        question_ids = _pad_to(encoded["question_ids"], self.question_length)
        spans = self.run_core(_pad_to(context_ids, context_length), question_ids)
        texts = span_texts(context, encoded["context_starts"], encoded["context_ends"],
                           spans["start"], spans["end"])
        return {
            "answer": texts["answer"],
            "start": texts["start"],
            "end": texts["end"],
            "score": spans["score"],
            "attention": spans["c2q"][:, :tf.shape(context_ids)[1]],
            "context_tokens": self._tokens(context_ids),
            "question_tokens": self._tokens(question_ids),
        }

    def limits(self):
        """Contexts are the source: cut to `max_context_tokens`, padded to multiples of 64."""
        longest = -(-self.model.max_context_tokens // CONTEXT_MULTIPLE) * CONTEXT_MULTIPLE
        return {"max_source_tokens": self.model.max_context_tokens,
                "max_question_tokens": self.model.max_question_tokens,
                "source_lengths": list(range(CONTEXT_MULTIPLE, longest + 1, CONTEXT_MULTIPLE))}

    def warmup_requests(self, batch_sizes, lengths=WARMUP_SOURCE_LENGTHS):
        """One request per batch size and padded context length in `lengths` (rounded up to
        multiples of 64); `export_model`'s default lengths (the translators' source lengths)
        stand for every context length up to `max_context_tokens`."""
        if tuple(lengths) == tuple(WARMUP_SOURCE_LENGTHS):
            lengths = range(CONTEXT_MULTIPLE, self.model.max_context_tokens + CONTEXT_MULTIPLE,
                            CONTEXT_MULTIPLE)
        contexts = warmup_contexts(self.model, lengths)
        self.warmup_lengths = list(contexts)
        question = "Who designed the first building of the university?"
        return [{"question": [question] * batch, "context": [text] * batch}
                for text in contexts.values() for batch in batch_sizes]


def warmup_contexts(model, lengths):
    """`{padded context length: text}` for the multiples of 64 that `lengths` round up to (at
    most `max_context_tokens`), measured with the model's own tokenizer."""
    wanted = sorted({min(-(-length // CONTEXT_MULTIPLE) * CONTEXT_MULTIPLE,
                         -(-model.max_context_tokens // CONTEXT_MULTIPLE) * CONTEXT_MULTIPLE)
                     for length in lengths})
    words = (_WARMUP_PARAGRAPH * (max(wanted) // 16 + 1)).split()
    counts = range(1, len(words) + 1)
    lengths_by_words = model.tokenizer.tokenize(
        tf.constant([" ".join(words[:count]) for count in counts])).row_lengths().numpy()
    texts = {}
    for count, tokens in zip(counts, lengths_by_words, strict=True):
        padded = -(-min(int(tokens), model.max_context_tokens) // CONTEXT_MULTIPLE)
        padded *= CONTEXT_MULTIPLE
        if padded in wanted:
            texts[padded] = " ".join(words[:count])  # the longest text of each bucket
    return dict(sorted(texts.items()))


def _pad_to(ids, length):
    return tf.pad(ids, [[0, 0], [0, length - tf.shape(ids)[1]]])
