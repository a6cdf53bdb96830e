"""Serving module of the translators (`task = "translation"`): text in, translation out."""

import tensorflow as tf

from zoo.models.serving_modules.base import SERVING_MODULES, BaseServingModule
from zoo.models.translator_base import source_length_buckets


@SERVING_MODULES.register("translation")
class TranslatorServingModule(BaseServingModule):
    """`serving_default`: `text` (string `[batch]`) → `translation` (string `[batch]`),
    `attention` (float32 `[batch, target, source]`), `source_tokens`/`target_tokens` (string,
    padded with ""), `target_lengths` (int32 `[batch]`), `source_truncated` (bool `[batch]`:
    the source was longer than `max_source_tokens` ids and only its beginning was translated).

    The numeric core is the model's `greedy_decode`; it sees bucketed shapes only: source cut
    to `max_source_tokens` and padded to `source_length_buckets` (`encode_texts`), batch
    padded to `batch_buckets` (`pad_batch`), at most `max_decode_steps` target steps; outputs
    are cut back.

    Args: see `BaseServingModule`.
    """

    module_name = "translator"

    def numeric_core(self, model, jit_compile):
        return model.greedy_decode

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        source_ids, truncated = self.model.encode_texts(text, return_truncated=True)
        result = self.run_core(source_ids)
        ids = result["ids"]
        return {
            "translation": self.model.decode_ids(ids),
            "attention": tf.cast(result["attention"], tf.float32),
            "source_tokens": self._tokens(source_ids),
            "target_tokens": self._tokens(ids),
            "target_lengths": result["lengths"],
            "source_truncated": truncated,
        }

    def limits(self):
        return {"max_source_tokens": self.model.max_source_tokens,
                "max_decode_steps": self.model.max_decode_steps,
                "source_lengths": list(source_length_buckets(self.model.max_source_tokens))}
