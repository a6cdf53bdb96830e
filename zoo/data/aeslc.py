"""AESLC (Annotated Enron Subject Line Corpus) reader: e-mail body -> subject line.

Files (under `$ZOO_DATA_DIR/summarization/`, see its `SOURCE.md`): UTF-8 TSV with a header.

| split | file | columns | rows |
|---|---|---|---|
| `train` | `train.tsv` | `id source target` | 14,421 |
| `test` | `test.tsv` | `id source target ann0 ann1 ann2` | 1,906 |

Each example is a dict:

    {"id": str, "source": str, "target": str, "annotations": [str, ...]}

`source` is the e-mail body (whitespace already collapsed), `target` the original subject line
(the reference used by PEGASUS / TFDS `aeslc` for ROUGE), `annotations` the three
human-written subject lines of the test set (`[]` for train). Ids must be unique per file.
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo.data.errors import DataError
from zoo.data.lines import check_limit, iter_tsv
from zoo.data.paths import split_file

__all__ = ["COLUMNS", "COLUMNS_ANNOTATED", "SPLITS", "load_aeslc", "read_aeslc"]

SPLITS = {"train": "train.tsv", "test": "test.tsv"}
COLUMNS = ("id", "source", "target")
COLUMNS_ANNOTATED = ("id", "source", "target", "ann0", "ann1", "ann2")


def read_aeslc(path: str | os.PathLike[str], limit: int | None = None) -> list[dict]:
    """Read an AESLC TSV file (either column layout, chosen by its header), validating each line.

    Args:
        path: the TSV file.
        limit: return at most this many examples (the first ones; reading stops there).

    Raises:
        DataError: wrong header, wrong field count, an empty field or a duplicate id.
    """
    limit = check_limit(limit)
    path = Path(path)
    examples: list[dict] = []
    if limit == 0:
        return examples
    seen: dict[str, int] = {}
    for number, fields in iter_tsv(path, [COLUMNS, COLUMNS_ANNOTATED]):
        names = COLUMNS if len(fields) == len(COLUMNS) else COLUMNS_ANNOTATED
        for name, value in zip(names, fields, strict=True):
            if not value.strip():
                raise DataError(path, number, f"empty {name!r} field")
        eid = fields[0]
        if eid in seen:
            raise DataError(path, number, f"duplicate id {eid!r} (first on line {seen[eid]})")
        seen[eid] = number
        examples.append(
            {"id": eid, "source": fields[1], "target": fields[2], "annotations": fields[3:]}
        )
        if limit is not None and len(examples) >= limit:
            break
    return examples


def load_aeslc(split: str = "train", limit: int | None = None) -> list[dict]:
    """Load an AESLC split (`"train"` or `"test"`) from `$ZOO_DATA_DIR/summarization/`."""
    return read_aeslc(split_file("AESLC", "summarization", SPLITS, split), limit=limit)
