"""The one registry class: registration, lookup with a close-match hint, lazy built-ins."""

import sys

import pytest

from zoo.registry import Registry, did_you_mean


def test_register_get_create_and_names():
    registry = Registry("widget")

    @registry.register("round_widget")
    class Round:
        def __init__(self, size=1):
            self.size = size

    assert registry.get("round_widget") is Round
    assert Round.registered_name == "round_widget"
    assert registry.create("round_widget", size=3).size == 3
    assert registry.names() == ["round_widget"] and "round_widget" in registry


def test_unknown_name_suggests_and_lists():
    registry = Registry("widget")
    registry.register("round_widget")(type("Round", (), {}))
    with pytest.raises(ValueError, match=r"unknown widget 'round_widgt'\. Did you mean: "
                                         r"round_widget\? Registered: round_widget"):
        registry.get("round_widgt")
    assert did_you_mean("zzz", ["round_widget"]) == ""


def test_a_name_is_registered_once():
    registry = Registry("widget")
    registry.register("a")(type("A", (), {}))
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(type("B", (), {}))


def test_builtins_load_on_first_lookup(tmp_path, monkeypatch):
    (tmp_path / "zoo_test_plugin.py").write_text(
        "from tests.zoo.test_registry import LAZY\n"
        "@LAZY.register('plugged')\nclass Plugged: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "zoo_test_plugin" not in sys.modules
    assert LAZY.names() == ["plugged"]
    assert "zoo_test_plugin" in sys.modules


LAZY = Registry("plug-in", builtins=("zoo_test_plugin",))


def test_the_zoo_catalogs_are_registries_with_lazy_builtins():
    """Models, tasks and decoding strategies: one Registry each, built-ins found by name."""
    from zoo.decoding import STRATEGIES, DecodingStrategy, GreedySearch
    from zoo.models import MODELS
    from zoo.tasks import TASKS, get_task, task_names

    assert {"luong_translator", "summarizer", "qa", "sentiment"} <= set(MODELS.names())
    assert MODELS.get("qa").registered_name == "qa"
    assert task_names() == ["dialogue", "qa", "sentiment", "summarization",
                            "translation"] == TASKS.names()
    for name in task_names():
        assert get_task(name).name == name  # the MLflow experiment is the registered name
    assert STRATEGIES.names() == ["beam", "greedy"]
    assert isinstance(DecodingStrategy.from_config({}), GreedySearch)
    with pytest.raises(ValueError, match=r"unknown task 'translaton'\. Did you mean: "
                                         r"translation"):
        get_task("translaton")
