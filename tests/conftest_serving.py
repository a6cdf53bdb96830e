"""Fixtures shared by the serving tests (imported explicitly by tests/test_serving*.py).

The SavedModels are the tiny ones of :mod:`serving.fixtures`, built once per session; a test's
repository is made by copying version directories, which takes milliseconds.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from serving import fixtures


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory) -> dict[str, Path]:
    """Built once: ``translator_v1``, ``translator_v2`` (answers prefixed ``v1:``/``v2:``),
    ``qa``."""
    base = tmp_path_factory.mktemp("saved_models")
    return {
        "translator_v1": fixtures.build_translator(base / "translator_v1", tag="1"),
        "translator_v2": fixtures.build_translator(base / "translator_v2", tag="2", seed=1),
        "qa": fixtures.build_qa(base / "qa"),
    }


def add_version(root: Path, model: str, version: int, source: Path) -> Path:
    """Copies a SavedModel into ``<root>/<model>/<version>`` (not atomically, on purpose)."""
    target = Path(root) / model / str(version)
    shutil.copytree(source, target)
    return target


def expected_translation(text: str, tag: str = "1") -> str:
    return f"v{tag}: " + " ".join(reversed(text.split()))


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Polls ``predicate`` until it returns something truthy; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
