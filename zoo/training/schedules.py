"""Learning-rate schedules."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then cosine decay to `peak · final_fraction`
    at `total_steps` (held there afterwards).

    `total_steps` lives in a variable so a time budget can refit the decay to the step rate it
    measures (see `zoo.training.callbacks.TimeBudget`) without retracing the train step.
    `refit(step, total_steps)` moves the end of the decay from `step` on and keeps the learning
    rate continuous: the decay's progress at `step` is kept (`anchor_progress` at
    `anchor_step`), and the rest of it is spread over the steps left.

    Args:
        peak: float, the learning rate at the end of the warm-up.
        warmup_steps: int.
        total_steps: float, the step at which the decay ends.
        final_fraction: float, the final learning rate as a fraction of `peak`.
        anchor_step, anchor_progress: where the decay stood at the last `refit` (None: not
            refitted; the decay starts at `warmup_steps` with progress 0).
    """

    def __init__(self, peak, warmup_steps, total_steps, final_fraction=0.05, anchor_step=None,
                 anchor_progress=0.0):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.final_fraction = final_fraction
        self.total_steps = keras.Variable(float(total_steps), dtype="float32", trainable=False,
                                          name="schedule_total_steps")
        self.anchor_step = keras.Variable(
            float(warmup_steps if anchor_step is None else anchor_step), dtype="float32",
            trainable=False, name="schedule_anchor_step")
        self.anchor_progress = keras.Variable(float(anchor_progress), dtype="float32",
                                              trainable=False, name="schedule_anchor_progress")

    def progress(self, step):
        """How far the cosine decay is at `step`, in [0, 1]."""
        step = ops.cast(step, "float32")
        span = ops.maximum(self.total_steps - self.anchor_step, 1.0)
        fraction = ops.clip((step - self.anchor_step) / span, 0.0, 1.0)
        return self.anchor_progress + (1.0 - self.anchor_progress) * fraction

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * self.progress(step)))
        decayed = self.peak * (self.final_fraction + (1.0 - self.final_fraction) * cosine)
        return ops.where(step < self.warmup_steps, warmup, decayed)

    def refit(self, step, total_steps):
        """End the decay at `total_steps` instead, from optimizer step `step` on, with no jump
        in the learning rate (during the warm-up, the decay simply ends there)."""
        if step > self.warmup_steps:
            progress = float(ops.convert_to_numpy(self.progress(step)))
            self.anchor_step.assign(float(step))
            self.anchor_progress.assign(progress)
        self.total_steps.assign(float(total_steps))

    def state(self):
        """`(total_steps, anchor_step, anchor_progress)`, for a checkpoint or another worker."""
        return tuple(float(ops.convert_to_numpy(v)) for v in
                     (self.total_steps, self.anchor_step, self.anchor_progress))

    def set_state(self, state):
        for variable, value in zip((self.total_steps, self.anchor_step, self.anchor_progress),
                                   state, strict=True):
            variable.assign(float(value))

    def get_config(self):
        total, anchor_step, anchor_progress = self.state()
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": total,
                "final_fraction": self.final_fraction, "anchor_step": anchor_step,
                "anchor_progress": anchor_progress}
