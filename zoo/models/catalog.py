"""Catalog of model builders: each registered name maps to a builder class."""

import difflib

from zoo import config as config_lib

_BUILDERS = {}


def register_model(cls):
    """Class decorator: add a builder (a class with `name`, `task`, `defaults()`, `build()`)."""
    if cls.name in _BUILDERS:
        raise ValueError(f"model {cls.name!r} is already registered to {_BUILDERS[cls.name]}")
    _BUILDERS[cls.name] = cls
    return cls


def list_models():
    """Sorted names of every registered model."""
    return sorted(_BUILDERS)


def get_builder(name):
    if name not in _BUILDERS:
        close = difflib.get_close_matches(name, list_models(), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Registered models: "
                         f"{', '.join(list_models())}")
    return _BUILDERS[name]


def resolve_config(name_or_path, overrides=None):
    """The full config of a model: builder defaults ← `configs/<name>.yaml` ← `overrides`.

    `name_or_path` is a registered name or the path of a YAML file whose `model` key names one.
    """
    overrides = dict(overrides or {})
    if str(name_or_path).endswith((".yaml", ".yml")):
        path = name_or_path
        file_config = config_lib.load_yaml(path)
        if "model" not in file_config:
            raise config_lib.ConfigError(f"{path}: missing key 'model' (the builder's name)")
        name = file_config["model"]
    else:
        name = name_or_path
        path = config_lib.CONFIG_DIR / f"{name}.yaml"
        get_builder(name)
        file_config = config_lib.load_yaml(path) if path.exists() else {"model": name}
    builder = get_builder(name)
    # Keys every model takes whatever its builder declares (the training strategy); imported
    # here because zoo.training imports this module.
    from zoo.training import distribution, trainer

    defaults = {**distribution.DEFAULTS, **trainer.DEFAULTS, **builder.defaults()}
    resolved = config_lib.merge(defaults, file_config, str(path))
    resolved = config_lib.merge(resolved, overrides, "overrides")
    resolved["model"] = name
    builder.validate(resolved)
    distribution.validate(resolved)
    trainer.validate(resolved)  # `best_by`, `ema_momentum`: raises before any run starts
    return resolved


def build(name, tokenizer=None, **overrides):
    """Build the registered model `name`, its YAML config merged with `overrides`."""
    config = resolve_config(name, overrides)
    return get_builder(config["model"]).build(config, tokenizer=tokenizer)
