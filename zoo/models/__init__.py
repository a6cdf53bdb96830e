"""Keras models and their builders, registered by name in `catalog.MODELS` (`zoo.build`,
`zoo.list_models`); the builder modules are imported on the first lookup. Importing this
package registers every Keras model class of the zoo (for loading `.keras` files)."""

from zoo.models.bidaf_reader import BiDAFReader
from zoo.models.catalog import MODELS, ModelBuilder, build, get_builder, list_models, resolve_config
from zoo.models.pointer_generator import PointerGenerator
from zoo.models.responder import Responder
from zoo.models.rnn_translator import RNNTranslator
from zoo.models.sentiment_classifier import SentimentClassifier
from zoo.models.transformer_translator import TransformerTranslator
from zoo.models.translator_base import Translator

__all__ = ["MODELS", "BiDAFReader", "ModelBuilder", "PointerGenerator", "RNNTranslator",
           "Responder", "SentimentClassifier", "TransformerTranslator", "Translator", "build",
           "get_builder", "list_models", "resolve_config"]
