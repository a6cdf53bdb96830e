"""One registry class for every catalog of the zoo: attention layers, models, tasks, decoding
strategies and serving modules (in the style of OpenNMT-tf's `ClassRegistry`)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` Did you mean: a, b?` for the choices closest to `name`, or "" when none is close."""
    close = difflib.get_close_matches(str(name), sorted(choices), n=3, cutoff=0.4)
    return f" Did you mean: {', '.join(close)}?" if close else ""


class Registry:
    """Classes of one kind, each under a unique name.

    A plug-in registers itself with the one decorator shape, `@REGISTRY.register("name")`;
    the built-in plug-ins are the modules listed in `builtins`, imported on the first lookup
    (here and nowhere else), so importing a registry never imports its plug-ins' dependencies.

    Args:
        kind: what the registry holds, for messages ("attention", "model", ...).
        builtins: modules that register the built-in classes.

    Example:

    ```python
    STRATEGIES = Registry("decoding strategy", builtins=("zoo.decoding.greedy_search",))

    @STRATEGIES.register("greedy")
    class GreedySearch: ...

    STRATEGIES.get("greedy")  # GreedySearch; STRATEGIES.get("gredy") -> "Did you mean: greedy?"
    ```
    """

    def __init__(self, kind: str, builtins: Iterable[str] = ()):
        self.kind = kind
        self.builtins = tuple(builtins)
        self._classes: dict[str, type] = {}
        self._builtins_loaded = not self.builtins

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator adding a class under `name` (also set as its `registered_name`)."""

        def decorator(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered to "
                                 f"{self._classes[name]}")
            self._classes[name] = cls
            cls.registered_name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def get(self, name: str) -> Any:
        """The class registered as `name`; a ValueError names the close and the known ones."""
        self._load_builtins()
        if name not in self._classes:
            raise ValueError(f"unknown {self.kind} {name!r}.{did_you_mean(name, self._classes)}"
                             f" Registered: {', '.join(self.names())}")
        return self._classes[name]

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """An instance of the class registered as `name`."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """Sorted names of every registered class."""
        self._load_builtins()
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True  # first: a built-in module may look itself up on import
        for module in self.builtins:
            importlib.import_module(module)
