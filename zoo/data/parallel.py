"""The parallel corpus a translation config names (`dataset` key)."""

from zoo.data.dates import generate_dates
from zoo.data.multi30k import read_multi30k


def read_parallel(config, split):
    """`(sources, targets)` of the translation dataset a config names (`dataset` key)."""
    if config["dataset"] == "multi30k":
        limit = config["train_limit"] if split == "train" else config["eval_limit"]
        return read_multi30k(split, config["source_lang"], config["target_lang"], limit=limit)
    if config["dataset"] == "dates":
        sizes = {"train": config["train_limit"] or 20000, "valid": 500, "test": 500}
        seeds = {"train": 0, "valid": 1, "test": 2}
        limit = sizes[split] if split == "train" else (config["eval_limit"] or sizes[split])
        return generate_dates(limit, seed=seeds[split])
    raise ValueError(f"unknown translation dataset {config['dataset']!r} (multi30k, dates)")
