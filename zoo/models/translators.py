"""Registered translation builders: one per attention variant, the no-attention baseline and
a Transformer. Every builder shares the data, training and decoding keys, so their YAMLs
differ only in the architecture."""

from typing import ClassVar

from zoo import attention as attention_lib
from zoo.config import ConfigError
from zoo.models.catalog import register_model
from zoo.models.rnn_translator import RNNTranslator
from zoo.models.transformer_translator import TransformerTranslator
from zoo.models.translator_base import DECODINGS


class TranslatorBuilder:
    """Shared defaults and checks of the translation builders (subclasses add the
    architecture: `architecture_defaults`, `validate_architecture`, `build`)."""

    name = None
    task = "translation"

    @classmethod
    def architecture_defaults(cls):
        return {}

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
            **cls.architecture_defaults(),
            "max_length_ratio": 1.5,
            # serving bounds (translate and the export): sources cut to this many ids, EOS
            # included; decoding stops after min(max_length_ratio · S + 10, max_decode_steps)
            "max_source_tokens": 128,
            "max_decode_steps": 200,
            # decoding (translate and the test BLEU; export serves greedy_decode)
            "decoding": "greedy",
            "beam_width": 5,
            "length_penalty": 0.0,
            "coverage_penalty": 0.0,
            "n_best": 1,
            # the validation BLEU logged each epoch: a progress signal (the best epoch is picked
            # by validation loss), so greedy by default, whose cost stays off the time budget
            "val_decoding": "greedy",
            # training
            "batch_size": 64,
            "epochs": 5,
            "time_budget_minutes": 0.0,
            "learning_rate": 2e-3,
            "warmup_steps": 200,
            "final_lr_fraction": 0.05,
            "clip_norm": 1.0,
            "ema_momentum": 0.0,  # > 0: evaluate and keep the weights' moving average
            "label_smoothing": 0.1,
            "jit_compile": False,  # train step; see configs/luong_translator.yaml
            "precision": "float32",  # or mixed_bfloat16 (training only; exports are float32)
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
        for key in ("batch_size", "epochs", "vocab_size", "max_subwords", "beam_width",
                    "n_best", "max_decode_steps"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        if config["max_source_tokens"] < 2:
            raise ConfigError("key 'max_source_tokens' must be >= 2 (a subword and EOS), got "
                              f"{config['max_source_tokens']}")
        if not 0 <= config["dropout"] < 1:
            raise ConfigError(f"key 'dropout' must be in [0, 1), got {config['dropout']}")
        for key in ("decoding", "val_decoding"):
            if config[key] not in DECODINGS:
                raise ConfigError(f"key {key!r} must be one of {', '.join(DECODINGS)}, got "
                                  f"{config[key]!r}")
        if config["n_best"] > config["beam_width"]:
            raise ConfigError(f"key 'n_best' ({config['n_best']}) must be at most beam_width "
                              f"({config['beam_width']})")
        for key in ("length_penalty", "coverage_penalty"):
            if config[key] < 0:
                raise ConfigError(f"key {key!r} must be >= 0, got {config[key]}")
        cls.validate_architecture(config)

    @classmethod
    def validate_architecture(cls, config):
        pass

    @classmethod
    def decoding_kwargs(cls, config):
        return {key: config[key] for key in ("max_length_ratio", "decoding", "beam_width",
                                             "length_penalty", "coverage_penalty", "n_best",
                                             "max_source_tokens", "max_decode_steps")}


class RNNTranslatorBuilder(TranslatorBuilder):
    """Builds an `RNNTranslator` from a flat config; subclasses pick the attention."""

    default_attention = "luong_general"
    default_attention_options: ClassVar[dict] = {}

    @classmethod
    def architecture_defaults(cls):
        return {
            "embedding_dim": 256,
            "encoder_units": 256,
            "encoder_layers": 2,
            "bidirectional": True,
            "decoder_units": 512,
            "dropout": 0.2,
            "attention": cls.default_attention,
            "attention_options": dict(cls.default_attention_options),
            # Every weight drawn from U(-s, s) (Luong et al. 2015, the PyTorch anchor); 0 keeps
            # Keras's initializers (Glorot, orthogonal recurrent, forget-gate bias 1).
            "init_scale": 0.1,
        }

    @classmethod
    def validate_architecture(cls, config):
        attention = config["attention"]
        if attention is not None and attention not in attention_lib.names():
            raise ConfigError(f"key 'attention': unknown attention {attention!r}; registered: "
                              f"{', '.join(attention_lib.names())} (or null for none)")
        if attention is None and config["coverage_penalty"]:
            raise ConfigError("key 'coverage_penalty' needs attention weights; attention is "
                              "null")
        directions = 2 if config["bidirectional"] else 1
        if config["encoder_units"] * directions != config["decoder_units"]:
            raise ConfigError(
                f"key 'decoder_units' ({config['decoder_units']}) must equal encoder_units × "
                f"directions ({config['encoder_units']} × {directions})")

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
            init_scale=config["init_scale"],
            tokenizer=tokenizer.to_base64() if tokenizer is not None else None,
            name=config["model"],
            **cls.decoding_kwargs(config),
        )
        model.build()
        return model


@register_model
class LuongTranslator(RNNTranslatorBuilder):
    """Luong et al. 2015 global attention, "general" score (the spine's model)."""
    name = "luong_translator"
    default_attention = "luong_general"


@register_model
class LuongDotTranslator(RNNTranslatorBuilder):
    """Luong et al. 2015 global attention, "dot" score."""
    name = "luong_dot_translator"
    default_attention = "luong_dot"


@register_model
class LuongConcatTranslator(RNNTranslatorBuilder):
    """Luong et al. 2015 global attention, "concat" score."""
    name = "luong_concat_translator"
    default_attention = "luong_concat"


@register_model
class BahdanauTranslator(RNNTranslatorBuilder):
    """Bahdanau et al. 2015 additive attention."""
    name = "bahdanau_translator"
    default_attention = "additive"


@register_model
class NormedBahdanauTranslator(RNNTranslatorBuilder):
    """Additive attention with a weight-normalised score vector (Salimans & Kingma 2016)."""
    name = "normed_bahdanau_translator"
    default_attention = "additive"
    default_attention_options: ClassVar[dict] = {"normalize": True}


@register_model
class CosineTranslator(RNNTranslatorBuilder):
    """Scaled cosine attention with a learned temperature."""
    name = "cosine_translator"
    default_attention = "cosine"


@register_model
class ScaledDotTranslator(RNNTranslatorBuilder):
    """One scaled dot-product head with learned Q/K/V projections (Vaswani et al. 2017)."""
    name = "scaled_dot_translator"
    default_attention = "scaled_dot_product"


@register_model
class MultiHeadTranslator(RNNTranslatorBuilder):
    """Multi-head cross-attention (Vaswani et al. 2017) in the recurrent decoder."""
    name = "multi_head_translator"
    default_attention = "multi_head"
    default_attention_options: ClassVar[dict] = {"num_heads": 8}


@register_model
class LocalTranslator(RNNTranslatorBuilder):
    """Luong et al. 2015 local-p attention (predicted window, Gaussian-weighted)."""
    name = "local_translator"
    default_attention = "local"
    default_attention_options: ClassVar[dict] = {"mode": "p", "window_size": 10}


@register_model
class LocationTranslator(RNNTranslatorBuilder):
    """Chorowski et al. 2015 location-sensitive attention."""
    name = "location_translator"
    default_attention = "location_sensitive"


@register_model
class MonotonicTranslator(RNNTranslatorBuilder):
    """Raffel et al. 2017 monotonic attention (expected alignment in training, hard at
    inference).

    Pre-sigmoid noise of std 1 in training (the paper's recipe) pushes the stopping
    probabilities to 0 or 1, so the soft alignment it trains on is the hard one it decodes
    with (without it, validation loss in inference mode stayed 1.2 nats above the training
    loss). The score bias starts at −1, not the paper's −4: on Multi30k's ≈ 15-subword
    sources −4 would leave ≈ 75 % of the first step's mass past the end, a zero context."""
    name = "monotonic_translator"
    default_attention = "monotonic"
    default_attention_options: ClassVar[dict] = {"sigmoid_noise": 1.0, "score_bias_init": -1.0}


@register_model
class HardTranslator(RNNTranslatorBuilder):
    """Hard attention, Gumbel-softmax straight-through in training, argmax at inference."""
    name = "hard_translator"
    default_attention = "hard"


@register_model
class Seq2SeqTranslator(RNNTranslatorBuilder):
    """The no-attention baseline (Sutskever et al. 2014): the decoder starts from the
    encoder's final states and never looks at the source again."""
    name = "seq2seq_translator"
    default_attention = None


@register_model
class TransformerTranslatorBuilder(TranslatorBuilder):
    """A small Transformer (Vaswani et al. 2017): pre-norm encoder-decoder, multi-head self-
    and cross-attention, sinusoidal positions."""

    name = "transformer_translator"

    @classmethod
    def architecture_defaults(cls):
        return {
            "attention": "multi_head",  # fixed: recorded in MLflow like the RNN variants
            "d_model": 256,
            "num_layers": 3,
            "num_heads": 4,
            "ffn_dim": 1024,
            "dropout": 0.1,
        }

    @classmethod
    def validate_architecture(cls, config):
        if config["attention"] != "multi_head":
            raise ConfigError(f"key 'attention': {cls.name} uses multi_head attention "
                              f"throughout, got {config['attention']!r}")
        for key in ("d_model", "num_layers", "num_heads", "ffn_dim"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        if config["d_model"] % config["num_heads"]:
            raise ConfigError(f"key 'd_model' ({config['d_model']}) must be divisible by "
                              f"num_heads ({config['num_heads']})")

    @classmethod
    def build(cls, config, tokenizer=None):
        vocab_size = tokenizer.vocab_size if tokenizer is not None else config["vocab_size"]
        model = TransformerTranslator(
            vocab_size=vocab_size,
            d_model=config["d_model"],
            num_layers=config["num_layers"],
            num_heads=config["num_heads"],
            ffn_dim=config["ffn_dim"],
            dropout=config["dropout"],
            tokenizer=tokenizer.to_base64() if tokenizer is not None else None,
            name=config["model"],
            **cls.decoding_kwargs(config),
        )
        model.build()
        return model
