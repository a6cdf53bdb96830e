"""Tiny SavedModel fixtures for tests, demos and the load benchmark.

They mimic the signatures of the zoo's exported models without depending on the model code:

* `build_translator` -- `serving_default`: `text` (string `[batch]`) ->
  `translation` (string `[batch]`), `attention` (float32 `[batch, target, source]`),
  `source_tokens` / `target_tokens` (string `[batch, len]`). The "translation" reverses the
  words and prefixes `v<tag>:` so a test can tell versions apart. The numeric core is a
  `tf.function(jit_compile=True)` (XLA on CPU). A `classification` signature takes serialized
  `tf.Example` protos (feature `text`) and returns `classes` / `scores` `[batch, 2]`.
* `build_qa` -- `serving_default`: `question`, `context` -> `answer` (string) and
  `start_scores` (float32 `[batch, context_len]`).
* `build_busy` -- `serving_default`: `text` (string `[batch]`), `seconds` (float32
  `[batch]`) -> `text` echoed and `iterations`: it multiplies matrices until the largest
  `seconds` has passed (`tf.timestamp`), a real model whose cost a test chooses, for
  admission control, deadline and overload tests.

Everything is a handful of variables: building one takes about a second on a laptop core.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

_BUCKETS = 64
_DIM = 8


def _tokens(text: tf.Tensor) -> tf.Tensor:
    return tf.strings.split(text).to_tensor(default_value="")


class _Translator(tf.Module):
    def __init__(self, tag: str, seed: int = 0):
        super().__init__()
        self.tag = tf.constant(tag)
        rng = tf.random.Generator.from_seed(seed)
        self.embedding = tf.Variable(rng.normal([_BUCKETS, _DIM]), name="embedding")
        self.w_a = tf.Variable(rng.normal([_DIM, _DIM]) * 0.3, name="w_a")
        self.w_c = tf.Variable(rng.normal([_DIM, 2]) * 0.3, name="w_c")

    @tf.function(jit_compile=True)
    def _attend(self, tgt: tf.Tensor, src: tf.Tensor, src_mask: tf.Tensor) -> tf.Tensor:
        # Luong "general" score h_t^T W_a h_s with a masked softmax over source positions.
        scores = tf.einsum("btd,de,bse->bts", tgt, self.w_a, src)
        scores += (1.0 - src_mask[:, None, :]) * -1e9
        return tf.nn.softmax(scores, axis=-1)

    @tf.function(jit_compile=True)
    def _classify_core(self, pooled: tf.Tensor) -> tf.Tensor:
        return tf.nn.softmax(tf.matmul(pooled, self.w_c), axis=-1)

    def _embed(self, tokens: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        ids = tf.strings.to_hash_bucket_fast(tokens, _BUCKETS)
        mask = tf.cast(tokens != "", tf.float32)
        return tf.gather(self.embedding, ids) * mask[..., None], mask

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def translate(self, text):
        source_tokens = _tokens(text)
        lengths = tf.reduce_sum(tf.cast(source_tokens != "", tf.int32), axis=1)
        target_tokens = tf.reverse_sequence(source_tokens, lengths, seq_axis=1, batch_axis=0)
        body = tf.strings.reduce_join(tf.ragged.boolean_mask(
            target_tokens, target_tokens != ""), axis=1, separator=" ")
        translation = tf.strings.join(["v", self.tag, ": ", body])
        src, src_mask = self._embed(source_tokens)
        tgt, _ = self._embed(target_tokens)
        attention = self._attend(tgt, src, src_mask)
        return {
            "translation": translation,
            "attention": attention,
            "source_tokens": source_tokens,
            "target_tokens": target_tokens,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        features = tf.io.parse_example(
            inputs, {"text": tf.io.FixedLenFeature([], tf.string, default_value="")})
        emb, mask = self._embed(_tokens(features["text"]))
        pooled = tf.reduce_sum(emb, axis=1) / tf.maximum(tf.reduce_sum(mask, 1, keepdims=True), 1.0)
        scores = self._classify_core(pooled)
        batch = tf.shape(inputs)[0]
        classes = tf.tile(tf.constant([["negative", "positive"]]), [batch, 1])
        return {"classes": classes, "scores": scores}


class _QA(tf.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        rng = tf.random.Generator.from_seed(seed)
        self.embedding = tf.Variable(rng.normal([_BUCKETS, _DIM]), name="embedding")

    @tf.function(jit_compile=True)
    def _score(self, q: tf.Tensor, c: tf.Tensor, c_mask: tf.Tensor) -> tf.Tensor:
        scores = tf.einsum("bqd,bcd->bc", q, c)
        return scores + (1.0 - c_mask) * -1e9

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="question"),
        tf.TensorSpec([None], tf.string, name="context"),
    ])
    def answer(self, question, context):
        q_tok, c_tok = _tokens(question), _tokens(context)
        q = tf.gather(self.embedding, tf.strings.to_hash_bucket_fast(q_tok, _BUCKETS))
        c_mask = tf.cast(c_tok != "", tf.float32)
        c = tf.gather(self.embedding, tf.strings.to_hash_bucket_fast(c_tok, _BUCKETS))
        scores = self._score(q, c, c_mask)
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        answer = tf.gather(c_tok, best, batch_dims=1)
        return {"answer": answer, "start_scores": scores}


class _Busy(tf.Module):
    def __init__(self):
        super().__init__()
        self.weights = tf.Variable(tf.eye(64) * 0.5, name="weights")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([None], tf.float32, name="seconds")])
    def work(self, text, seconds):
        budget = tf.cast(tf.reduce_max(seconds), tf.float64)
        start = tf.timestamp()

        def body(count, x):
            return count + 1, tf.tanh(tf.matmul(x, self.weights))

        def more(count, x):
            return tf.timestamp() - start < budget

        count, _ = tf.while_loop(more, body, [tf.constant(0), tf.ones([64, 64])])
        return {"text": text, "iterations": tf.fill(tf.shape(seconds), count)}


def _save(module: tf.Module, path: Path, signatures: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, os.fspath(path), signatures=signatures)
    return path


def build_translator(path: str | os.PathLike, tag: str = "1", seed: int = 0) -> Path:
    """Write the tiny translator SavedModel to `path` (a version directory)."""
    module = _Translator(tag, seed)
    return _save(module, path, {
        "serving_default": module.translate.get_concrete_function(),
        "classification": module.classify.get_concrete_function(),
    })


def build_qa(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write the tiny question-answering SavedModel to `path` (a version directory)."""
    module = _QA(seed)
    return _save(module, path, {"serving_default": module.answer.get_concrete_function()})


def build_busy(path: str | os.PathLike) -> Path:
    """Write the busy model (compute for as long as a request asks) to `path`."""
    module = _Busy()
    return _save(module, path, {"serving_default": module.work.get_concrete_function()})
