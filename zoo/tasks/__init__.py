"""Tasks: what differs between translation, summarization, QA and sentiment training.

`get_task(name)` returns the task a config's `task` key names. A task registers itself with
`@TASKS.register("name")`; the built-in tasks are the modules of `TASKS.builtins`, imported on
the first lookup.

Example:

```python
from zoo.tasks import get_task

task = get_task("translation")
task.headline  # "bleu"
```
"""

from zoo.registry import Registry
from zoo.tasks.base import PreparedData, Task, text_hash

TASKS = Registry("task", builtins=(
    "zoo.tasks.translation",
    "zoo.tasks.summarization",
    "zoo.tasks.qa",
    "zoo.tasks.sentiment",
    "zoo.tasks.dialogue",
))


def get_task(name):
    """An instance of the registered task `name`; a ValueError names close and known ones."""
    return TASKS.create(name)


def task_names():
    """Sorted names of every registered task."""
    return TASKS.names()


__all__ = ["TASKS", "PreparedData", "Task", "get_task", "task_names", "text_hash"]
