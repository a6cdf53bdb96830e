"""Catalog of attention layers: `register` a class under a name, `get` it back by name.

The catalog is a `zoo.registry.Registry`; the built-in layers are the modules in its
`builtins`, one per layer, named after it.
"""

from typing import Any

from zoo.attention.base_attention import BaseAttention
from zoo.registry import Registry

ATTENTIONS = Registry("attention", builtins=(
    "zoo.attention.additive",
    "zoo.attention.cosine",
    "zoo.attention.hard",
    "zoo.attention.local",
    "zoo.attention.location_sensitive",
    "zoo.attention.luong_concat",
    "zoo.attention.luong_dot",
    "zoo.attention.luong_general",
    "zoo.attention.monotonic",
    "zoo.attention.multi_head",
    "zoo.attention.scaled_dot_product",
))

register = ATTENTIONS.register  # class decorator: `@register("name")`
names = ATTENTIONS.names  # sorted names of every registered attention layer
get_class = ATTENTIONS.get  # the class registered as `name`


def get(name: str, /, **kwargs: Any) -> BaseAttention:
    """Instantiate the attention layer registered as `name` with `kwargs`."""
    return ATTENTIONS.create(name, **kwargs)
