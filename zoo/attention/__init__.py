"""Attention layers, one per variant, registered by name.

```python
import zoo

zoo.attention.names()  # ["additive", "cosine", ...]
layer = zoo.attention.get("luong_general")
```
"""

from zoo.attention.additive import AdditiveAttention
from zoo.attention.base_attention import BaseAttention, masked_softmax
from zoo.attention.cosine import CosineAttention
from zoo.attention.hard import HardAttention
from zoo.attention.local import LocalAttention
from zoo.attention.location_sensitive import LocationSensitiveAttention
from zoo.attention.luong_concat import LuongConcatAttention
from zoo.attention.luong_dot import LuongDotAttention
from zoo.attention.luong_general import LuongGeneralAttention
from zoo.attention.monotonic import MonotonicAttention
from zoo.attention.multi_head import MultiHeadAttention
from zoo.attention.registry import get, get_class, names, register
from zoo.attention.scaled_dot_product import ScaledDotProductAttention

__all__ = [
    "AdditiveAttention",
    "BaseAttention",
    "CosineAttention",
    "HardAttention",
    "LocalAttention",
    "LocationSensitiveAttention",
    "LuongConcatAttention",
    "LuongDotAttention",
    "LuongGeneralAttention",
    "MonotonicAttention",
    "MultiHeadAttention",
    "ScaledDotProductAttention",
    "get",
    "get_class",
    "masked_softmax",
    "names",
    "register",
]
