"""Diagnostic: a task's test score after every epoch, beside its validation metrics.

    python benchmarks/score_per_epoch.py sentiment --set word_vectors=true

Trains like `zoo train` (same config, budget and MLflow run), and after each epoch also scores
the test split, logged as `val_test_peek_<metric>`. It answers one question: is a recipe's test
score low because the model never gets there, or because the epoch kept (lowest validation
loss) is the wrong one? Nothing reads these figures to pick an epoch or a config: a choice made
on the test split would make its score meaningless. The kept model is the usual one.
"""

import argparse

from zoo.config import parse_assignment
from zoo.tasks import get_task
from zoo.training import train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    overrides = dict(parse_assignment(item) for item in args.set)

    import zoo

    config = zoo.resolve_config(args.model, overrides)
    task = get_task(config["task"])
    test = task.read_split(config, "test")
    during_training = type(task).evaluate_during_training

    def with_test_peek(self, model, config, examples):
        scores = during_training(self, model, config, examples)
        peek = self.evaluate(model, config, test)
        return {**scores, **{f"test_peek_{name}": value for name, value in peek.items()}}

    type(task).evaluate_during_training = with_test_peek
    result = train(args.model, overrides, verbose=2)
    for entry in result.history:
        shown = {k: round(v, 4) for k, v in entry.items()
                 if k.startswith(("val_", "loss")) or k == "epoch"}
        print(shown)


if __name__ == "__main__":
    main()
