"""DialogSum (dialogue summarization) reader.

Files (under `$ZOO_DATA_DIR/dialogsum/`, see its `SOURCE.md`): UTF-8 JSON Lines, one dialogue
per line.

| split | file | line format | dialogues |
|---|---|---|---|
| `train` | `train.jsonl` | `{"id", "dialogue", "summary", "topic"}` | 12,426 |
| `test` | `test.jsonl` | `{"id", "dialogue", "summaries": [3], "topics": [3]}` | 500 |

Both layouts are normalised to:

    {"id": str, "dialogue": str, "summary": str, "summaries": [str, ...],
     "topic": str, "topics": [str, ...]}

where `summary` / `topic` are the first reference (`summary1`, the one the published
BART-large baseline is scored against) and `summaries` / `topics` hold all references (one
for train). `dialogue` keeps its turns separated by `\\n` (speakers `#Person1#:` ...).
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo.data.errors import DataError
from zoo.data.lines import check_limit, iter_jsonl, require_keys, require_text
from zoo.data.paths import split_file

__all__ = ["SPLITS", "load_dialogsum", "read_dialogsum"]

SPLITS = {"train": "train.jsonl", "test": "test.jsonl"}

_SINGLE_KEYS = ("id", "dialogue", "summary", "topic")
_MULTI_KEYS = ("id", "dialogue", "summaries", "topics")


def _text_list(path: Path, number: int, value, what: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise DataError(path, number, f"{what!r} must be a non-empty list of strings")
    return [require_text(path, number, v, f"{what}[{i}]") for i, v in enumerate(value)]


def read_dialogsum(path: str | os.PathLike[str], limit: int | None = None) -> list[dict]:
    """Read a DialogSum JSONL file (single- or multi-reference layout), validating each line.

    Args:
        path: the JSONL file.
        limit: return at most this many dialogues (the first ones; reading stops there).

    Raises:
        DataError: bad JSON, a line in neither layout, empty text, `summaries` and `topics`
            of different lengths, or a duplicate id.
    """
    limit = check_limit(limit)
    path = Path(path)
    examples: list[dict] = []
    if limit == 0:
        return examples
    seen: dict[str, int] = {}
    for number, obj in iter_jsonl(path):
        keys = _MULTI_KEYS if "summaries" in obj else _SINGLE_KEYS
        require_keys(path, number, obj, keys, "dialogue record")
        eid = require_text(path, number, obj["id"], "id")
        if eid in seen:
            raise DataError(path, number, f"duplicate id {eid!r} (first on line {seen[eid]})")
        seen[eid] = number
        dialogue = require_text(path, number, obj["dialogue"], "dialogue")
        if keys is _MULTI_KEYS:
            summaries = _text_list(path, number, obj["summaries"], "summaries")
            topics = _text_list(path, number, obj["topics"], "topics")
            if len(summaries) != len(topics):
                raise DataError(
                    path,
                    number,
                    f"{len(summaries)} summaries but {len(topics)} topics (expected equal counts)",
                )
        else:
            summaries = [require_text(path, number, obj["summary"], "summary")]
            topics = [require_text(path, number, obj["topic"], "topic")]
        examples.append(
            {
                "id": eid,
                "dialogue": dialogue,
                "summary": summaries[0],
                "summaries": summaries,
                "topic": topics[0],
                "topics": topics,
            }
        )
        if limit is not None and len(examples) >= limit:
            break
    return examples


def load_dialogsum(split: str = "train", limit: int | None = None) -> list[dict]:
    """Load a DialogSum split (`"train"` or `"test"`) from `$ZOO_DATA_DIR/dialogsum/`."""
    return read_dialogsum(split_file("DialogSum", "dialogsum", SPLITS, split), limit=limit)
