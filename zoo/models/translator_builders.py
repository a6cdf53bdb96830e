"""Registered translation builders: one per attention variant, the no-attention baseline and
a Transformer. Every builder shares the data, training and decoding keys (`zoo.options`), so
their YAMLs differ only in the architecture."""

from typing import ClassVar

from zoo import attention as attention_lib
from zoo.config import ConfigError
from zoo.models.catalog import MODELS, ModelBuilder
from zoo.models.rnn_translator import RNNTranslator
from zoo.models.transformer_translator import TransformerTranslator
from zoo.options import Option


class TranslatorBuilder(ModelBuilder):
    """What the translation builders share: the task and Multi30k (subclasses add the
    architecture and the model class)."""

    task = "translation"
    overrides: ClassVar[dict] = {"dataset": "multi30k"}


class RNNTranslatorBuilder(TranslatorBuilder):
    """Builds an `RNNTranslator` from a flat config; subclasses pick the attention."""

    model_class = RNNTranslator

    default_attention = "luong_general"
    default_attention_options: ClassVar[dict] = {}

    @classmethod
    def architecture(cls):
        return {
            "embedding_dim": Option(256, "token embedding size"),
            "encoder_units": Option(256, "LSTM units per encoder direction"),
            "encoder_layers": Option(2, "stacked encoder LSTM layers"),
            "bidirectional": Option(True, "bidirectional encoder"),
            "decoder_units": Option(512, "decoder LSTM units (encoder_units × directions)"),
            "dropout": Option(0.2, "dropout rate, in [0, 1)"),
            "attention": Option(cls.default_attention, "the zoo.attention layer (null: the "
                                "no-attention baseline)"),
            "attention_options": Option(dict(cls.default_attention_options),
                                        "keyword arguments of the attention layer"),
            # Luong et al. 2015, the PyTorch anchor
            "init_scale": Option(0.1, "every weight drawn from U(-s, s); 0 keeps Keras's "
                                 "initializers (Glorot, orthogonal recurrent, forget bias 1)"),
        }

    @classmethod
    def validate(cls, config):
        validate_dropout(config)
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


@MODELS.register("luong_translator")
class LuongTranslator(RNNTranslatorBuilder):
    """Luong et al. 2015 global attention, "general" score (the spine's model)."""
    default_attention = "luong_general"


@MODELS.register("luong_dot_translator")
class LuongDotTranslator(RNNTranslatorBuilder):
    """Luong et al. 2015 global attention, "dot" score."""
    default_attention = "luong_dot"


@MODELS.register("luong_concat_translator")
class LuongConcatTranslator(RNNTranslatorBuilder):
    """Luong et al. 2015 global attention, "concat" score."""
    default_attention = "luong_concat"


@MODELS.register("bahdanau_translator")
class BahdanauTranslator(RNNTranslatorBuilder):
    """Bahdanau et al. 2015 additive attention."""
    default_attention = "additive"


@MODELS.register("normed_bahdanau_translator")
class NormedBahdanauTranslator(RNNTranslatorBuilder):
    """Additive attention with a weight-normalised score vector (Salimans & Kingma 2016)."""
    default_attention = "additive"
    default_attention_options: ClassVar[dict] = {"normalize": True}


@MODELS.register("cosine_translator")
class CosineTranslator(RNNTranslatorBuilder):
    """Scaled cosine attention with a learned temperature."""
    default_attention = "cosine"


@MODELS.register("scaled_dot_translator")
class ScaledDotTranslator(RNNTranslatorBuilder):
    """One scaled dot-product head with learned Q/K/V projections (Vaswani et al. 2017)."""
    default_attention = "scaled_dot_product"


@MODELS.register("multi_head_translator")
class MultiHeadTranslator(RNNTranslatorBuilder):
    """Multi-head cross-attention (Vaswani et al. 2017) in the recurrent decoder."""
    default_attention = "multi_head"
    default_attention_options: ClassVar[dict] = {"num_heads": 8}


@MODELS.register("local_translator")
class LocalTranslator(RNNTranslatorBuilder):
    """Luong et al. 2015 local-p attention (predicted window, Gaussian-weighted)."""
    default_attention = "local"
    default_attention_options: ClassVar[dict] = {"mode": "p", "window_size": 10}


@MODELS.register("location_translator")
class LocationTranslator(RNNTranslatorBuilder):
    """Chorowski et al. 2015 location-sensitive attention."""
    default_attention = "location_sensitive"


@MODELS.register("monotonic_translator")
class MonotonicTranslator(RNNTranslatorBuilder):
    """Raffel et al. 2017 monotonic attention (expected alignment in training, hard at
    inference).

    Pre-sigmoid noise of std 1 in training (the paper's recipe) pushes the stopping
    probabilities to 0 or 1, so the soft alignment it trains on is the hard one it decodes
    with (without it, validation loss in inference mode stayed 1.2 nats above the training
    loss). The score bias starts at −1, not the paper's −4: on Multi30k's ≈ 15-subword
    sources −4 would leave ≈ 75 % of the first step's mass past the end, a zero context."""
    default_attention = "monotonic"
    default_attention_options: ClassVar[dict] = {"sigmoid_noise": 1.0, "score_bias_init": -1.0}


@MODELS.register("hard_translator")
class HardTranslator(RNNTranslatorBuilder):
    """Hard attention, Gumbel-softmax straight-through in training, argmax at inference."""
    default_attention = "hard"


@MODELS.register("seq2seq_translator")
class Seq2SeqTranslator(RNNTranslatorBuilder):
    """The no-attention baseline (Sutskever et al. 2014): the decoder starts from the
    encoder's final states and never looks at the source again."""
    default_attention = None


@MODELS.register("transformer_translator")
class TransformerTranslatorBuilder(TranslatorBuilder):
    """A small Transformer (Vaswani et al. 2017): pre-norm encoder-decoder, multi-head self-
    and cross-attention, sinusoidal positions."""

    model_class = TransformerTranslator

    @classmethod
    def architecture(cls):
        return {
            "attention": Option("multi_head", "fixed: recorded in MLflow like the RNN "
                                "variants'"),
            "d_model": Option(256, "model width"),
            "num_layers": Option(3, "encoder and decoder layers each"),
            "num_heads": Option(4, "attention heads (dividing d_model)"),
            "ffn_dim": Option(1024, "feed-forward inner size"),
            "dropout": Option(0.1, "dropout rate, in [0, 1)"),
        }

    @classmethod
    def validate(cls, config):
        validate_dropout(config)
        if config["attention"] != "multi_head":
            raise ConfigError(f"key 'attention': {cls.registered_name} uses multi_head "
                              f"attention throughout, got {config['attention']!r}")
        for key in ("d_model", "num_layers", "num_heads", "ffn_dim"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        if config["d_model"] % config["num_heads"]:
            raise ConfigError(f"key 'd_model' ({config['d_model']}) must be divisible by "
                              f"num_heads ({config['num_heads']})")


def validate_dropout(config):
    if not 0 <= config["dropout"] < 1:
        raise ConfigError(f"key 'dropout' must be in [0, 1), got {config['dropout']}")
