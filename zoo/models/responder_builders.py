"""Registered dialogue builders: the responder (a recurrent encoder-decoder with Luong
attention over the last turns) and its no-attention baseline of the same size; both on
DialogSum's dialogues cut into (history → next turn) pairs (`zoo.tasks.dialogue`)."""

from typing import ClassVar

from zoo.config import ConfigError
from zoo.models.catalog import MODELS
from zoo.models.responder import Responder
from zoo.models.translator_builders import RNNTranslatorBuilder

DATASETS = ("dialogsum",)  # the corpora zoo.tasks.dialogue cuts into pairs


@MODELS.register("responder")
class ResponderBuilder(RNNTranslatorBuilder):
    """Bi-LSTM encoder, LSTM decoder with Luong "general" attention over the history's
    subwords; beam search with trigram blocking."""

    task = "dialogue"
    model_class = Responder
    derived: ClassVar[dict] = {  # the history's last subwords and EOS; the reply's and EOS
        "max_source_tokens": lambda config: config["max_history_subwords"] + 1,
        "max_decode_steps": lambda config: config["max_response_subwords"] + 1,
    }
    default_attention = "luong_general"
    overrides: ClassVar[dict] = {"dataset": "dialogsum"}

    @classmethod
    def validate(cls, config):
        super().validate(config)
        if config["dataset"] not in DATASETS:
            raise ConfigError(f"key 'dataset' must be one of {', '.join(DATASETS)}, got "
                              f"{config['dataset']!r}")


@MODELS.register("responder_no_attention")
class ResponderNoAttention(ResponderBuilder):
    """The same encoder-decoder without attention (Vinyals & Le 2015): the decoder starts from
    the encoder's final states and never looks at the history again."""

    default_attention = None
