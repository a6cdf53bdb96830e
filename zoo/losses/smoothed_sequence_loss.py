"""Label-smoothed sequence cross-entropy."""

import keras
import tensorflow as tf
from keras import ops

from zoo.losses.replica_mean import replica_mean
from zoo.text import PAD_ID


@keras.saving.register_keras_serializable(package="zoo")
class SmoothedSequenceLoss(keras.losses.Loss):
    """Label-smoothed cross-entropy averaged over non-padding target tokens.

    `loss = (1 - ε) · NLL(y) + ε · mean_v(-log p_v)` per token (Szegedy et al. 2016), summed over
    real tokens and divided by their count, so batches of different padding weigh tokens alike.
    """

    def __init__(self, label_smoothing=0.1, name="smoothed_sequence_loss", **kwargs):
        super().__init__(name=name, reduction=None, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        y_true = ops.cast(y_true, "int32")
        # The smoothed target distribution as one dense tensor: its gradient is a product,
        # where gathering the label's log-probability (take_along_axis) back-propagates
        # through a scatter (UnsortedSegmentSum) over the whole [batch, T, vocab] grid —
        # twice the loss's time in a translator's training step (profile_train_step.py).
        eps, vocab = self.label_smoothing, ops.shape(log_probs)[-1]
        target = tf.one_hot(y_true, vocab, on_value=1.0 - eps + eps / ops.cast(vocab, "float32"),
                            off_value=eps / ops.cast(vocab, "float32"))
        per_token = -ops.sum(target * log_probs, axis=-1)
        weights = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        # Under tf.distribute a replica holds part of the batch: normalise by the whole batch.
        return replica_mean(ops.sum(per_token * weights), ops.sum(weights),
                                         ops.shape(y_true)[0])

    def get_config(self):
        return {"label_smoothing": self.label_smoothing, "name": self.name}
