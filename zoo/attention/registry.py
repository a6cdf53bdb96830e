"""Catalog of attention layers: `register` a class under a name, `get` it back by name."""

import difflib

_ATTENTIONS = {}


def register(name):
    """Class decorator adding an attention layer to the catalog under `name`."""

    def decorator(cls):
        if name in _ATTENTIONS:
            raise ValueError(f"attention {name!r} is already registered to {_ATTENTIONS[name]}")
        _ATTENTIONS[name] = cls
        cls.registered_name = name
        return cls

    return decorator


def names():
    """Sorted names of every registered attention layer."""
    return sorted(_ATTENTIONS)


def get_class(name):
    if name not in _ATTENTIONS:
        close = difflib.get_close_matches(name, names(), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown attention {name!r}.{hint} Registered: {', '.join(names())}"
        )
    return _ATTENTIONS[name]


def get(name, /, **kwargs):
    """Instantiate the attention layer registered as `name` with `kwargs`."""
    return get_class(name)(**kwargs)
