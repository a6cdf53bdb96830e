"""The serving module of a task: the `tf.Module` a trained model is exported as (raw strings in,
the task's outputs out), and the registry of one such class per task.

Tokenization and detokenization (tf-text ops that stock TF Serving links) wrap a numeric core
compiled with XLA (`tf.function(jit_compile=True)`) that sees bucketed shapes only: sources
cut and padded to a few widths by the model, batches padded to `BATCH_BUCKETS` by `pad_batch`.
"""

import tensorflow as tf

from zoo.registry import Registry

# One warm-up request per (batch size, padded source length). The serving function pads batches
# to these sizes (the `allowed_batch_sizes` of serving/tf_serving/batching_parameters.txt, so
# server-side batching pads to the same ones); source lengths are padded to multiples of 8 by
# `encode_texts` (then 48, 64, ...), and most Multi30k sentences fit in 32 subwords.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
WARMUP_SOURCE_LENGTHS = (8, 16, 24, 32)
_WARMUP_TEXT = ("Ein Mann mit einem roten Hut fährt mit dem Fahrrad durch die Straßen der "
                "Stadt , während zwei kleine Hunde im Schnee neben einer Gruppe von Kindern am "
                "Strand spielen und eine Frau ein Buch liest .")

SERVING_MODULES = Registry("serving module", builtins=(
    "zoo.models.serving_modules.translation",
    "zoo.models.serving_modules.summarization",
    "zoo.models.serving_modules.qa",
    "zoo.models.serving_modules.sentiment",
    "zoo.models.serving_modules.dialogue",
))


def serving_module_class(task):
    """The serving module class registered for `task` (`SERVING_MODULES.get`)."""
    return SERVING_MODULES.get(task)


def model_task(model):
    """The task a trained model serves (its class's `task`, translation by default)."""
    return getattr(model, "task", None) or "translation"


def pad_batch(ids, buckets):
    """Pads `[batch, S]` ids to the next batch size in `buckets` (then to multiples of the
    largest) by repeating the first row, so that XLA sees a handful of batch shapes (the ones
    the warm-up requests compile). Copies of a real row end decoding with it: no extra steps."""
    batch = tf.shape(ids)[0]
    table = tf.constant(buckets, tf.int32)
    largest = buckets[-1]
    index = tf.minimum(tf.searchsorted(table, tf.reshape(batch, [1]))[0], len(buckets) - 1)
    padded = tf.where(batch > largest, (batch + largest - 1) // largest * largest,
                      tf.gather(table, index))
    padded = tf.where(batch == 0, 0, padded)
    return tf.concat([ids, tf.tile(ids[:1], [padded - batch, 1])], axis=0)


def warmup_texts(model, lengths=WARMUP_SOURCE_LENGTHS):
    """`{padded source length: text}` for the lengths of `lengths` that German words reach (the
    longest text of each bucket), measured with the model's own tokenizer."""
    texts, words = {}, []
    for word in _WARMUP_TEXT.split() * 20:
        words.append(word)
        text = " ".join(words)
        length = int(tf.shape(model.encode_texts(tf.constant([text])))[1])
        if length > max(lengths):
            break
        if length in lengths:
            texts[length] = text
    return dict(sorted(texts.items()))


class BaseServingModule(tf.Module):
    """What every task's serving module shares; a subclass is registered with
    `@SERVING_MODULES.register(task)`.

    The Keras model is not tracked: saving it would also save every `tf.function` it holds
    (e.g. the jit-compiled greedy decoder that `model.translate` caches), so a no-XLA export
    would still contain XLA functions. Its variables and tokenizer are tracked.

    A subclass implements:

    * `serve`: a `tf.function` with an input signature (string `[batch]` tensors), the
      `serving_default` signature;
    * `numeric_core(model, jit_compile)`: the function of ids that the module compiles as
      `self.core` (`tf.function(jit_compile=jit_compile)`);
    * `limits()`: the export metadata's `limits`, at least `max_source_tokens` (the ids per
      source the core sees, EOS included); generators add `max_decode_steps`.

    and may override `signatures()` (name → concrete function, e.g. adding `classification`),
    `texts_for_warmup(lengths)` or `warmup_requests(batch_sizes, lengths)` (a list of `{input
    name: list of values}`, each one TF Serving warm-up request of `serving_default`; it sets
    `warmup_lengths`, the padded source lengths warmed up).

    Args:
        model: a trained model of the task (with its tokenizer).
        jit_compile: XLA-compile the core (False for `zoo export --no-xla`).
        batch_buckets: increasing batch sizes the core is run with (`pad_batch`).
    """

    module_name = None  # the tf.Module's name

    def __init__(self, model, jit_compile=True, batch_buckets=BATCH_BUCKETS):
        super().__init__(name=self.module_name)
        object.__setattr__(self, "model", model)
        self.model_variables = list(model.variables)
        self.tokenizer = model.tokenizer
        self.batch_buckets = tuple(batch_buckets)
        self.core = tf.function(self.numeric_core(model, jit_compile), jit_compile=jit_compile)

    def numeric_core(self, model, jit_compile):
        raise NotImplementedError

    def limits(self):
        raise NotImplementedError

    def signatures(self):
        return {"serving_default": self.serve.get_concrete_function()}

    def texts_for_warmup(self, lengths):
        """`{padded source length: text}` to warm up (`warmup_texts` by default)."""
        return warmup_texts(self.model, lengths)

    def warmup_requests(self, batch_sizes, lengths=WARMUP_SOURCE_LENGTHS):
        texts = self.texts_for_warmup(lengths)
        self.warmup_lengths = list(texts)
        return [{"text": [text] * batch} for text in texts.values() for batch in batch_sizes]

    def run_core(self, *ids):
        """The core on `ids` (`[batch, ...]` each), the batch padded to a bucket (`pad_batch`);
        every output cut back to the batch."""
        batch = tf.shape(ids[0])[0]
        outputs = self.core(*(pad_batch(value, self.batch_buckets) for value in ids))
        return {name: value[:batch] for name, value in outputs.items()}

    def _tokens(self, ids):
        """Subword strings of `ids`, "" on padding."""
        return self.model.token_strings(ids)
