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
        "from tests.test_registry import LAZY\n"
        "@LAZY.register('plugged')\nclass Plugged: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "zoo_test_plugin" not in sys.modules
    assert LAZY.names() == ["plugged"]
    assert "zoo_test_plugin" in sys.modules


LAZY = Registry("plug-in", builtins=("zoo_test_plugin",))
