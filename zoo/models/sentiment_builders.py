"""Registered sentiment builders: `sentiment` (Lin et al. 2017 structured self-attention) and
one `sentiment_<attention>` per layer of `zoo.attention`, pooling with learned queries. They
share data, training and every other key, so their runs compare side by side."""

from zoo import attention as attention_lib
from zoo.config import ConfigError
from zoo.models.catalog import register_model
from zoo.models.sentiment_classifier import STRUCTURED, SentimentClassifier
from zoo.models.word_vector_keys import validate_word_vector_keys, word_vector_defaults

# Monotonic attention is soft in training and hard at inference; pre-sigmoid noise (Raffel et
# al. 2017 use std 1) drives its stopping probabilities to 0/1 so the two agree.
ATTENTION_OPTIONS = {"monotonic": {"sigmoid_noise": 1.0}}


class SentimentBuilder:
    """Builds a `SentimentClassifier` from a flat config; subclasses pick the pooling."""

    name = "sentiment"
    task = "sentiment"
    default_attention = STRUCTURED

    @classmethod
    def defaults(cls):
        return {
            "model": cls.name,
            "task": cls.task,
            # data (SST-2; see zoo/tasks/sentiment.py for the validation split)
            "dataset": "sst2",
            "train_limit": None,
            "eval_limit": None,
            "valid_sentences": 500,
            "max_tokens": 128,
            "lowercase": True,
            "vocab_size": 8000,
            # architecture
            "embedding_dim": 300,
            "lstm_units": 256,
            "attention": cls.default_attention,
            "attention_options": dict(ATTENTION_OPTIONS.get(cls.default_attention, {})),
            "hops": 4,
            "attention_units": 128,
            "penalty": 0.3,
            "mlp_units": 512,
            "dropout": 0.5,
            "word_dropout": 0.0,
            "members": 1,  # > 1: a deep ensemble of that many classifiers (mean probability)
            # embedding init: skip-gram vectors of the pieces, learned from the training
            # sentences and these corpora's unlabeled English
            **word_vector_defaults(["qa", "summarization", "dialogsum", "mt"]),
            # training
            "batch_size": 64,
            "epochs": 10,
            "time_budget_minutes": 0.0,
            "learning_rate": 1e-3,
            "warmup_steps": 200,
            "final_lr_fraction": 0.05,
            "clip_norm": 1.0,
            "ema_momentum": 0.0,  # > 0: evaluate and keep the weights' moving average
            "label_smoothing": 0.1,
            "weight_by_length": False,  # loss weight ∝ subwords (mean 1): sentences over phrases
            "jit_compile": False,  # train step; see configs/sentiment.yaml
            "precision": "float32",  # or mixed_bfloat16 (training only; exports are float32)
            "seed": 0,
            "intra_op_threads": 0,
            "inter_op_threads": 0,
            # evaluation and artifacts
            "heatmaps": 6,
            "samples": 20,
        }

    @classmethod
    def validate(cls, config):
        for key in ("batch_size", "epochs", "vocab_size", "max_tokens", "valid_sentences",
                    "embedding_dim", "lstm_units", "hops", "attention_units", "mlp_units",
                    "members"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        for key in ("dropout", "word_dropout"):
            if not 0 <= config[key] < 1:
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
        validate_word_vector_keys(config)
        if config["dataset"] != "sst2":
            raise ConfigError(f"key 'dataset': the sentiment task reads 'sst2', got "
                              f"{config['dataset']!r}")

    @classmethod
    def build(cls, config, tokenizer=None):
        vocab_size = tokenizer.vocab_size if tokenizer is not None else config["vocab_size"]
        model = SentimentClassifier(
            vocab_size=vocab_size,
            embedding_dim=config["embedding_dim"],
            lstm_units=config["lstm_units"],
            attention=config["attention"],
            attention_options=config["attention_options"],
            hops=config["hops"],
            attention_units=config["attention_units"],
            penalty=config["penalty"],
            mlp_units=config["mlp_units"],
            dropout=config["dropout"],
            word_dropout=config["word_dropout"],
            members=config["members"],
            max_tokens=config["max_tokens"],
            lowercase=config["lowercase"],
            tokenizer=tokenizer.to_base64() if tokenizer is not None else None,
            name=config["model"],
        )
        model.build()
        return model


register_model(SentimentBuilder)

# One builder per attention layer of the library: `sentiment_additive`, `sentiment_cosine`, ...
for _attention in attention_lib.names():
    _class_name = f"Sentiment{_attention.title().replace('_', '')}Builder"
    register_model(type(_class_name, (SentimentBuilder,), {
        "name": f"sentiment_{_attention}",
        "default_attention": _attention,
        "__doc__": f"BiLSTM sentiment classifier pooling with {_attention!r} attention over "
                   "learned queries.",
    }))
