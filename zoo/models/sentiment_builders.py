"""Registered sentiment builders: `sentiment` (Lin et al. 2017 structured self-attention) and
one `sentiment_<attention>` per layer of `zoo.attention`, pooling with learned queries. They
share data, training and every other key, so their runs compare side by side."""

from typing import ClassVar

from zoo import attention as attention_lib
from zoo.config import ConfigError
from zoo.models.catalog import MODELS, ModelBuilder
from zoo.models.sentiment_classifier import STRUCTURED, SentimentClassifier
from zoo.options import Option

# Monotonic attention is soft in training and hard at inference; pre-sigmoid noise (Raffel et
# al. 2017 use std 1) drives its stopping probabilities to 0/1 so the two agree.
ATTENTION_OPTIONS = {"monotonic": {"sigmoid_noise": 1.0}}


@MODELS.register("sentiment")
class SentimentBuilder(ModelBuilder):
    """Builds a `SentimentClassifier` from a flat config; subclasses pick the pooling."""

    model_class = SentimentClassifier

    task = "sentiment"
    default_attention = STRUCTURED
    overrides: ClassVar[dict] = {
        "dataset": "sst2",  # see zoo/tasks/sentiment.py for the validation split
        # the unlabeled English the word vectors learn from besides the training sentences
        "word_vector_corpora": ["qa", "summarization", "dialogsum", "mt"],
        "epochs": 10,
        "learning_rate": 1e-3,
        "heatmaps": 6,
    }

    @classmethod
    def architecture(cls):
        return {
            "embedding_dim": Option(300, "token embedding size"),
            "lstm_units": Option(256, "units of each BiLSTM direction"),
            "attention": Option(cls.default_attention, f"the pooling: {STRUCTURED!r} (Lin et "
                                "al. 2017) or a zoo.attention layer over learned queries"),
            "attention_options": Option(dict(ATTENTION_OPTIONS.get(cls.default_attention, {})),
                                        "keyword arguments of the zoo.attention layer"),
            "hops": Option(4, "attention hops (pooled vectors)"),
            "attention_units": Option(128, "units of the structured self-attention MLP"),
            "penalty": Option(0.3, "weight of the hops' redundancy penalty, >= 0"),
            "mlp_units": Option(512, "units of the classifier's hidden layer"),
            "dropout": Option(0.5, "dropout rate, in [0, 1)"),
            "word_dropout": Option(0.0, "fraction of tokens replaced by the unknown id in "
                                 "training, in [0, 1)"),
            "embedding_dropout": Option(None, "dropout on the embeddings, in [0, 1) (null: "
                                        "`dropout`)"),
            "members": Option(1, "> 1: a deep ensemble of that many classifiers (mean "
                              "probability)"),
        }

    @classmethod
    def validate(cls, config):
        for key in ("embedding_dim", "lstm_units", "hops", "attention_units", "mlp_units",
                    "members"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        for key in ("dropout", "word_dropout", "embedding_dropout"):
            if config[key] is not None and not 0 <= config[key] < 1:
                raise ConfigError(f"key {key!r} must be in [0, 1), got {config[key]}")
        if not 0 <= config["label_smoothing"] < 1:
            raise ConfigError(f"key 'label_smoothing' must be in [0, 1), got "
                              f"{config['label_smoothing']}")
        if config["penalty"] < 0:
            raise ConfigError(f"key 'penalty' must be >= 0, got {config['penalty']}")
        attention = config["attention"]
        if attention != STRUCTURED and attention not in attention_lib.names():
            raise ConfigError(f"key 'attention': unknown pooling {attention!r}; use "
                              f"{STRUCTURED!r} or one of {', '.join(attention_lib.names())}")
        if attention == STRUCTURED and config["attention_options"]:
            raise ConfigError(f"key 'attention_options' applies to zoo.attention layers; "
                              f"attention={STRUCTURED!r} takes attention_units, hops, penalty")
        if config["dataset"] != "sst2":
            raise ConfigError(f"key 'dataset': the sentiment task reads 'sst2', got "
                              f"{config['dataset']!r}")


# One builder per attention layer of the library: `sentiment_additive`, `sentiment_cosine`, ...
for _attention in attention_lib.names():
    _class_name = f"Sentiment{_attention.title().replace('_', '')}Builder"
    MODELS.register(f"sentiment_{_attention}")(type(_class_name, (SentimentBuilder,), {
        "default_attention": _attention,
        "__doc__": f"BiLSTM sentiment classifier pooling with {_attention!r} attention over "
                   "learned queries.",
    }))
