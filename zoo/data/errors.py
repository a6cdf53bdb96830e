"""The two errors of the data readers: a bad line of a file, a missing data directory.

Every reader in `zoo.data` validates each line of its file and reports the first bad one as a
`DataError` whose message starts with `"{path}:{line}: "` (1-based line numbers, the header
being line 1), so that a broken file is reported where an editor can jump to it:

    /data/sentiment/train.tsv:7: expected 2 tab-separated fields (sentence, label), got 3
"""

from __future__ import annotations

import os
from pathlib import Path


class DataError(ValueError):
    """A data file holds a line that does not have the documented format.

    Attributes:
        path: the offending file.
        line: 1-based line number (the header, if any, is line 1), or `None` when the problem
            concerns the file as a whole (e.g. it is empty).
        reason: the message without the `path:line:` prefix.
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
    """`ZOO_DATA_DIR` is unset or does not name an existing directory (or a file is missing)."""
