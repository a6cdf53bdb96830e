"""Helpers of the serving tests."""

import shutil
import time
from pathlib import Path

import pytest


def add_version(root: Path, model: str, version: int, source: Path) -> Path:
    """Copies a SavedModel into `<root>/<model>/<version>` (not atomically, on purpose)."""
    target = Path(root) / model / str(version)
    shutil.copytree(source, target)
    return target


def expected_translation(text: str, tag: str = "1") -> str:
    return f"v{tag}: " + " ".join(reversed(text.split()))


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Polls `predicate` until it returns something truthy; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
