"""Registered model builders (`zoo.build`, `zoo.list_models`)."""

from zoo.models import (
           readers,  # noqa: F401  (registers qa)
           sentiment_builders,  # noqa: F401  (registers the sentiment* builders)
           summarizers,  # noqa: F401  (registers summarizer, summarizer_dialogsum)
           translators,  # noqa: F401  (registers the builders)
)
from zoo.models.catalog import build, get_builder, list_models, resolve_config
from zoo.models.rnn_translator import RNNTranslator
from zoo.models.transformer_translator import TransformerTranslator
from zoo.models.translator_base import Translator

__all__ = ["RNNTranslator", "TransformerTranslator", "Translator", "build", "get_builder",
           "list_models", "resolve_config"]
