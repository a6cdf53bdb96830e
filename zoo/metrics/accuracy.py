"""Classification accuracy, in PERCENT (0..100) like every other metric in `zoo.metrics`."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["accuracy"]


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    """Percentage (0..100) of positions where `predictions[i] == labels[i]`.

    Accepts lists, tuples or 1-D numpy arrays of labels (ints, bools or strings; numpy scalars
    compare by value). Raises ValueError on a length mismatch or empty input.
    """
    predictions = list(predictions)
    labels = list(labels)
    if len(predictions) != len(labels):
        raise ValueError(f"got {len(predictions)} predictions but {len(labels)} labels")
    if not labels:
        raise ValueError("no examples to score")
    correct = sum(1 for p, y in zip(predictions, labels, strict=True) if p == y)
    return 100.0 * correct / len(labels)
