"""SST-2 (GLUE binary sentiment) reader.

Files (under `$ZOO_DATA_DIR/sentiment/`, see its `SOURCE.md`): UTF-8 TSV with header
`sentence<TAB>label`, then `<lower-cased PTB-tokenized text><TAB><0|1>` (1 = positive).

| split | file | rows |
|---|---|---|
| `train` | `train.tsv` | 67,349 |
| `test` | `test.tsv` (= GLUE dev; the GLUE test set has no labels) | 872 |

Each example is a dict `{"sentence": str, "label": int}`.
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo.data.errors import DataError
from zoo.data.lines import check_limit, iter_tsv
from zoo.data.paths import split_file

__all__ = ["COLUMNS", "LABELS", "SPLITS", "load_sst2", "read_sst2"]

SPLITS = {"train": "train.tsv", "test": "test.tsv"}
COLUMNS = ("sentence", "label")
LABELS = {"0": 0, "1": 1}


def read_sst2(path: str | os.PathLike[str], limit: int | None = None) -> list[dict]:
    """Read an SST-2 TSV file, validating every line (header, 2 fields, text, label 0/1).

    Args:
        path: the TSV file.
        limit: return at most this many examples (the first ones; reading stops there).

    Raises:
        DataError: a malformed line, reported as `"{path}:{line}: ..."`.
    """
    limit = check_limit(limit)
    path = Path(path)
    examples: list[dict] = []
    if limit == 0:
        return examples
    for number, (sentence, label) in iter_tsv(path, COLUMNS):
        if not sentence.strip():
            raise DataError(path, number, "empty sentence")
        if label not in LABELS:
            raise DataError(path, number, f"label must be 0 or 1, got {label!r}")
        examples.append({"sentence": sentence, "label": LABELS[label]})
        if limit is not None and len(examples) >= limit:
            break
    return examples


def load_sst2(split: str = "train", limit: int | None = None) -> list[dict]:
    """Load an SST-2 split (`"train"` or `"test"`) from `$ZOO_DATA_DIR/sentiment/`."""
    return read_sst2(split_file("SST-2", "sentiment", SPLITS, split), limit=limit)
