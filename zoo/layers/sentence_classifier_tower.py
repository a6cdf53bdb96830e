"""One attentive sentence classifier: embedding → BiLSTM → attentive pooling → MLP → logits."""

import keras
from keras import ops

from zoo.attention.base_attention import ArgumentConfig
from zoo.layers.attention_pooling import AttentionPooling
from zoo.layers.recurrent_encoder import RecurrentEncoder
from zoo.layers.structured_self_attention import StructuredSelfAttention
from zoo.text import PAD_ID, UNK_ID

STRUCTURED = "structured"


@keras.saving.register_keras_serializable(package="zoo")
class SentenceClassifierTower(ArgumentConfig, keras.layers.Layer):
    """Token ids → class logits and the pooling's attention weights.

    The pooling is Lin et al. 2017's structured self-attention (`attention="structured"`: `hops`
    distributions `A = softmax(W_s2 tanh(W_s1 Hᵀ))` with the penalty `‖A Aᵀ − I‖²_F`) or any
    layer of `zoo.attention` scoring the tokens against `hops` learned queries
    (`AttentionPooling`). The `hops` pooled vectors are concatenated and classified by a ReLU
    MLP. Dropout is applied to the embeddings, the BiLSTM outputs and the MLP's hidden layer;
    word dropout (training only) turns whole tokens into the unknown id first.
    `SentimentClassifier` holds one tower, or several as an ensemble.

    Args:
        vocab_size: int, vocabulary size (subwords or words; id 0 is padding).
        embedding_dim: int.
        lstm_units: int, LSTM units per direction.
        attention: "structured" or a name from `zoo.attention.names()`.
        attention_options: dict, keyword arguments of the `zoo.attention` layer.
        hops: int, attention distributions (`r`).
        attention_units: int, `d_a` of the structured scorer.
        penalty: float, Frobenius penalty coefficient.
        mlp_units: int, hidden units of the MLP.
        num_classes: int.
        dropout: float, dropout rate.
        word_dropout: float, the fraction of (non-padding) tokens replaced by the unknown id
            in training (Iyyer et al. 2015; Bowman et al. 2016), so no single word can decide.
        embedding_dropout: float or None, the dropout rate on the embeddings (None:
            `dropout`).
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        ids: int `[batch, S]`, 0-padded token ids.
        training: bool.

    Returns:
        `(logits [batch, num_classes], weights [batch, hops, S])`; padding gets zero weight.

    Example:

    ```python
    tower = SentenceClassifierTower(vocab_size=50, embedding_dim=8, lstm_units=4, hops=2,
                                    attention_units=4, mlp_units=8)
    logits, weights = tower(np.array([[5, 6, 7, 0]]))
    ```
    """

    def __init__(self, vocab_size, embedding_dim=300, lstm_units=256, attention=STRUCTURED,
                 attention_options=None, hops=4, attention_units=128, penalty=0.3,
                 mlp_units=512, num_classes=2, dropout=0.5, word_dropout=0.0,
                 embedding_dropout=None, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        self.attention_options = dict(attention_options or {})
        # Created only when used (it has seed state).
        self.word_dropout_layer = (keras.layers.Dropout(word_dropout, name="word_dropout")
                                   if word_dropout else None)
        self.encoder = RecurrentEncoder(vocab_size, embedding_dim, lstm_units, num_layers=1,
                                        bidirectional=True, name="encoder",
                                        dropout=dropout if embedding_dropout is None
                                        else embedding_dropout)
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
        self.classifier = keras.layers.Dense(num_classes, name="classifier", dtype="float32")

    def build(self, ids_shape=None):
        self.encoder.build((None, None))
        memory_shape = (None, None, self.encoder.output_dim)
        self.pooling.build(memory_shape)
        pooled_shape = self.pooling.compute_output_spec(
            keras.KerasTensor((1, 1, self.encoder.output_dim)))[0].shape
        self.hidden.build((None, self.hops * pooled_shape[-1]))
        self.classifier.build((None, self.mlp_units))
        self.built = True

    def call(self, ids, training=None):
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

    def compute_output_spec(self, ids, training=None):
        batch, length = ids.shape
        return (keras.KerasTensor((batch, self.num_classes)),
                keras.KerasTensor((batch, self.hops, length)))
