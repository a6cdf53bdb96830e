"""What the models with a `members` argument share: a deep ensemble in one Keras model.

Lakshminarayanan et al. 2017: copies of one network differing only in their random
initialisation (and dropout masks), each trained on its own loss, predicting their mean
probability. In one Keras model, a training call returns every member's output on a member
axis (axis 1) and `compute_loss` scores each against the same labels; every other call
returns `mean_log_probability` of them, which a log-softmax loss reads as the ensemble's
distribution.
"""

import math

from keras import ops


def mean_log_probability(member_outputs, axis=1):
    """The log of the members' mean probability: `member_outputs` are logits (or
    log-probabilities) over the last axis, the members along `axis`."""
    log_probs = ops.log_softmax(ops.cast(member_outputs, "float32"), axis=-1)
    return ops.logsumexp(log_probs, axis=axis) - math.log(ops.shape(member_outputs)[axis])


class MemberLossMixin:
    """`compute_loss` for a `keras.Model` with `members`: a training output of rank
    `member_output_rank` carries the member axis, and each member is scored separately."""

    member_output_rank = None  # set by the model class

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if (self.members > 1 and y_pred is not None
                and len(y_pred.shape) == self.member_output_rank):
            # Every member against the same labels: the loss's mean is the members' mean.
            y = ops.repeat(ops.expand_dims(y, 1), self.members, axis=1)
            if sample_weight is not None:
                sample_weight = ops.repeat(ops.expand_dims(sample_weight, 1), self.members,
                                           axis=1)
        return super().compute_loss(x, y, y_pred, sample_weight, training)
