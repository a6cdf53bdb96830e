"""Building blocks of the zoo's models."""

from zoo.layers.attention_decoder import AttentionDecoder
from zoo.layers.recurrent_encoder import RecurrentEncoder
from zoo.layers.transformer import (
    PositionalEmbedding,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    sinusoidal_positions,
)

__all__ = [
    "AttentionDecoder",
    "PositionalEmbedding",
    "RecurrentEncoder",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "sinusoidal_positions",
]
