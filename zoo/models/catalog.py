"""The catalog of models: each registered name maps to a builder class.

A builder subclasses `ModelBuilder` and registers itself with `@MODELS.register("name")`; the
built-in builders are the modules of `MODELS.builtins`, imported on the first lookup.

Example:

```python
import zoo

config = zoo.resolve_config("luong_translator", {"epochs": 1})
model = zoo.build("luong_translator", epochs=1)
```
"""

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import keras

from zoo import config as config_lib
from zoo import options
from zoo.options import Option
from zoo.registry import Registry
from zoo.tasks import TASKS
from zoo.text import SubwordTokenizer, WordTokenizer

MODELS = Registry("model", builtins=(
    "zoo.models.translator_builders",
    "zoo.models.summarizer_builders",
    "zoo.models.qa_builders",
    "zoo.models.sentiment_builders",
    "zoo.models.responder_builders",
))


class ModelBuilder:
    """What a registered model declares: its task, its architecture keys, the shared defaults it
    overrides, its checks and how to build it.

    Attributes:
        registered_name: set by `@MODELS.register("name")`; the config's `model` key.
        task: the registered task (`zoo.tasks`) that trains and scores the model.
        overrides: defaults of shared options (`zoo.options`) in which this model differs.
    """

    registered_name: ClassVar[str]
    task: ClassVar[str]
    overrides: ClassVar[dict] = {}
    model_class: ClassVar[type]
    # Constructor arguments computed from the config, where no key of their name holds them.
    derived: ClassVar[dict[str, Callable[[dict], Any]]] = {}

    @classmethod
    def architecture(cls) -> dict[str, Option]:
        """The model's own keys, with their defaults and meaning."""
        return {}

    @classmethod
    def defaults(cls) -> dict:
        """Every key the model takes, at its default (`zoo.options.defaults`)."""
        return options.defaults(cls.task, cls.architecture(), cls.overrides,
                                model=cls.registered_name)

    @classmethod
    def validate(cls, config: dict) -> None:
        """Raise `zoo.config.ConfigError` for a bad architecture value (the shared options are
        checked by `zoo.options.validate`)."""

    @classmethod
    def model_arguments(cls, config: dict, tokenizer=None) -> dict[str, Any]:
        """`model_class`'s arguments: every config key its constructor names (architecture,
        decoding, data), the `derived` ones, the vocabulary size and tokenizer (those of
        `tokenizer` when given) and the registered name."""
        takes = constructor_parameters(cls.model_class)
        arguments = {key: value for key, value in config.items() if key in takes}
        arguments |= {key: derive(config) for key, derive in cls.derived.items()}
        if tokenizer is not None:
            arguments |= {"vocab_size": tokenizer.vocab_size, "tokenizer": tokenizer.to_base64()}
        return arguments | {"name": config["model"]}

    @classmethod
    def build(cls, config: dict, tokenizer=None):
        """The Keras model of a resolved `config` (its vocabulary from `tokenizer` if given),
        its weights created."""
        model = cls.model_class(**cls.model_arguments(config, tokenizer))
        model.build()
        return model


def constructor_parameters(model_class: type) -> set[str]:
    """The names a zoo model's constructor takes, its base classes' included while each
    passes `**kwargs` on (Keras's own `Model` arguments are not config keys)."""
    names: set[str] = set()
    for klass in model_class.__mro__:
        if "__init__" not in vars(klass) or not klass.__module__.startswith("zoo."):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names - {"self"}


def list_models() -> list[str]:
    """Sorted names of every registered model."""
    return MODELS.names()


def get_builder(name: str) -> type[ModelBuilder]:
    """The builder class registered as `name`; a ValueError names close and known ones."""
    return MODELS.get(name)


def resolve_config(name_or_path: str | os.PathLike,
                   overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full config of a model: its defaults ← `configs/<name>.yaml` ← `overrides`.

    Args:
        name_or_path: a registered name, or the path of a YAML file whose `model` key names one.
        overrides: keys set over the file's (e.g. `zoo train --set`).

    Returns:
        The flat, checked config.

    Raises:
        zoo.config.ConfigError: an unknown key (naming the allowed ones), a value of the wrong
            type or one its rule rejects.
    """
    overrides = dict(overrides or {})
    if str(name_or_path).endswith((".yaml", ".yml")):
        path = name_or_path
        file_config = config_lib.load_yaml(path)
        if "model" not in file_config:
            raise config_lib.ConfigError(f"{path}: missing key 'model' (the builder's name)")
        name = file_config["model"]
    else:
        name = str(name_or_path)
        path = config_lib.CONFIG_DIR / f"{name}.yaml"
        get_builder(name)
        file_config = config_lib.load_yaml(path) if path.exists() else {"model": name}
    builder = get_builder(name)
    resolved = config_lib.merge(builder.defaults(), file_config, str(path))
    resolved = config_lib.merge(resolved, overrides, "overrides")
    resolved["model"] = name
    builder.validate(resolved)
    options.validate(resolved)  # the shared keys: training, decoding, data, distribution
    _validate_best_by(resolved)
    return resolved


def _validate_best_by(config):
    """`best_by` names the validation loss or the validation score of the model's task."""
    choices = ("val_loss", f"val_{TASKS.get(config['task']).headline}")
    if config["best_by"] not in choices:
        raise config_lib.ConfigError(f"key 'best_by' must be one of {', '.join(choices)}, got "
                                     f"{config['best_by']!r}")


def build(name: str, tokenizer: SubwordTokenizer | WordTokenizer | None = None,
          **overrides: Any) -> keras.Model:
    """Build the registered model `name`, its YAML config merged with `overrides`."""
    config = resolve_config(name, overrides)
    return get_builder(config["model"]).build(config, tokenizer=tokenizer)
