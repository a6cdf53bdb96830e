"""Data errors, the data directory, and line-checked TSV / JSONL iteration.

Every reader in :mod:`zoo.data` validates each line of its file and reports the first bad one as
a :class:`DataError` whose message starts with ``"{path}:{line}: "`` (1-based line numbers, the
header being line 1), so that a broken file is reported where an editor can jump to it::

    /data/sentiment/train.tsv:7: expected 2 tab-separated fields (sentence, label), got 3

The data root comes from the ``ZOO_DATA_DIR`` environment variable (see :func:`data_dir`);
nothing is ever downloaded or copied into the repository.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_DIR_ENV",
    "DataDirError",
    "DataError",
    "check_limit",
    "data_dir",
    "data_file",
    "iter_jsonl",
    "iter_lines",
    "iter_tsv",
    "require_keys",
    "require_text",
]

#: Name of the environment variable that points at the shared data root.
DATA_DIR_ENV = "ZOO_DATA_DIR"


class DataError(ValueError):
    """A data file holds a line that does not have the documented format.

    Attributes:
        path: the offending file.
        line: 1-based line number (the header, if any, is line 1), or ``None`` when the problem
            concerns the file as a whole (e.g. it is empty).
        reason: the message without the ``path:line:`` prefix.
    """

    def __init__(self, path: str | os.PathLike[str], line: int | None, reason: str):
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # keep picklable (multiprocessing, pytest-xdist) despite custom __init__
        return (type(self), (self.path, self.line, self.reason))


class DataDirError(RuntimeError):
    """``ZOO_DATA_DIR`` is unset or does not name an existing directory (or a file is missing)."""


def data_dir() -> Path:
    """Return the data root named by ``$ZOO_DATA_DIR`` as a :class:`~pathlib.Path`.

    Raises:
        DataDirError: the variable is unset/empty or the directory does not exist. The message
            names the variable and the usual location (``../shared/data`` relative to the repo).
    """
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    hint = (
        f"set {DATA_DIR_ENV} to the shared data directory, usually ../shared/data relative to "
        f"the repository root (e.g. export {DATA_DIR_ENV}=$(realpath ../shared/data))"
    )
    if not value:
        raise DataDirError(f"environment variable {DATA_DIR_ENV} is not set; {hint}")
    root = Path(value).expanduser()
    if not root.is_dir():
        raise DataDirError(
            f"{DATA_DIR_ENV}={value!r} is not an existing directory"
            f" (resolved to {root.resolve()}); {hint}"
        )
    return root


def data_file(*parts: str) -> Path:
    """``data_dir() / parts...``, raising :class:`DataDirError` if that file does not exist."""
    path = data_dir().joinpath(*parts)
    if not path.is_file():
        raise DataDirError(
            f"data file {path} not found under {DATA_DIR_ENV}={os.environ[DATA_DIR_ENV]!r}"
        )
    return path


def check_limit(limit: int | None) -> int | None:
    """Validate a reader's ``limit`` argument (``None`` = everything, else an int >= 0)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be None or a non-negative int, got {limit!r}")
    return limit


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of a UTF-8 file, without the line ending.

    Only ``\\n`` ends a line (a trailing ``\\r`` from CRLF files is dropped); a line that is not
    valid UTF-8 raises :class:`DataError` with its number.
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
    """Yield ``(line_number, fields)`` for the data rows of a TSV file, checking field counts.

    Args:
        path: the file.
        columns: the column names (used in messages and, with ``header=True``, to check the
            header line). A sequence of alternatives (e.g. ``[("id", "source", "target"),
            ("id", "source", "target", "ann0", "ann1", "ann2")]``) accepts any one of them; the
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
    """Yield ``(line_number, object)`` for each line of a JSON Lines file.

    Every line must hold one JSON object; blank lines, invalid JSON and non-objects raise
    :class:`DataError`.
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
    """Raise :class:`DataError` unless ``obj`` has exactly the keys ``keys``."""
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
    """Return ``value`` if it is a non-blank string, else raise :class:`DataError`."""
    if not isinstance(value, str):
        raise DataError(path, number, f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(path, number, f"{what} is empty")
    return value
