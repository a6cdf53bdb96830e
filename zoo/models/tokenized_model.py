"""What the zoo's raw-text models share: a tokenizer carried in the config, in-graph
tokenization helpers, and a config written from a list of fields."""

import tensorflow as tf

from zoo.text import EOS_ID, PAD_ID, tokenizer_from_base64


class TokenizedModel:
    """Mixin of a `keras.Model` that tokenizes raw strings in its graph (translators,
    summarizers, readers, sentiment classifiers).

    The tokenizer travels in the config as base64 of its saved form (`tokenizer`: a
    SentencePiece model, or a word vocabulary with `tokenization: word`), so a
    `.keras` file is a complete model; the model's `__init__` calls `_init_tokenizer` with it.

    `get_config` is Keras's base config followed by the `config_fields` of every class in the
    hierarchy, base classes first: each field is an attribute name, or a `(config key,
    attribute)` pair where they differ (`("tokenizer", "tokenizer_b64")`). `from_config` is
    Keras's default (`cls(**config)`).

    Example:

    ```python
    class MyReader(TokenizedModel, keras.Model):
        config_fields = ("units", ("tokenizer", "tokenizer_b64"))

        def __init__(self, units=8, tokenizer=None, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self._init_tokenizer(tokenizer)
    ```
    """

    config_fields = ()

    def _init_tokenizer(self, tokenizer):
        """Keep `tokenizer` (base64 saved tokenizer, or None) and the tokenizer it is."""
        self.tokenizer_b64 = tokenizer
        self.tokenizer = tokenizer_from_base64(tokenizer) if tokenizer else None

    def set_tokenizer(self, tokenizer):
        """Use `tokenizer` (a `SubwordTokenizer` or `WordTokenizer`) from now on, and save it
        with the model."""
        self.tokenizer = tokenizer
        self.tokenizer_b64 = tokenizer.to_base64()

    def _require_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer: train it (zoo train) or call "
                             "model.set_tokenizer(SubwordTokenizer...) first")

    def token_strings(self, ids):
        """Subword strings of `ids` `[batch, S]`, "" on padding."""
        pieces = self.tokenizer.id_to_string(ids)
        return tf.where(tf.equal(ids, PAD_ID), tf.constant(""), pieces)

    def get_config(self):
        config = super().get_config()
        for cls in reversed(type(self).__mro__):
            for field in vars(cls).get("config_fields", ()):
                key, attribute = (field, field) if isinstance(field, str) else field
                config[key] = getattr(self, attribute)
        return config


def with_eos(ragged):
    """Ragged ids `[batch, (n)]` with EOS appended to every row."""
    eos = tf.fill([ragged.nrows(), 1], EOS_ID)
    return tf.concat([ragged, tf.RaggedTensor.from_tensor(eos)], axis=1)


def pad_width(ids, multiple, at_least_one=False):
    """Dense ids `[batch, S]` padded with `PAD_ID` to a width that is a multiple of `multiple`
    (with `at_least_one`, never width 0: one `multiple` at least)."""
    length = tf.shape(ids)[1]
    groups = (length + multiple - 1) // multiple
    if at_least_one:
        groups = tf.maximum(groups, 1)
    return tf.pad(ids, [[0, 0], [0, groups * multiple - length]])
