"""BiDAF extractive reader (Seo et al. 2017) on subword embeddings: question + context in,
answer span out."""

import keras
import tensorflow as tf
from keras import ops

from zoo.layers.bidirectional_attention_flow import BidirectionalAttentionFlow
from zoo.layers.fused_bidirectional_lstm import FusedBidirectionalLSTM
from zoo.layers.highway import Highway
from zoo.models.tokenized_model import TokenizedModel, pad_width
from zoo.text import PAD_ID

RNNS = ("lstm", "gru")
_NEG = -1e9


@keras.saving.register_keras_serializable(package="zoo")
class BiDAFReader(TokenizedModel, keras.Model):
    """Bi-directional attention flow reader for extractive QA (SQuAD).

    Subword embeddings → highway → a shared bidirectional RNN over context and question →
    `BidirectionalAttentionFlow` (`G = [c; ã; c∘ã; c∘h̃]`) → (optional) ReLU projection of
    `G` → modeling BiRNN(s) `M` → start logits from `[G; M]`, end logits from `[G; M₂]`,
    `M₂ = BiRNN(M)` (`end_rnn`), both masked to the context.

    Departures from the paper, for CPU throughput: no character CNN (subwords already cover
    rare words and morphology); LSTMs run by TensorFlow's fused kernel
    (`FusedBidirectionalLSTM`); `fusion_units`: `G` (`8 × hidden_units` wide) projected once
    per position by one large matmul, instead of feeding the modeling RNN 8h-wide inputs that
    it would multiply at every recurrent step; optionally no end BiRNN (`end_rnn`).

    Args:
        vocab_size: int, subword vocabulary size (id 0 is padding).
        embedding_dim: int.
        highway_layers: int, highway layers over the embeddings (0: none).
        hidden_units: int, RNN units per direction everywhere.
        rnn: "lstm" (`FusedBidirectionalLSTM`) or "gru" (`keras.layers.GRU`s).
        modeling_layers: int, BiRNN layers of the modeling layer.
        fusion_units: int, size `G` is projected to before the modeling layer (0: `G` as is).
        end_rnn: bool, end logits from `[G; BiRNN(M)]` as in the paper (False: from `[G; M]`
            with their own weights, one BiRNN pass less).
        dropout: float, on embeddings, on `G` and before each output.
        fused_lstm: bool, `call` runs LSTMs with the fused kernel (set False when the train
            step is XLA-compiled: XLA has no kernel for it); `predict_spans` takes a flag.
        max_context_tokens: int, contexts are cut to their first `max_context_tokens` subwords
            (answers past them cannot be found).
        max_question_tokens: int, questions are cut likewise.
        max_answer_tokens: int, longest answer span in subwords (decoding).
        tokenizer: optional base64 SentencePiece model (`SubwordTokenizer.to_base64`), carried
            in the config so a `.keras` file is a complete reader.
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: dict with `context_ids` int `[batch, C]` and `question_ids` int `[batch, Q]`,
            0-padded.
        training: bool.

    Returns:
        logits `[batch, 2, C]`: start (row 0) and end (row 1), −1e9 on padding.

    Example:

    ```python
    reader = zoo.build("qa", tokenizer=tokenizer)
    reader.answer(["Who built it?"], ["It was built by Ann in 1901."])
    # [{"answer": "Ann", "start": 16, "end": 19, "score": -0.4}]
    ```
    """

    task = "qa"
    config_fields = ("vocab_size", "embedding_dim", "highway_layers", "hidden_units", "rnn",
                     "modeling_layers", "fusion_units", "end_rnn", "dropout",
                     "max_context_tokens", "max_question_tokens", "max_answer_tokens",
                     "fused_lstm", ("tokenizer", "tokenizer_b64"))

    def __init__(self, vocab_size=16000, embedding_dim=128, highway_layers=1, hidden_units=64,
                 rnn="lstm", modeling_layers=1, fusion_units=128, end_rnn=True, dropout=0.1,
                 max_context_tokens=320, max_question_tokens=40, max_answer_tokens=30,
                 fused_lstm=True, tokenizer=None, **kwargs):
        super().__init__(**kwargs)
        if rnn not in RNNS:
            raise ValueError(f"rnn must be one of {', '.join(RNNS)}, got {rnn!r}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.highway_layers = highway_layers
        self.hidden_units = hidden_units
        self.rnn = rnn
        self.modeling_layers = modeling_layers
        self.fusion_units = fusion_units
        self.end_rnn = end_rnn
        self.dropout = dropout
        self.max_context_tokens = max_context_tokens
        self.max_question_tokens = max_question_tokens
        self.max_answer_tokens = max_answer_tokens
        self.fused_lstm = fused_lstm
        self._init_tokenizer(tokenizer)

        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.highway = Highway(highway_layers, name="highway")
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.encoder = self._birnn("contextual_encoder")
        self.attention_flow = BidirectionalAttentionFlow(name="attention_flow")
        self.fusion = (keras.layers.Dense(fusion_units, activation="relu", name="fusion")
                       if fusion_units else None)
        self.modeling = [self._birnn(f"modeling_{i}") for i in range(modeling_layers)]
        self.end_encoder = self._birnn("end_encoder") if end_rnn else None
        self.start_output = keras.layers.Dense(1, name="start_output")
        self.end_output = keras.layers.Dense(1, name="end_output")
        self._compiled_core = None

    def _birnn(self, name):
        if self.rnn == "lstm":
            return FusedBidirectionalLSTM(self.hidden_units, name=name)
        return keras.layers.Bidirectional(
            keras.layers.GRU(self.hidden_units, return_sequences=True), name=name)

    def _run(self, layer, inputs, mask, training, fused):
        if isinstance(layer, FusedBidirectionalLSTM):
            return layer(inputs, mask=mask, fused=fused, training=training)
        return layer(inputs, mask=mask, training=training)

    def build(self, input_shape=None):
        ids = (None, None)
        self.embedding.build(ids)
        embedded = (None, None, self.embedding_dim)
        self.highway.build(embedded)
        self.encoder.build(embedded)
        encoded = (None, None, 2 * self.hidden_units)
        self.attention_flow.build(encoded, encoded)
        fused = (None, None, 8 * self.hidden_units)
        if self.fusion is not None:
            self.fusion.build(fused)
            fused = (None, None, self.fusion_units)
        shape = fused
        for layer in self.modeling:
            layer.build(shape)
            shape = encoded
        if self.end_encoder is not None:
            self.end_encoder.build(encoded)
        output_input = (None, None, fused[-1] + 2 * self.hidden_units)
        self.start_output.build(output_input)
        self.end_output.build(output_input)
        self.built = True

    # -- the network ----------------------------------------------------------------------------
    def _embed(self, ids, mask, training, fused):
        embedded = self.dropout_layer(self.highway(self.embedding(ids)), training=training)
        return self._run(self.encoder, embedded, mask, training, fused)

    def forward(self, context_ids, question_ids, training=None, fused=None):
        """Logits and attention: dict of `start_logits`, `end_logits` `[batch, C]` (float32,
        −1e9 on padding), `c2q` `[batch, C, Q]`, `q2c` `[batch, C]`, `context_mask`.
        `fused`: run LSTMs with the fused kernel (default `fused_lstm`; False under XLA)."""
        fused = self.fused_lstm if fused is None else fused
        context_mask = ops.not_equal(context_ids, PAD_ID)
        question_mask = ops.not_equal(question_ids, PAD_ID)
        context = self._embed(context_ids, context_mask, training, fused)
        question = self._embed(question_ids, question_mask, training, fused)
        flow, c2q, q2c = self.attention_flow(context, question, context_mask, question_mask)
        if self.fusion is not None:
            flow = self.fusion(flow)
        flow = self.dropout_layer(flow, training=training)
        modeled = flow
        for layer in self.modeling:
            modeled = self._run(layer, modeled, context_mask, training, fused)
        end_modeled = modeled
        if self.end_encoder is not None:
            end_modeled = self._run(self.end_encoder, modeled, context_mask, training, fused)
        start = self.start_output(self.dropout_layer(
            ops.concatenate([flow, modeled], -1), training=training))[..., 0]
        end = self.end_output(self.dropout_layer(
            ops.concatenate([flow, end_modeled], -1), training=training))[..., 0]
        return {"start_logits": _masked(start, context_mask),
                "end_logits": _masked(end, context_mask),
                "c2q": c2q, "q2c": q2c, "context_mask": context_mask}

    def call(self, inputs, training=None):
        outputs = self.forward(inputs["context_ids"], inputs["question_ids"], training=training)
        return ops.stack([outputs["start_logits"], outputs["end_logits"]], axis=1)

    def predict_spans(self, context_ids, question_ids, fused=None):
        """Best spans: dict of `start`, `end` (int32 token indices, end inclusive,
        `end − start < max_answer_tokens`), `score` (float32 `log p(start) + log p(end)`), and
        the `c2q` / `q2c` attention weights. XLA-compilable with `fused=False`."""
        outputs = self.forward(context_ids, question_ids, training=False, fused=fused)
        start, end, score = best_spans(outputs["start_logits"], outputs["end_logits"],
                                       outputs["context_mask"], self.max_answer_tokens)
        return {"start": start, "end": end, "score": score,
                "c2q": ops.cast(outputs["c2q"], "float32"),
                "q2c": ops.cast(outputs["q2c"], "float32")}

    # -- raw strings ------------------------------------------------------------------------------
    def encode(self, questions, contexts, pad_to_multiple=8):
        """Tokenize `[batch]` strings in-graph: dict of `question_ids` `[batch, Q]`,
        `context_ids` `[batch, C]` (0-padded to multiples of `pad_to_multiple`, cut to
        `max_question_tokens` / `max_context_tokens`) and `context_starts` / `context_ends`
        `[batch, C]` (int64 UTF-8 byte offsets of each context subword)."""
        self._require_tokenizer()
        questions = self.tokenizer.tokenize(questions)[:, :self.max_question_tokens]
        ids, starts, ends = self.tokenizer.tokenize_with_offsets(contexts)
        cut = slice(None), slice(None, self.max_context_tokens)
        return {"question_ids": _padded(questions, pad_to_multiple),
                "context_ids": _padded(ids[cut], pad_to_multiple),
                "context_starts": _padded(starts[cut], pad_to_multiple),
                "context_ends": _padded(ends[cut], pad_to_multiple)}

    def answer(self, questions, contexts, batch_size=64, return_attention=False):
        """Answers to raw `questions` about `contexts` (lists of strings, or one context for
        all): one dict per question with `answer` (str), `start` / `end` (character offsets
        into the context, Python `str` indices, `end` exclusive: `context[start:end] ==
        answer`) and `score` (log-probability of the span). With `return_attention`, also
        `c2q` `[C, Q]`, `q2c` `[C]`, `context_tokens` and `question_tokens` (subword
        strings) and the span's `start_token` / `end_token` (inclusive)."""
        questions, contexts = list(questions), list(contexts)
        if len(contexts) == 1 and len(questions) > 1:
            contexts = contexts * len(questions)
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        results = []
        for first in range(0, len(questions), batch_size):
            results += self._answer_batch(questions[first:first + batch_size],
                                          contexts[first:first + batch_size], return_attention)
        return results

    def _answer_batch(self, questions, contexts, return_attention):
        if self._compiled_core is None:
            # Not XLA: evaluation sees dozens of padded lengths and each would compile anew.
            self._compiled_core = tf.function(
                self.predict_spans, input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2)
        encoded = self.encode(tf.constant(questions), tf.constant(contexts))
        spans = self._compiled_core(encoded["context_ids"], encoded["question_ids"])
        texts = span_texts(tf.constant(contexts), encoded["context_starts"],
                           encoded["context_ends"], spans["start"], spans["end"])
        results = []
        for index in range(len(questions)):
            result = {"answer": texts["answer"][index].numpy().decode("utf-8"),
                      "start": int(texts["start"][index]), "end": int(texts["end"][index]),
                      "score": float(spans["score"][index])}
            if return_attention:
                context_length = int(ops.sum(ops.cast(encoded["context_ids"][index] != 0,
                                                      "int32")))
                question_length = int(ops.sum(ops.cast(encoded["question_ids"][index] != 0,
                                                       "int32")))
                result["start_token"] = int(spans["start"][index])
                result["end_token"] = int(spans["end"][index])
                result["c2q"] = spans["c2q"][index, :context_length, :question_length].numpy()
                result["q2c"] = spans["q2c"][index, :context_length].numpy()
                result["context_tokens"] = self._pieces(encoded["context_ids"][index])
                result["question_tokens"] = self._pieces(encoded["question_ids"][index])
            results.append(result)
        return results

    def _pieces(self, ids):
        ids = ids[ids != PAD_ID]
        return [piece.decode("utf-8") for piece in self.tokenizer.id_to_string(ids).numpy()]


def _masked(logits, mask):
    logits = ops.cast(logits, "float32")
    return ops.where(mask, logits, ops.full_like(logits, _NEG))


def _padded(ragged, multiple):
    """Ragged `[batch, (n)]` → dense, 0-padded to a multiple of `multiple` (at least one)."""
    return pad_width(ragged.to_tensor(default_value=0), multiple, at_least_one=True)


def best_spans(start_logits, end_logits, mask, max_answer_tokens):
    """The span `(start, end)`, `start ≤ end < start + max_answer_tokens`, both inside
    `mask`, maximising `log p(start) + log p(end)`: int32 `start`, `end` and float32 `score`
    `[batch]`. Scores `[batch, C, max_answer_tokens]` (end = start + offset), not `[C, C]`,
    so long contexts stay cheap."""
    mask = tf.cast(mask, tf.bool)
    log_start = tf.nn.log_softmax(tf.where(mask, start_logits, _NEG), axis=-1)
    log_end = tf.nn.log_softmax(tf.where(mask, end_logits, _NEG), axis=-1)
    length = tf.shape(log_start)[1]
    offsets = tf.range(max_answer_tokens)
    ends = tf.range(length)[:, None] + offsets[None, :]                   # [C, L]
    valid = ends < length
    padded_end = tf.pad(log_end, [[0, 0], [0, max_answer_tokens]], constant_values=_NEG)
    padded_mask = tf.pad(mask, [[0, 0], [0, max_answer_tokens]])
    end_scores = tf.gather(padded_end, ends, axis=1)                       # [B, C, L]
    allowed = tf.logical_and(tf.gather(padded_mask, ends, axis=1), valid[None])
    allowed = tf.logical_and(allowed, mask[:, :, None])
    scores = tf.where(allowed, log_start[:, :, None] + end_scores, _NEG)
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
    best = tf.argmax(flat, axis=-1, output_type=tf.int32)
    start = best // max_answer_tokens
    end = start + best % max_answer_tokens
    return start, end, tf.reduce_max(flat, axis=-1)


def span_texts(contexts, starts, ends, start, end):
    """The answer strings of token spans: `contexts[b]` between the byte offset where token
    `start[b]` begins and where token `end[b]` ends, without surrounding whitespace (a
    subword's "▁" covers the space before it). Returns dict of `answer` (string `[batch]`)
    and `start` / `end` (int32 CHARACTER offsets, Unicode code points as Python `str` indexes,
    end exclusive)."""
    byte_start = tf.gather(starts, start, batch_dims=1)
    byte_end = tf.gather(ends, end, batch_dims=1)
    raw = tf.strings.substr(contexts, byte_start, byte_end - byte_start, unit="BYTE")
    leading = tf.strings.length(tf.strings.regex_replace(raw, r"(?s)^(\s*).*$", r"\1"))
    stripped = tf.strings.regex_replace(raw, r"^\s+|\s+$", "")
    byte_start = byte_start + tf.cast(leading, byte_start.dtype)
    before = tf.strings.substr(contexts, tf.zeros_like(byte_start), byte_start, unit="BYTE")
    char_start = tf.strings.length(before, unit="UTF8_CHAR")
    char_end = char_start + tf.strings.length(stripped, unit="UTF8_CHAR")
    return {"answer": stripped, "start": char_start, "end": char_end}
