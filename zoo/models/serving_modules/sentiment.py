"""Serving module of the sentiment classifiers: Predict (`serving_default`) and Classify
(`classification`) signatures."""

import tensorflow as tf

from zoo.models.serving_modules.base import (
    BATCH_BUCKETS,
    SERVING_MODULES,
    BaseServingModule,
)


@SERVING_MODULES.register("sentiment")
class SentimentServingModule(BaseServingModule):
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

    Args: see `BaseServingModule`.
    """

    module_name = "sentiment"

    def __init__(self, model, jit_compile=True, batch_buckets=BATCH_BUCKETS):
        super().__init__(model, jit_compile, batch_buckets)
        self.labels = tf.constant(model.labels)

    def numeric_core(self, model, jit_compile):
        return model.classify

    def _classify_texts(self, text):
        ids = self.model.encode_texts(text)
        result = self.run_core(ids)
        probabilities = result["probabilities"]
        return {
            "label": tf.gather(self.labels, tf.argmax(probabilities, axis=-1)),
            "probabilities": probabilities,
            "attention": result["attention"],
            "tokens": self._tokens(ids),
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
