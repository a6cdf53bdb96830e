"""The model repository: integer version directories, published atomically and durably."""

import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from serving.versions import version_dirs
from zoo.training.run_lock import pid_exists

# `.staging-<pid>@<host>-<random>`: whoever finds it later can tell whether its writer still
# runs. Without `@<host>` (as older exports named them) it counts as this host's.
STAGING_PREFIX = ".staging-"
_STAGING = re.compile(r"\.staging-(\d+)(?:@([^-/]*))?-")


def versions(model_root):
    """Integer versions present under `model_root` (TF Serving ignores other names, and so do
    we: `serving.versions.parse_version`)."""
    return sorted(version_dirs(model_root))


def next_version(model_root):
    return (versions(model_root) or [0])[-1] + 1


def publish_version(write, model_root):
    """Write a new version with `write(path)` into a hidden staging dir, then rename it into
    place.

    TF Serving polls for integer directories; the staging name is not one, and a rename on the
    same filesystem is atomic, so a reader sees either no new version or a complete one. Every
    file and directory of the staged version is fsynced before the rename and the model
    directory after it, so a power loss cannot leave a published version with empty or missing
    files. A failed `write` leaves nothing behind; staging directories that a dead process left
    (killed mid-export) are removed first, live ones (a concurrent export) are left alone.
    """
    model_root = Path(model_root)
    model_root.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(model_root)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}@{_host()}-",
                                    dir=model_root))
    try:
        write(staging)
        fsync_tree(staging)
        while True:
            version = model_root / str(next_version(model_root))
            try:
                os.rename(staging, version)
                break
            except OSError:
                if not version.exists():
                    raise
                # Another exporter took this number between our look and our rename: retry.
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_path(model_root)  # the rename itself
    return version


def remove_stale_staging(model_root):
    """Delete the staging directories under `model_root` whose writer is a process of this
    host that no longer runs; returns their paths."""
    removed = []
    for entry in os.scandir(model_root):
        match = _STAGING.match(entry.name)
        if not (match and entry.is_dir(follow_symlinks=False)):
            continue
        if match.group(2) not in (None, _host()) or pid_exists(int(match.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def fsync_tree(root):
    """fsync every regular file and directory under `root` (itself included), deepest first:
    a directory's entries are durable only once the directory is synced."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                fsync_path(path)
        fsync_path(directory)


def fsync_path(path):
    """fsync one file or directory; an error (ENOSPC, EIO) propagates and fails the export."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _host():
    # '-' separates the name's fields; '@' and '/' could not be told apart either.
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())


