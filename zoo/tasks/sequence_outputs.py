"""What the text → text tasks (translation, summarization) share: batched decoding, the
decoding keys of a config, subword strings of ids."""

import numpy as np
import tensorflow as tf

from zoo import options
from zoo.config import ConfigError


def batched_translate(model, sources, batch_size=64):
    """Greedy translations of `sources`, batched by length (fewer padded shapes, less padding)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    outputs = [None] * len(sources)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        for index, text in zip(chunk, model.translate([sources[i] for i in chunk]), strict=True):
            outputs[index] = text
    return outputs


def token_strings(tokenizer, ids):
    """Subword strings of one row of ids, padding dropped."""
    ids = np.asarray(ids)
    ids = ids[ids != 0]
    return [t.decode("utf-8") for t in tokenizer.id_to_string(tf.constant(ids)).numpy()]


# The decoding keys of zoo.options a model applies when it decodes (val_decoding is the
# trainer's); a model takes those it has as attributes.
DECODING_KEYS = tuple(key for key in options.DECODING if key != "val_decoding")


def apply_decoding_config(model, config):
    """The config's decoding keys (e.g. `zoo evaluate --set decoding=beam`) on the model."""
    for key in DECODING_KEYS:
        if key in config and hasattr(model, key):
            setattr(model, key, config[key])


def with_decoding(model, overrides):
    """Set `model` to decode as `overrides` say (decoding keys only: `zoo export --set
    decoding=greedy`), checked like a config's values.

    Raises:
        ConfigError: a key that is not one of the model's decoding keys, or a bad value.
    """
    keys = [key for key in DECODING_KEYS if hasattr(model, key)]
    unknown = sorted(set(overrides) - set(keys))
    if unknown:
        raise ConfigError(f"key {unknown[0]!r} is not a decoding key of this model; it takes "
                          f"{', '.join(keys) or 'none'}")
    config = {key: getattr(model, key) for key in keys} | dict(overrides)
    options.validate(config)
    apply_decoding_config(model, config)
    return model
