"""Tasks: what differs between translation, summarization, QA and sentiment training.

`get_task(name)` returns the task a config's `task` key names; a new task registers itself with
`@register_task`.
"""

import difflib

from zoo.tasks.base import PreparedData, Task, text_hash

_TASKS = {}


def register_task(cls):
    """Class decorator: register a `Task` subclass under its `name`."""
    if cls.name in _TASKS:
        raise ValueError(f"task {cls.name!r} is already registered to {_TASKS[cls.name]}")
    _TASKS[cls.name] = cls
    return cls


def get_task(name):
    """An instance of the registered task `name`."""
    _load_builtin_tasks()
    if name not in _TASKS:
        close = difflib.get_close_matches(name, sorted(_TASKS), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown task {name!r}.{hint} Registered: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]()


def task_names():
    _load_builtin_tasks()
    return sorted(_TASKS)


def _load_builtin_tasks():
    import importlib

    for module in ("translation", "summarization", "qa", "sentiment"):
        try:
            importlib.import_module(f"zoo.tasks.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"zoo.tasks.{module}":  # a task module that is not written yet
                raise


__all__ = ["PreparedData", "Task", "get_task", "register_task", "task_names", "text_hash"]
