"""Building blocks of the zoo's models."""

from zoo.layers.attention_decoder import AttentionDecoder
from zoo.layers.attention_pooling import AttentionPooling
from zoo.layers.quantizable_lstm_cell import QuantizableLSTMCell
from zoo.layers.recurrent_encoder import RecurrentEncoder
from zoo.layers.sentence_classifier_tower import SentenceClassifierTower
from zoo.layers.structured_self_attention import StructuredSelfAttention
from zoo.layers.transformer import (
    PositionalEmbedding,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    sinusoidal_positions,
)

__all__ = [
    "AttentionDecoder",
    "AttentionPooling",
    "PositionalEmbedding",
    "QuantizableLSTMCell",
    "RecurrentEncoder",
    "SentenceClassifierTower",
    "StructuredSelfAttention",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "sinusoidal_positions",
]
