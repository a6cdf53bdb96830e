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

    With them, the hypotheses of the configured decoding (`decoding`, `beam_width`,
    `length_penalty`, `n_best`; `zoo export --set decoding=greedy` overrides), best first:
    `hypotheses` (string `[batch, n]`), `hypothesis_scores` (float32 `[batch, n]`, what beam
    search ranked by: the length-normalised log-probability; greedy's log-probability),
    `hypothesis_lengths` (int32 `[batch, n]`) and `hypothesis_attention` (float32
    `[batch, n, target, source]`); `translation` is the first. Greedy gives n = 1.

    The numeric core is the model's `decode_n_best` (XLA-compiled beam or greedy search); it
    sees bucketed shapes only: source cut to `max_source_tokens` and padded to
    `source_length_buckets` (`encode_texts`), batch padded to `batch_buckets` (`pad_batch`),
    at most `max_decode_steps` target steps; outputs are cut back.

    Args: see `BaseServingModule`.
    """

    module_name = "translator"

    def numeric_core(self, model, jit_compile):
        return model.decode_n_best

    def decode(self, source_ids):
        """The core on `source_ids`: `(best, hypotheses)`, the best hypothesis's `ids`
        `[batch, T]`, `attention`, `lengths`, `log_probs`, and the n-best outputs above."""
        result = self.run_core(source_ids)
        best = {key: value[:, 0] for key, value in result.items()}
        hypotheses = {
            "hypotheses": tf.reshape(self.model.decode_ids(tf.reshape(
                result["ids"], [-1, tf.shape(result["ids"])[2]])), tf.shape(result["ids"])[:2]),
            "hypothesis_scores": result["scores"],
            "hypothesis_lengths": result["lengths"],
            "hypothesis_attention": tf.cast(result["attention"], tf.float32),
        }
        return best, hypotheses

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        source_ids, truncated = self.model.encode_texts(text, return_truncated=True)
        best, hypotheses = self.decode(source_ids)
        ids = best["ids"]
        return {
            "translation": self.model.decode_ids(ids),
            "attention": tf.cast(best["attention"], tf.float32),
            "source_tokens": self._tokens(source_ids),
            "target_tokens": self._tokens(ids),
            "target_lengths": best["lengths"],
            "source_truncated": truncated,
            **hypotheses,
        }

    def limits(self):
        return {"max_source_tokens": self.model.max_source_tokens,
                "max_decode_steps": self.model.max_decode_steps,
                "source_lengths": list(source_length_buckets(self.model.max_source_tokens))}
