"""Registered translation builders: one per attention variant, plus the no-attention baseline."""

from zoo import attention as attention_lib
from zoo.config import ConfigError
from zoo.models.catalog import register_model
from zoo.models.rnn_translator import RNNTranslator


class RNNTranslatorBuilder:
    """Builds an `RNNTranslator` from a flat config (defaults below, merged under the YAML)."""

    name = "luong_translator"
    task = "translation"
    default_attention = "luong_general"

    @classmethod
    def defaults(cls):
        return {
            "model": cls.name,
            "task": cls.task,
            # data
            "dataset": "multi30k",
            "source_lang": "de",
            "target_lang": "en",
            "train_limit": None,
            "eval_limit": None,
            "max_subwords": 50,
            "vocab_size": 8000,
            # architecture
            "embedding_dim": 256,
            "encoder_units": 256,
            "encoder_layers": 2,
            "bidirectional": True,
            "decoder_units": 512,
            "dropout": 0.2,
            "attention": cls.default_attention,
            "attention_options": {},
            "max_length_ratio": 1.5,
            # training
            "batch_size": 64,
            "epochs": 5,
            "time_budget_minutes": 0.0,
            "learning_rate": 2e-3,
            "warmup_steps": 200,
            "final_lr_fraction": 0.05,
            "clip_norm": 1.0,
            "label_smoothing": 0.1,
            "jit_compile": True,
            "seed": 0,
            "intra_op_threads": 0,
            "inter_op_threads": 0,
            # evaluation and artifacts
            "val_bleu_limit": 0,
            "heatmaps": 4,
            "samples": 20,
        }

    @classmethod
    def validate(cls, config):
        attention = config["attention"]
        if attention is not None and attention not in attention_lib.names():
            raise ConfigError(f"key 'attention': unknown attention {attention!r}; registered: "
                              f"{', '.join(attention_lib.names())} (or null for none)")
        directions = 2 if config["bidirectional"] else 1
        if config["encoder_units"] * directions != config["decoder_units"]:
            raise ConfigError(
                f"key 'decoder_units' ({config['decoder_units']}) must equal encoder_units × "
                f"directions ({config['encoder_units']} × {directions})")
        for key in ("batch_size", "epochs", "vocab_size", "max_subwords"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        if not 0 <= config["dropout"] < 1:
            raise ConfigError(f"key 'dropout' must be in [0, 1), got {config['dropout']}")

    @classmethod
    def build(cls, config, tokenizer=None):
        vocab_size = tokenizer.vocab_size if tokenizer is not None else config["vocab_size"]
        model = RNNTranslator(
            vocab_size=vocab_size,
            embedding_dim=config["embedding_dim"],
            encoder_units=config["encoder_units"],
            encoder_layers=config["encoder_layers"],
            bidirectional=config["bidirectional"],
            decoder_units=config["decoder_units"],
            dropout=config["dropout"],
            attention=config["attention"],
            attention_options=config["attention_options"],
            max_length_ratio=config["max_length_ratio"],
            tokenizer=tokenizer.to_base64() if tokenizer is not None else None,
            name=config["model"],
        )
        model.build()
        return model


@register_model
class LuongTranslator(RNNTranslatorBuilder):
    name = "luong_translator"
    default_attention = "luong_general"
