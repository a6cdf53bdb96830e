"""Version directory names, read the way TF Serving's file-system source reads them.

TF Serving parses a child of a model's base path with `absl::SimpleAtoi` into an int64 and
ignores any child that does not parse (`tensorflow_serving/sources/storage_path/
file_system_storage_path_source.cc`). Python's `str.isdigit` is not that test: it is true
for `"²"` or `"٣"`, which `int()` then rejects or reads as a number. Everything in the zoo
that lists versions (the server, the exporter, `models.config` writing) goes through
`parse_version`, so one junk directory is skipped, never fatal.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

log = logging.getLogger("serving")

_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
_INT64_MAX = 2**63 - 1
_reported: set[str] = set()
_reported_lock = threading.Lock()


def parse_version(name: str) -> int | None:
    """The version number a directory name stands for, or `None` when it is not one.

    Only plain ASCII decimal digits that fit in an int64 count (TF Serving's rule); signs,
    spaces, other scripts' digits and superscripts do not.
    """
    if not _DECIMAL.fullmatch(name):
        return None
    value = int(name)
    return value if value <= _INT64_MAX else None


def version_dirs(base_path: str | os.PathLike, *, report: bool = True) -> dict[int, Path]:
    """`{version: path}` of the version directories under `base_path` (`{}` if missing).

    Children whose names are not versions are skipped; with `report` each one is logged once
    per process, so a junk directory does not flood the log at every poll.
    """
    found: dict[int, Path] = {}
    try:
        with os.scandir(base_path) as entries:
            for entry in entries:
                try:
                    if not entry.is_dir():
                        continue
                except OSError:
                    continue
                version = parse_version(entry.name)
                if version is None:
                    if report and not entry.name.startswith("."):
                        _report_once(entry.path)
                    continue
                found[version] = Path(entry.path)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return {}
    return found


def _report_once(path: str) -> None:
    with _reported_lock:
        if path in _reported:
            return
        _reported.add(path)
    log.warning("ignoring %s: a version directory name must be a decimal integer", path)


def read_saved_model(path: str | os.PathLike):
    """The `SavedModel` proto of a version directory (`saved_model.pb`, else `saved_model.pbtxt`).

    Raises:
        FileNotFoundError: `path` holds neither.
    """
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(path)
    proto = saved_model_pb2.SavedModel()
    if (path / "saved_model.pb").is_file():
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
    elif (path / "saved_model.pbtxt").is_file():
        text_format.Parse((path / "saved_model.pbtxt").read_text(), proto)
    else:
        raise FileNotFoundError(f"no saved_model.pb in {path}")
    return proto
