"""Learning-rate schedules."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then cosine decay to `peak · final_fraction`
    at `total_steps` (held there afterwards).

    `total_steps` lives in a variable so a time budget can shorten the decay once the real step
    rate is known (see `zoo.training.callbacks.TimeBudget`), without retracing the train step.
    """

    def __init__(self, peak, warmup_steps, total_steps, final_fraction=0.05):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.final_fraction = final_fraction
        self.total_steps = keras.Variable(float(total_steps), dtype="float32", trainable=False,
                                          name="schedule_total_steps")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        span = ops.maximum(self.total_steps - self.warmup_steps, 1.0)
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        decayed = self.peak * (self.final_fraction + (1.0 - self.final_fraction) * cosine)
        return ops.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": float(keras.ops.convert_to_numpy(self.total_steps)),
                "final_fraction": self.final_fraction}
