"""Model configs: a builder's defaults, with `configs/<name>.yaml` and user overrides merged over.

Configs are flat `key: value` mappings (they become MLflow params as they are). Every key a
user gives must be one of the builder's defaults, and its value must have the default's type.
The keys themselves are defined in `zoo.options` (shared) and in each builder (architecture);
`docs/configuration.md` lists them all.
"""

from pathlib import Path

import yaml

from zoo.registry import did_you_mean

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config key or value the builder does not accept."""


def load_yaml(path):
    """The mapping a YAML config file holds (`{}` for an empty file); ConfigError otherwise."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def parse_assignment(text):
    """`"key=value"` (as given to `--set`) → `(key, value)`, the value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def _check_type(key, value, default, source):
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"{source}: key {key!r} expects {type(default).__name__} (default {default!r}), "
            f"got {value!r}"
        )
    return value


def merge(defaults, updates, source):
    """Return `defaults` updated with `updates`, rejecting unknown keys and wrong types."""
    merged = dict(defaults)
    for key, value in updates.items():
        if key not in defaults:
            raise ConfigError(
                f"{source}: unknown config key {key!r}.{did_you_mean(key, defaults)} "
                f"Allowed keys: {', '.join(sorted(defaults))}"
            )
        merged[key] = _check_type(key, value, defaults[key], source)
    return merged
