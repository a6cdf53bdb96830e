"""Sentence classifier: BiLSTM + attentive pooling (Lin et al. 2017) + MLP."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.layers import AttentionPooling, RecurrentEncoder, StructuredSelfAttention
from zoo.text import PAD_ID, UNK_ID, SubwordTokenizer

STRUCTURED = "structured"

# Raw text → the lower-cased, PTB-tokenized form of SST (`it 's`, `does n't`, `great !`), with
# core string ops only (TF Serving has them). On SST's own text it changes nothing.
_NORMALIZATION = (
    (r"n't\b", " n't"),
    (r"'(s|re|ve|ll|d|m)\b", r" '\1"),
    (r"\.\.\.", " ... "),
    (r"([!?;:()\"])", r" \1 "),
    (r",(\s|$)", r" ,\1"),          # not inside numbers (10,000)
    (r"([^.\s])\.\s*$", r"\1 ."),  # the final full stop, not "mr." or "u.s."
    (r"\s+", " "),
)


@keras.saving.register_keras_serializable(package="zoo")
class SentimentClassifier(keras.Model):
    """Embedding → BiLSTM → attentive pooling → MLP → class logits.

    The pooling is Lin et al. 2017's structured self-attention (`attention="structured"`: `hops`
    distributions `A = softmax(W_s2 tanh(W_s1 Hᵀ))` with the penalty `‖A Aᵀ − I‖²_F`) or any
    layer of `zoo.attention` scoring the tokens against `hops` learned queries
    (`AttentionPooling`). The `hops` pooled vectors are concatenated and classified by a ReLU
    MLP. Dropout is applied to the embeddings, the BiLSTM outputs and the MLP's hidden layer;
    word dropout (training only) turns whole tokens into the unknown-subword id first.

    Args:
        vocab_size: int, subword vocabulary size (id 0 is padding).
        embedding_dim: int.
        lstm_units: int, LSTM units per direction.
        attention: "structured" or a name from `zoo.attention.names()`.
        attention_options: dict, keyword arguments of the `zoo.attention` layer.
        hops: int, attention distributions (`r`).
        attention_units: int, `d_a` of the structured scorer.
        penalty: float, Frobenius penalty coefficient.
        mlp_units: int, hidden units of the MLP.
        dropout: float, dropout rate.
        word_dropout: float, the fraction of (non-padding) tokens replaced by the unknown id
            in training (Iyyer et al. 2015; Bowman et al. 2016), so no single word can decide.
        labels: list of class names (index = class id).
        max_tokens: int, texts are cut to this many subwords.
        lowercase: bool, lower-case raw text before tokenizing (SST is lower-cased).
        tokenizer: optional base64 SentencePiece model (see `SubwordTokenizer`), carried in the
            config so a `.keras` file is a complete classifier.
        **kwargs: forwarded to `keras.Model`.

    Call arguments:
        ids: int `[batch, S]`, 0-padded subword ids (`encode_texts`).
        training: bool.

    Returns:
        logits `[batch, len(labels)]`.

    Example:
    >>> model = zoo.build("sentiment", tokenizer=tokenizer)
    >>> model.predict_texts(["a gorgeous , witty film"])["labels"]
    """

    task = "sentiment"

    def __init__(self, vocab_size=8000, embedding_dim=300, lstm_units=256,
                 attention=STRUCTURED, attention_options=None, hops=4, attention_units=128,
                 penalty=0.3, mlp_units=512, dropout=0.5, word_dropout=0.0,
                 labels=("negative", "positive"), max_tokens=128, lowercase=True,
                 tokenizer=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.lstm_units = lstm_units
        self.attention_name = attention
        self.attention_options = dict(attention_options or {})
        self.hops = hops
        self.attention_units = attention_units
        self.penalty = penalty
        self.mlp_units = mlp_units
        self.dropout = dropout
        self.word_dropout = word_dropout
        self.labels = [str(label) for label in labels]
        self.max_tokens = max_tokens
        self.lowercase = lowercase
        self.tokenizer_b64 = tokenizer
        self.tokenizer = SubwordTokenizer.from_base64(tokenizer) if tokenizer else None
        self._compiled = {}  # the traced `classify` of `predict_texts`
        # Created only when used: models saved without it keep loading (it has seed state).
        self.word_dropout_layer = (keras.layers.Dropout(word_dropout, name="word_dropout")
                                   if word_dropout else None)
        self.encoder = RecurrentEncoder(vocab_size, embedding_dim, lstm_units, num_layers=1,
                                        bidirectional=True, dropout=dropout, name="encoder")
        self.encoder_dropout = keras.layers.Dropout(dropout, name="encoder_dropout")
        if attention == STRUCTURED:
            if self.attention_options:
                raise ValueError("attention_options apply to zoo.attention layers, not to "
                                 f"{STRUCTURED!r} (it takes attention_units, hops, penalty)")
            self.pooling = StructuredSelfAttention(attention_units, hops, penalty,
                                                   name="pooling")
        else:
            self.pooling = AttentionPooling(attention, self.attention_options, hops,
                                            penalty=penalty, name="pooling")
        self.hidden = keras.layers.Dense(mlp_units, activation="relu", name="mlp_hidden")
        self.hidden_dropout = keras.layers.Dropout(dropout, name="mlp_dropout")
        # float32 logits under a mixed precision policy: the loss needs their precision.
        self.classifier = keras.layers.Dense(len(self.labels), name="classifier",
                                             dtype="float32")

    def build(self, input_shape=None):
        self.encoder.build((None, None))
        memory_shape = (None, None, self.encoder.output_dim)
        self.pooling.build(memory_shape)
        pooled_shape = self.pooling.compute_output_spec(
            keras.KerasTensor((1, 1, self.encoder.output_dim)))[0].shape
        self.hidden.build((None, self.hops * pooled_shape[-1]))
        self.classifier.build((None, self.mlp_units))
        self.built = True

    def forward(self, ids, training=None):
        """ids `[batch, S]` → `(logits [batch, classes], weights [batch, hops, S])`."""
        memory, mask, _ = self.encoder(self.drop_words(ids, training), training=training)
        memory = self.encoder_dropout(memory, training=training)
        pooled, weights = self.pooling(memory, mask=mask, training=training)
        flat = ops.reshape(pooled, (ops.shape(pooled)[0], -1))
        hidden = self.hidden_dropout(self.hidden(flat), training=training)
        return self.classifier(hidden), weights

    def drop_words(self, ids, training=None):
        """Word dropout: in training, each real token becomes `UNK_ID` with probability
        `word_dropout`; padding and inference are untouched."""
        if not training or self.word_dropout_layer is None:
            return ids
        kept = self.word_dropout_layer(ops.ones(ops.shape(ids)), training=True)
        dropped = ops.logical_and(ops.equal(kept, 0), ops.not_equal(ids, PAD_ID))
        return ops.where(dropped, ops.cast(UNK_ID, ids.dtype), ids)

    def call(self, ids, training=None):
        return self.forward(ids, training=training)[0]

    def classify(self, ids):
        """Inference on ids `[batch, S]` (XLA-compilable): dict of `logits`, `probabilities`
        `[batch, classes]` and `attention` `[batch, hops, S]`."""
        logits, weights = self.forward(ids, training=False)
        probabilities = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        return {"logits": logits, "probabilities": probabilities,
                "attention": ops.cast(weights, "float32")}

    # -- raw strings in -----------------------------------------------------------------------
    @staticmethod
    def normalize(texts, lowercase=True):
        """Raw strings → SST's text form (lower-cased, punctuation and clitics split off)."""
        texts = tf.convert_to_tensor(texts, tf.string)
        if lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        for pattern, rewrite in _NORMALIZATION:
            texts = tf.strings.regex_replace(texts, pattern, rewrite)
        return tf.strings.strip(texts)

    def tokenize(self, texts):
        """Raw strings → RaggedTensor of subword ids, cut to `max_tokens`."""
        self._require_tokenizer()
        ragged = self.tokenizer.tokenize(self.normalize(texts, self.lowercase))
        return ragged[:, : self.max_tokens]

    def encode_texts(self, texts, pad_to_multiple=8):
        """Raw strings → 0-padded ids `[batch, S]`, S a multiple of `pad_to_multiple` (≥ 1)."""
        ids = self.tokenize(texts).to_tensor(default_value=PAD_ID)
        length = tf.maximum(tf.shape(ids)[1], 1)
        padded = (length + pad_to_multiple - 1) // pad_to_multiple * pad_to_multiple
        return tf.pad(ids, [[0, 0], [0, padded - tf.shape(ids)[1]]])

    def token_strings(self, ids):
        """Subword strings of `ids` `[batch, S]`, "" on padding."""
        pieces = self.tokenizer.id_to_string(ids)
        return tf.where(tf.equal(ids, PAD_ID), tf.constant(""), pieces)

    def predict_texts(self, texts, batch_size=64):
        """Classify raw strings (eager convenience; export for serving).

        Returns a dict: `labels` (list of class names), `probabilities` (`[n, classes]`
        array), `attention` (per text a `[hops, tokens]` array) and `tokens` (per text its
        subword strings).
        """
        texts = list(texts)
        if "classify" not in self._compiled:
            self._compiled["classify"] = tf.function(self.classify, reduce_retracing=True)
        probabilities, attention, tokens = [], [], []
        for start in range(0, len(texts), batch_size):
            ids = self.encode_texts(tf.constant(texts[start:start + batch_size]))
            result = self._compiled["classify"](ids)
            probabilities.append(result["probabilities"].numpy())
            lengths = np.sum(ids.numpy() != PAD_ID, axis=1)
            strings = self.token_strings(ids).numpy()
            for row, length in enumerate(lengths):
                attention.append(result["attention"][row, :, :length].numpy())
                tokens.append([t.decode("utf-8") for t in strings[row, :length]])
        probabilities = (np.concatenate(probabilities) if probabilities
                         else np.zeros((0, len(self.labels)), np.float32))
        labels = [self.labels[i] for i in np.argmax(probabilities, axis=-1)]
        return {"labels": labels, "probabilities": probabilities, "attention": attention,
                "tokens": tokens}

    def set_tokenizer(self, tokenizer):
        self.tokenizer = tokenizer
        self.tokenizer_b64 = tokenizer.to_base64()

    def _require_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer: train it (zoo train) or call "
                             "model.set_tokenizer(SubwordTokenizer...) first")

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
            "lstm_units": self.lstm_units, "attention": self.attention_name,
            "attention_options": self.attention_options, "hops": self.hops,
            "attention_units": self.attention_units, "penalty": self.penalty,
            "mlp_units": self.mlp_units, "dropout": self.dropout,
            "word_dropout": self.word_dropout, "labels": self.labels,
            "max_tokens": self.max_tokens, "lowercase": self.lowercase,
            "tokenizer": self.tokenizer_b64,
        })
        return config
