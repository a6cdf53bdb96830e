"""Where the corpora are: the `ZOO_DATA_DIR` environment variable; nothing is ever downloaded
or copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

from zoo.data.errors import DataDirError

# The environment variable that points at the shared data root.
DATA_DIR_ENV = "ZOO_DATA_DIR"


def data_dir() -> Path:
    """Return the data root named by `$ZOO_DATA_DIR` as a `pathlib.Path`.

    Raises:
        DataDirError: the variable is unset/empty or the directory does not exist. The message
            names the variable and the usual location (`../shared/data` relative to the repo).
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
    """`data_dir() / parts...`, raising `DataDirError` if that file does not exist."""
    path = data_dir().joinpath(*parts)
    if not path.is_file():
        raise DataDirError(
            f"data file {path} not found under {DATA_DIR_ENV}={os.environ[DATA_DIR_ENV]!r}"
        )
    return path


def split_file(dataset: str, directory: str, splits: dict[str, str], split: str) -> Path:
    """The file of `split` (a key of `splits`, which maps splits to file names) under
    `$ZOO_DATA_DIR/<directory>/`; a ValueError names the known splits of `dataset`."""
    if split not in splits:
        raise ValueError(f"unknown {dataset} split {split!r}; expected one of {sorted(splits)}")
    return data_file(directory, splits[split])
