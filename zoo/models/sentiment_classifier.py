"""Sentence classifier: BiLSTM + attentive pooling (Lin et al. 2017) + MLP, one or an ensemble."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.layers import SentenceClassifierTower
from zoo.layers.sentence_classifier_tower import STRUCTURED
from zoo.models.ensemble import MemberLossMixin, mean_log_probability
from zoo.models.tokenized_model import TokenizedModel, pad_width
from zoo.text import PAD_ID
from zoo.text.sst_normalization import normalize_sst


# Raw text → the lower-cased, PTB-tokenized form of SST (`it 's`, `does n't`, `great !`), with
# core string ops only (TF Serving has them). On SST's own text it changes nothing.
@keras.saving.register_keras_serializable(package="zoo")
class SentimentClassifier(MemberLossMixin, TokenizedModel, keras.Model):
    """Raw text → tokens → `members` attentive classifiers → class probabilities.

    Each member is a `SentenceClassifierTower` (embedding → BiLSTM → attentive pooling → MLP;
    the pooling is Lin et al. 2017's structured self-attention or any layer of
    `zoo.attention`). With `members > 1` the model is a deep ensemble (Lakshminarayanan et al.
    2017): the members differ only in their random initialisation and dropout masks, each is
    trained on its own loss (the training loss is the mean of the members' losses, so none
    leans on the others), and the model predicts their mean probability; the attention it
    returns is the members' mean. One member is the plain classifier.

    Args:
        vocab_size, embedding_dim, lstm_units, attention, attention_options, hops,
            attention_units, penalty (of each member's loss), mlp_units, dropout,
            word_dropout, embedding_dropout: each member's, as `SentenceClassifierTower`
            documents them.
        members: int, classifiers in the ensemble (1 = a single classifier).
        labels: list of class names (index = class id).
        max_tokens: int, texts are cut to this many tokens.
        lowercase: bool, lower-case raw text before tokenizing (SST is lower-cased).
        tokenizer: optional base64 saved tokenizer (`SubwordTokenizer`, `WordTokenizer`), in the
            config so a `.keras` file is a complete classifier.
        **kwargs: forwarded to `keras.Model`.

    Call arguments:
        ids: int `[batch, S]`, 0-padded token ids (`encode_texts`).
        training: bool.

    Returns:
        logits `[batch, len(labels)]`: the log of the members' mean probability (the logits
        themselves for one member). In training with `members > 1`, each member's logits,
        `[batch, members, len(labels)]`, for `compute_loss` to score separately.

    Example:

    ```python
    model = zoo.build("sentiment", tokenizer=tokenizer)
    model.predict_texts(["a gorgeous , witty film"])["labels"]
    ```
    """

    task = "sentiment"
    member_output_rank = 3  # [batch, members, classes] in training
    config_fields = ("vocab_size", "embedding_dim", "lstm_units", ("attention", "attention_name"),
                     "attention_options", "hops", "attention_units", "penalty", "mlp_units",
                     "dropout", "word_dropout", "embedding_dropout", "members", "labels",
                     "max_tokens", "lowercase", ("tokenizer", "tokenizer_b64"))

    def __init__(self, vocab_size=8000, embedding_dim=300, lstm_units=256,
                 attention=STRUCTURED, attention_options=None, hops=4, attention_units=128,
                 penalty=0.3, mlp_units=512, dropout=0.5, word_dropout=0.0,
                 embedding_dropout=None, members=1,
                 labels=("negative", "positive"), max_tokens=128, lowercase=True,
                 tokenizer=None, **kwargs):
        super().__init__(**kwargs)
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
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
        self.embedding_dropout = embedding_dropout
        self.members = members
        self.labels = [str(label) for label in labels]
        self.max_tokens = max_tokens
        self.lowercase = lowercase
        self._init_tokenizer(tokenizer)
        self._compiled = {}  # the traced `classify` of `predict_texts`
        # Each member adds its Frobenius penalty to the model's losses (summed by Keras);
        # divided by `members`, the total is the members' mean loss, as for cross-entropy.
        self.towers = [
            SentenceClassifierTower(
                vocab_size, embedding_dim, lstm_units, attention, self.attention_options,
                hops, attention_units, penalty / members, mlp_units, len(self.labels),
                dropout, word_dropout, embedding_dropout, name=f"tower_{index}")
            for index in range(members)]

    def build(self, input_shape=None):
        for tower in self.towers:
            tower.build((None, None))
        self.built = True

    def forward(self, ids, training=None):
        """ids `[batch, S]` → `(logits, weights [batch, hops, S])`: one classifier's logits
        `[batch, classes]`, or each member's `[batch, members, classes]` with the weights
        averaged over the members."""
        outputs = [tower(ids, training=training) for tower in self.towers]
        if self.members == 1:
            return outputs[0]
        logits = ops.stack([logit for logit, _ in outputs], axis=1)
        weights = ops.mean(ops.stack([ops.cast(w, "float32") for _, w in outputs], 1), 1)
        return logits, weights

    def drop_words(self, ids, training=None):
        """The first member's word dropout (each member draws its own)."""
        return self.towers[0].drop_words(ids, training=training)

    def call(self, ids, training=None):
        logits = self.forward(ids, training=training)[0]
        if self.members == 1 or training:  # an ensemble in training: each member's
            return logits
        return mean_log_probability(logits)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if len(y_pred.shape) == self.member_output_rank:  # training an ensemble: its accuracy
            y_pred = mean_log_probability(y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def classify(self, ids):
        """Inference on ids `[batch, S]` (XLA-compilable): dict of `logits`, `probabilities`
        `[batch, classes]` and `attention` `[batch, hops, S]`."""
        logits, weights = self.forward(ids, training=False)
        if self.members > 1:
            logits = mean_log_probability(logits)
        probabilities = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        return {"logits": logits, "probabilities": probabilities,
                "attention": ops.cast(weights, "float32")}

    # -- raw strings in -----------------------------------------------------------------------
    normalize = staticmethod(normalize_sst)

    def tokenize(self, texts):
        """Raw strings → RaggedTensor of token ids, cut to `max_tokens`."""
        self._require_tokenizer()
        ragged = self.tokenizer.tokenize(self.normalize(texts, self.lowercase))
        return ragged[:, : self.max_tokens]

    def encode_texts(self, texts, pad_to_multiple=8):
        """Raw strings → 0-padded ids `[batch, S]`, S a multiple of `pad_to_multiple` (≥ 1)."""
        ids = self.tokenize(texts).to_tensor(default_value=PAD_ID)
        return pad_width(ids, pad_to_multiple, at_least_one=True)

    def predict_texts(self, texts, batch_size=64):
        """Classify raw strings (eager convenience; export for serving).

        Returns a dict: `labels` (list of class names), `probabilities` (`[n, classes]`
        array), `attention` (per text a `[hops, tokens]` array) and `tokens` (per text its
        token strings).
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
