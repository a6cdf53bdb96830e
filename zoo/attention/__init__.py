"""Attention layers, one per variant, registered by name.

    >>> import zoo
    >>> zoo.attention.names()
    >>> layer = zoo.attention.get("luong_general")
"""

from zoo.attention.base_attention import BaseAttention, masked_softmax
from zoo.attention.luong_general import LuongGeneralAttention
from zoo.attention.registry import get, get_class, names, register

__all__ = [
    "BaseAttention",
    "LuongGeneralAttention",
    "get",
    "get_class",
    "masked_softmax",
    "names",
    "register",
]
