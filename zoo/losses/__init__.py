"""Training losses of the zoo's tasks (Keras-serializable under package "zoo")."""

from zoo.losses.replica_mean import replica_mean
from zoo.losses.smoothed_sequence_loss import SmoothedSequenceLoss
from zoo.losses.span_loss import SpanLoss

__all__ = ["SmoothedSequenceLoss", "SpanLoss", "replica_mean"]
