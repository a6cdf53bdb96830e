"""Registered summarization builders: the pointer-generator with coverage on AESLC
(`summarizer`) and on DialogSum (`summarizer_dialogsum`); the same keys, other defaults."""

from typing import ClassVar

from zoo.config import ConfigError
from zoo.models.catalog import register_model
from zoo.models.pointer_generator import PointerGenerator
from zoo.models.translator_base import DECODINGS
from zoo.models.word_vector_keys import validate_word_vector_keys, word_vector_defaults

DATASETS = ("aeslc", "dialogsum")  # the readers of zoo.tasks.summarization.SummarizationTask


@register_model
class Summarizer:
    """Pointer-generator with coverage (See et al. 2017) on AESLC: e-mail body → subject."""

    name = "summarizer"
    task = "summarization"
    dataset_defaults: ClassVar[dict] = {"dataset": "aeslc", "max_source_subwords": 200,
                                        "max_target_subwords": 32, "max_summary_length": 32}
    # the other corpora: AESLC's own file holds the validation e-mails (held out of train)
    word_vector_corpora = ("qa", "dialogsum", "mt")

    @classmethod
    def defaults(cls):
        return {
            "model": cls.name,
            "task": cls.task,
            # data
            "dataset": "aeslc",
            "train_limit": None,
            "eval_limit": None,
            "valid_size": 500,  # held out of train (neither set has a validation split here)
            "lowercase": True,
            "max_source_subwords": 200,  # longer sources are cut (after this many subwords)
            "max_target_subwords": 32,   # longer reference summaries are cut for training
            "vocab_size": 8000,
            # architecture
            "attention": "additive",  # fixed: Bahdanau scores with the coverage feature
            "embedding_dim": 128,
            "encoder_units": 256,
            "decoder_units": 256,
            "attention_units": 128,  # additive-score MLP: its [batch, S, units] is per step
            "coverage": True,
            "coverage_loss_weight": 1.0,
            "dropout": 0.1,
            "members": 1,  # > 1: a deep ensemble of that many pointer-generators
            # embedding init: skip-gram vectors of the pieces, learned from the training
            # split's sources and summaries and these corpora's unlabeled English
            **word_vector_defaults(cls.word_vector_corpora),
            # decoding (summaries, validation and test ROUGE; export serves greedy_decode)
            "max_summary_length": 32,
            "max_length_ratio": 1.5,
            "trigram_blocking": True,
            "decoding": "greedy",
            "beam_width": 4,
            "length_penalty": 0.0,
            "coverage_penalty": 0.0,
            "n_best": 1,
            # training
            "batch_size": 64,
            "epochs": 10,
            "time_budget_minutes": 0.0,
            "learning_rate": 2e-3,
            "warmup_steps": 200,
            "final_lr_fraction": 0.05,
            "clip_norm": 2.0,
            "ema_momentum": 0.0,  # > 0: evaluate and keep the weights' moving average
            "label_smoothing": 0.0,
            "jit_compile": False,
            "precision": "float32",  # or mixed_bfloat16 (training only; exports are float32)
            "seed": 0,
            "intra_op_threads": 0,
            "inter_op_threads": 0,
            # evaluation and artifacts
            "val_rouge_limit": 500,
            "heatmaps": 4,
            "samples": 20,
        } | cls.dataset_defaults

    @classmethod
    def validate(cls, config):
        for key in ("batch_size", "epochs", "vocab_size", "max_source_subwords",
                    "max_target_subwords", "max_summary_length", "embedding_dim",
                    "encoder_units", "decoder_units", "beam_width", "n_best", "valid_size",
                    "members"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        validate_word_vector_keys(config)
        if config["dataset"] not in DATASETS:
            raise ConfigError(f"key 'dataset' must be one of {', '.join(DATASETS)}, got "
                              f"{config['dataset']!r}")
        if config["attention"] != "additive":
            raise ConfigError(f"key 'attention': {cls.name} uses additive attention with "
                              f"coverage, got {config['attention']!r}")
        if config["attention_units"] is not None and config["attention_units"] <= 0:
            raise ConfigError("key 'attention_units' must be positive or null")
        if not 0 <= config["dropout"] < 1:
            raise ConfigError(f"key 'dropout' must be in [0, 1), got {config['dropout']}")
        if config["decoding"] not in DECODINGS:
            raise ConfigError(f"key 'decoding' must be one of {', '.join(DECODINGS)}, got "
                              f"{config['decoding']!r}")
        if config["n_best"] > config["beam_width"]:
            raise ConfigError(f"key 'n_best' ({config['n_best']}) must be at most beam_width "
                              f"({config['beam_width']})")
        for key in ("length_penalty", "coverage_penalty", "coverage_loss_weight",
                    "label_smoothing"):
            if config[key] < 0:
                raise ConfigError(f"key {key!r} must be >= 0, got {config[key]}")

    @classmethod
    def build(cls, config, tokenizer=None):
        vocab_size = tokenizer.vocab_size if tokenizer is not None else config["vocab_size"]
        model = PointerGenerator(
            vocab_size=vocab_size,
            embedding_dim=config["embedding_dim"],
            encoder_units=config["encoder_units"],
            decoder_units=config["decoder_units"],
            attention_units=config["attention_units"],
            coverage=config["coverage"],
            coverage_loss_weight=config["coverage_loss_weight"],
            dropout=config["dropout"],
            max_source_length=config["max_source_subwords"],
            max_summary_length=config["max_summary_length"],
            lowercase=config["lowercase"],
            trigram_blocking=config["trigram_blocking"],
            members=config["members"],
            tokenizer=tokenizer.to_base64() if tokenizer is not None else None,
            name=config["model"],
            **{key: config[key] for key in ("max_length_ratio", "decoding", "beam_width",
                                            "length_penalty", "coverage_penalty", "n_best")},
        )
        model.build()
        return model


@register_model
class DialogSumSummarizer(Summarizer):
    """The same pointer-generator on DialogSum: dialogue → multi-sentence summary."""

    name = "summarizer_dialogsum"
    dataset_defaults: ClassVar[dict] = {"dataset": "dialogsum", "max_source_subwords": 320,
                                        "max_target_subwords": 80, "max_summary_length": 96}
    word_vector_corpora = ("qa", "summarization", "mt")
