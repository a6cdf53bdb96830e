"""Building blocks of the zoo's models."""

from zoo.layers.attention_decoder import AttentionDecoder
from zoo.layers.recurrent_encoder import RecurrentEncoder

__all__ = ["AttentionDecoder", "RecurrentEncoder"]
