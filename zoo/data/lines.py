"""Line-checked iteration over TSV and JSON Lines files: each bad line is a `DataError` that
names the file and the line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from zoo.data.errors import DataError


def check_limit(limit: int | None) -> int | None:
    """Validate a reader's `limit` argument (`None` = everything, else an int >= 0)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be None or a non-negative int, got {limit!r}")
    return limit


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, text)` for each line of a UTF-8 file, without the line ending.

    Only `\\n` ends a line (a trailing `\\r` from CRLF files is dropped); a line that is not
    valid UTF-8 raises `DataError` with its number.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    path, number, f"invalid UTF-8 ({exc.reason} at byte {exc.start})"
                ) from None
            if number == 1 and text.startswith("\ufeff"):  # tolerate a BOM
                text = text[1:]
            yield number, text


def iter_tsv(
    path: str | os.PathLike[str],
    columns: Sequence[str] | Sequence[Sequence[str]],
    *,
    header: bool = True,
) -> Iterator[tuple[int, list[str]]]:
    """Yield `(line_number, fields)` for the data rows of a TSV file, checking field counts.

    Args:
        path: the file.
        columns: the column names (used in messages and, with `header=True`, to check the
            header line). A sequence of alternatives (e.g. `[("id", "source", "target"),
            ("id", "source", "target", "ann0", "ann1", "ann2")]`) accepts any one of them; the
            header then decides which applies. Without a header, only one alternative is allowed.
        header: whether line 1 is a header that must equal one alternative exactly.

    Raises:
        DataError: empty file, wrong header, or a row whose field count differs from the header.
    """
    path = Path(path)
    alternatives = [tuple(columns)] if isinstance(columns[0], str) else [tuple(c) for c in columns]
    if not header and len(alternatives) != 1:
        raise ValueError("several column layouts need a header line to choose between them")
    expected = alternatives[0]
    saw_header = not header
    for number, text in iter_lines(path):
        fields = text.split("\t")
        if not saw_header:
            saw_header = True
            for alt in alternatives:
                if tuple(fields) == alt:
                    expected = alt
                    break
            else:
                wanted = " or ".join(repr("\t".join(alt)) for alt in alternatives)
                raise DataError(path, number, f"expected header {wanted}, got {text[:200]!r}")
            continue
        if len(fields) != len(expected):
            raise DataError(
                path,
                number,
                f"expected {len(expected)} tab-separated fields ({', '.join(expected)}),"
                f" got {len(fields)}",
            )
        yield number, fields
    if not saw_header:
        raise DataError(path, None, "file is empty (expected a header line)")


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield `(line_number, object)` for each line of a JSON Lines file.

    Every line must hold one JSON object; blank lines, invalid JSON and non-objects raise
    `DataError`.
    """
    path = Path(path)
    for number, text in iter_lines(path):
        if not text.strip():
            raise DataError(path, number, "empty line (expected one JSON object per line)")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(path, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(path, number, f"expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def require_keys(path: Path, number: int, obj: dict, keys: Sequence[str], what: str) -> None:
    """Raise `DataError` unless `obj` has exactly the keys `keys`."""
    missing = [k for k in keys if k not in obj]
    extra = sorted(k for k in obj if k not in keys)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing key(s) {missing}")
        if extra:
            parts.append(f"unexpected key(s) {extra}")
        raise DataError(path, number, f"{what}: {'; '.join(parts)} (expected {list(keys)})")


def require_text(path: Path, number: int, value: Any, what: str) -> str:
    """Return `value` if it is a non-blank string, else raise `DataError`."""
    if not isinstance(value, str):
        raise DataError(path, number, f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(path, number, f"{what} is empty")
    return value
