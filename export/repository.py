"""The model repository: integer version directories, published atomically."""

import os
import shutil
import tempfile
from pathlib import Path

from serving.versions import version_dirs


def versions(model_root):
    """Integer versions present under `model_root` (TF Serving ignores other names, and so do
    we: `serving.versions.parse_version`)."""
    return sorted(version_dirs(model_root))


def next_version(model_root):
    return (versions(model_root) or [0])[-1] + 1


def publish_version(write, model_root):
    """Write a new version with `write(path)` into a hidden temp dir, then rename it into place.

    TF Serving polls for integer directories; the temporary name is not one, and a rename on the
    same filesystem is atomic, so a reader sees either no new version or a complete one. A
    failed `write` leaves nothing behind.
    """
    model_root = Path(model_root)
    model_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_root))
    try:
        write(staging)
        while True:
            version = next_version(model_root)
            try:
                os.rename(staging, model_root / str(version))
                return model_root / str(version)
            except OSError:
                if not (model_root / str(version)).exists():
                    raise
                # Another exporter took this number between our look and our rename: retry.
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
