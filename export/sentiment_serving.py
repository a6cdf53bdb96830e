"""Serving module of the sentiment classifiers: Predict (`serving_default`) and Classify
(`classification`) signatures."""

import tensorflow as tf

from export.saved_model import (
    BATCH_BUCKETS,
    WARMUP_SOURCE_LENGTHS,
    pad_batch,
    register_serving_module,
    warmup_texts,
)


@register_serving_module("sentiment")
class SentimentServingModule(tf.Module):
    """Exports a `SentimentClassifier`.

    * `serving_default`: `text` (string `[batch]`) → `label` (string `[batch]`),
      `probabilities` (float32 `[batch, classes]`), `attention` (float32
      `[batch, hops, tokens]`), `tokens` (string `[batch, tokens]`, "" = padding).
    * `classification` (TF Serving's Classify API): `inputs` (serialized `tf.Example`s with a
      bytes feature `text`) → `classes` (string `[batch, classes]`) and `scores` (float32
      `[batch, classes]`). `tf.saved_model.save` records it with the predict method name,
      which TF Serving accepts unless `--enable_signature_method_name_check` is on.

    Tokenization (tf-text) runs outside the numeric core, a `tf.function(jit_compile=...)` that
    sees bucketed shapes only: tokens padded to a multiple of 8 (at most the model's
    `max_tokens`), batch padded to `batch_buckets` (`pad_batch`).

    Args:
        model: a trained `SentimentClassifier` (with its tokenizer).
        jit_compile: XLA-compile the core (False for `zoo export --no-xla`).
        batch_buckets: increasing batch sizes the core is run with.
    """

    def __init__(self, model, jit_compile=True, batch_buckets=BATCH_BUCKETS):
        super().__init__(name="sentiment")
        # Not tracked, like the translator's module: saving the Keras model would also save
        # the tf.functions it caches. Its variables and tokenizer are tracked.
        object.__setattr__(self, "model", model)
        self.model_variables = list(model.variables)
        self.tokenizer = model.tokenizer
        self.batch_buckets = tuple(batch_buckets)
        self.labels = tf.constant(model.labels)
        self.core = tf.function(model.classify, jit_compile=jit_compile)

    def _classify_texts(self, text):
        ids = self.model.encode_texts(text)
        batch = tf.shape(ids)[0]
        result = self.core(pad_batch(ids, self.batch_buckets))
        probabilities = result["probabilities"][:batch]
        return {
            "label": tf.gather(self.labels, tf.argmax(probabilities, axis=-1)),
            "probabilities": probabilities,
            "attention": result["attention"][:batch],
            "tokens": self.model.token_strings(ids),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return self._classify_texts(text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        features = tf.io.parse_example(
            inputs, {"text": tf.io.FixedLenFeature([], tf.string, default_value="")})
        probabilities = self._classify_texts(features["text"])["probabilities"]
        classes = tf.tile(self.labels[None, :], [tf.shape(inputs)[0], 1])
        return {"classes": classes, "scores": probabilities}

    def signatures(self):
        return {"serving_default": self.serve.get_concrete_function(),
                "classification": self.classify.get_concrete_function()}

    def limits(self):
        """Texts are cut to `max_tokens` subwords (no EOS), padded to multiples of 8."""
        return {"max_source_tokens": self.model.max_tokens}

    def warmup_requests(self, batch_sizes, lengths=WARMUP_SOURCE_LENGTHS):
        texts = warmup_texts(self.model, lengths)
        self.warmup_lengths = list(texts)
        return [{"text": [text] * batch} for text in texts.values() for batch in batch_sizes]
