"""Fixtures of the serving tests: the tiny SavedModels of `serving.fixtures`, built once per
session (a test's repository is made by copying version directories, in milliseconds)."""

from pathlib import Path

import pytest

from serving import fixtures


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory) -> dict[str, Path]:
    """Built once: `translator_v1`, `translator_v2` (answers prefixed `v1:`/`v2:`),
    `qa`."""
    base = tmp_path_factory.mktemp("saved_models")
    return {
        "translator_v1": fixtures.build_translator(base / "translator_v1", tag="1"),
        "translator_v2": fixtures.build_translator(base / "translator_v2", tag="2", seed=1),
        "qa": fixtures.build_qa(base / "qa"),
    }
