"""Keras models and their builders, registered by name in `catalog.MODELS` (`zoo.build`,
`zoo.list_models`); the builder modules are imported on the first lookup."""

from zoo.models.catalog import MODELS, ModelBuilder, build, get_builder, list_models, resolve_config
from zoo.models.rnn_translator import RNNTranslator
from zoo.models.transformer_translator import TransformerTranslator
from zoo.models.translator_base import Translator

__all__ = ["MODELS", "ModelBuilder", "RNNTranslator", "TransformerTranslator", "Translator",
           "build", "get_builder", "list_models", "resolve_config"]
