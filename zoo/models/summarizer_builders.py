"""Registered summarization builders: the pointer-generator with coverage on AESLC
(`summarizer`) and on DialogSum (`summarizer_dialogsum`); the same keys, other defaults."""

from typing import ClassVar

from zoo.config import ConfigError
from zoo.models.catalog import MODELS, ModelBuilder
from zoo.models.pointer_generator import PointerGenerator
from zoo.options import Option

DATASETS = ("aeslc", "dialogsum")  # the readers of zoo.tasks.summarization.SummarizationTask


@MODELS.register("summarizer")
class Summarizer(ModelBuilder):
    """Pointer-generator with coverage (See et al. 2017) on AESLC: e-mail body → subject."""

    model_class = PointerGenerator
    derived: ClassVar[dict] = {"max_source_length": lambda config: config["max_source_subwords"]}

    task = "summarization"
    overrides: ClassVar[dict] = {
        "dataset": "aeslc",
        # the other corpora: AESLC's own file holds the validation e-mails (held out of train)
        "word_vector_corpora": ["qa", "dialogsum", "mt"],
        "beam_width": 4,
        "epochs": 10,
        "clip_norm": 2.0,
        "label_smoothing": 0.0,
    }

    @classmethod
    def architecture(cls):
        return {
            "attention": Option("additive", "fixed: Bahdanau scores with the coverage "
                                "feature"),
            "embedding_dim": Option(128, "token embedding size"),
            "encoder_units": Option(256, "LSTM units per encoder direction"),
            "decoder_units": Option(256, "decoder LSTM units"),
            "attention_units": Option(128, "additive-score MLP units (its [batch, S, units] "
                                      "is per step; null: decoder_units)"),
            "coverage": Option(True, "the coverage feature and loss (See et al. 2017)"),
            "coverage_loss_weight": Option(1.0, "weight of the coverage loss, >= 0"),
            "dropout": Option(0.1, "dropout rate, in [0, 1)"),
            "members": Option(1, "> 1: a deep ensemble of that many pointer-generators"),
        }

    @classmethod
    def validate(cls, config):
        for key in ("embedding_dim", "encoder_units", "decoder_units", "members"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        if config["dataset"] not in DATASETS:
            raise ConfigError(f"key 'dataset' must be one of {', '.join(DATASETS)}, got "
                              f"{config['dataset']!r}")
        if config["attention"] != "additive":
            raise ConfigError(f"key 'attention': {cls.registered_name} uses additive attention "
                              f"with coverage, got {config['attention']!r}")
        if config["attention_units"] is not None and config["attention_units"] <= 0:
            raise ConfigError("key 'attention_units' must be positive or null")
        if not 0 <= config["dropout"] < 1:
            raise ConfigError(f"key 'dropout' must be in [0, 1), got {config['dropout']}")
        for key in ("coverage_loss_weight", "label_smoothing"):
            if config[key] < 0:
                raise ConfigError(f"key {key!r} must be >= 0, got {config[key]}")


@MODELS.register("summarizer_dialogsum")
class DialogSumSummarizer(Summarizer):
    """The same pointer-generator on DialogSum: dialogue → multi-sentence summary."""

    overrides: ClassVar[dict] = Summarizer.overrides | {
        "dataset": "dialogsum",
        "max_source_subwords": 320,
        "max_target_subwords": 80,
        "max_summary_length": 96,
        "word_vector_corpora": ["qa", "summarization", "mt"],
    }
