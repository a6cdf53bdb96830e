"""Attention layers, one per variant, registered by name.

```python
import zoo

zoo.attention.names()  # ["additive", "cosine", ...]
layer = zoo.attention.get("luong_general")
```

Each built-in layer (a module of `registry.ATTENTIONS.builtins`) is exported under its class
name, e.g. `zoo.attention.LuongGeneralAttention`.
"""

from zoo.attention.base_attention import BaseAttention, masked_softmax
from zoo.attention.registry import get, get_class, names, register

LAYERS = {get_class(name).__name__: get_class(name) for name in names()}
globals().update(LAYERS)

__all__ = ["BaseAttention", "get", "get_class", "masked_softmax", "names", "register",
           *sorted(LAYERS)]
