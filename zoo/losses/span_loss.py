"""The extractive-QA loss: answer start and end are two classifications over the context."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class SpanLoss(keras.losses.Loss):
    """Sum of the start and end cross-entropies, averaged over the batch (Seo et al. 2017).

    Args:
        name: loss name.
        **kwargs: `keras.losses.Loss` arguments.

    Call arguments:
        y_true: int `[batch, 2]`, the answer's first and last token index.
        y_pred: float `[batch, 2, C]`, start and end logits (padding already −1e9).

    Returns:
        float scalar `−log p(start) − log p(end)`, batch mean.

    Example:

    ```python
    SpanLoss()(np.array([[1, 2]]), np.zeros((1, 2, 4)))   # 2 · log 4
    ```
    """

    def __init__(self, name="span_loss", **kwargs):
        super().__init__(name=name, reduction=None, **kwargs)

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        picked = ops.take_along_axis(log_probs, ops.cast(y_true, "int32")[..., None], axis=-1)
        return -ops.mean(ops.sum(picked[..., 0], axis=-1))

    def get_config(self):
        return {"name": self.name}
