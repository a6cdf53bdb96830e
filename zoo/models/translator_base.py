"""What every translator shares: decoding (greedy, beam), raw text in and out, the config."""

import keras
import tensorflow as tf
from keras import ops

from zoo.decoding import BeamSearch, DecodingStrategy, GreedySearch
from zoo.models.tokenized_model import TokenizedModel, with_eos
from zoo.text import EOS_ID, PAD_ID

DECODINGS = ("greedy", "beam")
# Every source, whatever its length, is cut to `max_source_tokens` ids (EOS included) and padded
# to the next of these widths: a client can make XLA compile a handful of shapes, not one per
# multiple of 8. Beyond the table, widths keep doubling (× 1.5, × 4/3) like it.
SOURCE_LENGTH_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128)


def source_length_buckets(max_source_tokens):
    """The padded source widths of a translator cutting sources to `max_source_tokens` ids:
    `SOURCE_LENGTH_BUCKETS` below it (extended geometrically), then it rounded up to 8."""
    buckets, cap = list(SOURCE_LENGTH_BUCKETS), -(-int(max_source_tokens) // 8) * 8
    while buckets[-1] < cap:
        buckets.append(buckets[-2] * 2)
    return (*(b for b in buckets if b < cap), cap)


class Translator(TokenizedModel, keras.Model):
    """Base class of the zoo's translators: an encoder-decoder trained with teacher forcing
    (`call`) that decodes one token at a time with a `zoo.decoding` strategy.

    Subclasses implement `call` and the two decoding hooks:

    * `prepare_decoding(source_ids, max_length)` → `(context, mask, state)`: the per-sentence
      tensors a step needs (any nest, batch first: encoder memory, projected keys, ...), the
      boolean source mask `[batch, S]` and the initial decoder state (nest, batch first);
    * `decoding_step(context, mask, tokens, step, state)` → `(logits [N, V],
      attention [N, S], next_state)`.

    Args:
        max_length_ratio: float, decoding stops after `min(ratio * S + 10,
            max_decode_steps)` tokens.
        tokenizer: optional base64 SentencePiece model (see `SubwordTokenizer`), carried in
            the config so a `.keras` file is a complete translator.
        decoding: "greedy" or "beam", what `translate` and `decode` use.
        beam_width, length_penalty, coverage_penalty, n_best: `BeamSearch` defaults of
            `beam_decode` (and of `decode` when `decoding="beam"`).
        max_source_tokens: int ≥ 2, `encode_texts` keeps the first `max_source_tokens - 1`
            subwords of a source, then EOS: what one request costs is bounded (128 by default;
            the longest Multi30k source is 53 ids with the default 8,000-piece vocabulary, 84
            with 1,000 pieces, so no real sentence is cut).
        max_decode_steps: int ≥ 1, a hard cap on decoding steps (the output buffers' size).
        **kwargs: forwarded to `keras.Model`.
    """

    task = "translation"  # what export and `zoo evaluate` serve and score
    config_fields = ("max_length_ratio", ("tokenizer", "tokenizer_b64"), "max_source_tokens",
                     "max_decode_steps", "decoding", "beam_width", "length_penalty",
                     "coverage_penalty", "n_best")

    def __init__(self, max_length_ratio=1.5, tokenizer=None, decoding="greedy", beam_width=5,
                 length_penalty=0.0, coverage_penalty=0.0, n_best=1, max_source_tokens=128,
                 max_decode_steps=200, **kwargs):
        super().__init__(**kwargs)
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        if int(max_source_tokens) < 2 or int(max_decode_steps) < 1:
            raise ValueError("max_source_tokens must be >= 2 (a subword and EOS) and "
                             f"max_decode_steps >= 1, got {max_source_tokens} and "
                             f"{max_decode_steps}")
        self.max_source_tokens = int(max_source_tokens)
        self.max_decode_steps = int(max_decode_steps)
        self.max_length_ratio = max_length_ratio
        self._init_tokenizer(tokenizer)
        self.decoding = decoding
        self.beam_width = beam_width
        self.length_penalty = length_penalty
        self.coverage_penalty = coverage_penalty
        self.n_best = n_best
        BeamSearch(beam_width, length_penalty, coverage_penalty, n_best)  # validates
        self._compiled_decoders = {}

    @property
    def has_attention(self):
        """Whether the decoder attends over the source (coverage penalty needs it)."""
        return True

    # -- decoding hooks -----------------------------------------------------------------------
    def prepare_decoding(self, source_ids, max_length):
        raise NotImplementedError

    def decoding_step(self, context, mask, tokens, step, state):
        raise NotImplementedError

    # -- search ---------------------------------------------------------------------------------
    def max_decoding_length(self, source_ids):
        source_length = ops.shape(source_ids)[1]
        by_ratio = ops.cast(ops.cast(source_length, "float32") * self.max_length_ratio,
                            "int32") + 10
        return ops.minimum(by_ratio, self.max_decode_steps)

    def search(self, source_ids, strategy):
        """Decode `source_ids` `[batch, S]` with a `DecodingStrategy` → `DecodingResult`."""
        if (getattr(strategy, "coverage_penalty", 0.0) and not self.has_attention):
            raise ValueError("coverage_penalty needs attention weights; this translator has "
                             "no attention (attention=None)")
        source_ids = ops.cast(ops.convert_to_tensor(source_ids), "int32")
        batch = ops.shape(source_ids)[0]
        single_row = getattr(strategy, "beam_width", 1) == 1 and self.is_int8_quantized()
        if single_row:
            # XLA:CPU multiplies one int8 row by an int8 matrix 1.6x slower than two rows
            # (benchmarks/results/decode_throughput.json, docs/quality.md): a lone sentence
            # is decoded next to a copy of itself, and the copy dropped.
            source_ids = tf.concat([source_ids, source_ids[:1]], 0)[:tf.maximum(batch, 2)]
        max_length = self.max_decoding_length(source_ids)
        context, mask, state = self.prepare_decoding(source_ids, max_length)
        context, mask, state = strategy.tile((context, mask, state))

        def step_fn(tokens, step, state):
            return self.decoding_step(context, mask, tokens, step, state)

        result = strategy.decode(step_fn, state, ops.shape(source_ids)[0], max_length, mask)
        if single_row:
            result = type(result)(*(value[:batch] for value in result))
        return result

    def is_int8_quantized(self):
        """Whether post-training int8 quantization (`model.quantize("int8")`) holds any of
        this model's weights."""
        return any(getattr(layer, "quantization_mode", None) == "int8"
                   for layer in self._flatten_layers())

    def greedy_decode(self, source_ids):
        """ids `[batch, S]` → dict of `ids` `[batch, T]`, `attention` `[batch, T, S]`,
        `lengths` `[batch]`, `log_probs` `[batch]` (XLA-compilable). ids after EOS are 0,
        lengths count tokens up to and including EOS."""
        return _first_hypothesis(self.search(source_ids, GreedySearch()))

    def beam_decode(self, source_ids, beam_width=None, length_penalty=None,
                    coverage_penalty=None, n_best=None):
        """Beam search (XLA-compilable); arguments default to the model's config.

        Returns a dict of `ids` `[batch, n_best, T]`, `lengths` `[batch, n_best]`,
        `log_probs` and `scores` `[batch, n_best]` (best first) and `attention`
        `[batch, n_best, T, S]`. `n_best` defaults to the config's, at most `beam_width`.
        """
        beam_width = self.beam_width if beam_width is None else beam_width
        strategy = BeamSearch(
            beam_width,
            length_penalty=self.length_penalty if length_penalty is None else length_penalty,
            coverage_penalty=(self.coverage_penalty if coverage_penalty is None
                              else coverage_penalty),
            n_best=min(self.n_best, beam_width) if n_best is None else n_best)
        return self.search(source_ids, strategy)._asdict()

    def decode(self, source_ids):
        """The configured decoding (`decoding`: greedy, or beam search's best hypothesis),
        with `greedy_decode`'s outputs (XLA-compilable)."""
        if self.decoding == "greedy":
            return self.greedy_decode(source_ids)
        strategy = DecodingStrategy.from_config(self.decoding_config() | {"n_best": 1})
        return _first_hypothesis(self.search(source_ids, strategy))

    def decode_n_best(self, source_ids):
        """The configured decoding's hypotheses, best first (XLA-compilable): greedy's one, or
        beam search's `n_best`. A dict of `ids` `[batch, n, T]`, `lengths`, `log_probs`,
        `scores` `[batch, n]` and `attention` `[batch, n, T, S]` (what an export serves)."""
        strategy = DecodingStrategy.from_config(
            self.decoding_config() | {"n_best": min(self.n_best, self.beam_width)})
        return self.search(source_ids, strategy)._asdict()

    def decoding_config(self):
        return {"decoding": self.decoding, "beam_width": self.beam_width,
                "length_penalty": self.length_penalty,
                "coverage_penalty": self.coverage_penalty, "n_best": self.n_best}

    # -- raw strings in, raw strings out ------------------------------------------------------
    def encode_texts(self, texts, return_truncated=False):
        """Tokenize raw strings into 0-padded ids `[batch, S]`, EOS-ended, cut to
        `max_source_tokens` ids (the first `max_source_tokens - 1` subwords, then EOS) and
        padded to the next `source_length_buckets` width. With `return_truncated`, also bool
        `[batch]`: which rows were cut.
        """
        self._require_tokenizer()
        ragged = self.tokenizer.tokenize(texts)
        keep = self.max_source_tokens - 1
        truncated = ragged.row_lengths() > keep
        ids = with_eos(ragged[:, :keep]).to_tensor(default_value=PAD_ID)
        length = tf.shape(ids)[1]
        buckets = tf.constant(source_length_buckets(self.max_source_tokens), tf.int32)
        padded = tf.gather(buckets, tf.searchsorted(buckets, tf.reshape(length, [1]))[0])
        ids = tf.pad(ids, [[0, 0], [0, padded - length]])
        return (ids, truncated) if return_truncated else ids

    def decode_ids(self, ids):
        """Output ids (EOS-terminated, 0-padded) → detokenized strings."""
        self._require_tokenizer()
        ids = tf.where(tf.equal(ids, EOS_ID), tf.zeros_like(ids), ids)
        return self.tokenizer.detokenize(ids)

    def translate(self, texts, return_attention=False):
        """Translate a list of raw strings with the configured decoding (eager convenience;
        export for serving). With `return_attention`, also returns `decode`'s outputs and the
        source ids."""
        ids = self.encode_texts(tf.constant(list(texts)))
        key = tuple(sorted(self.decoding_config().items()))
        if key not in self._compiled_decoders:
            self._compiled_decoders[key] = tf.function(self.decode, jit_compile=True)
        result = self._compiled_decoders[key](ids)
        translations = [t.decode("utf-8") for t in self.decode_ids(result["ids"]).numpy()]
        if return_attention:
            return translations, result, ids
        return translations


def _first_hypothesis(result):
    return {"ids": result.ids[:, 0], "attention": result.attention[:, 0],
            "lengths": result.lengths[:, 0], "log_probs": result.log_probs[:, 0]}
