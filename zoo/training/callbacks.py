"""Keras callbacks for tracked training."""

import math
import os
import time

import keras
import mlflow


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `minutes` of wall-clock time have passed (0 = no budget).

    With a `schedule` (`WarmupCosineDecay`), it also fits the decay to the budget: after
    `measure_after` steps (compilation is over by then) it measures the step rate and, if the
    planned steps will not fit, ends the cosine at the step the budget will allow, so a budget-
    stopped run still finishes at its low learning rate. `reserve` is the fraction of the budget
    kept for evaluations at epoch ends.
    """

    def __init__(self, minutes, schedule=None, measure_after=150, reserve=0.08):
        super().__init__()
        self.seconds = minutes * 60.0
        self.schedule = schedule
        self.measure_after = measure_after
        self.reserve = reserve
        self.start = None
        self.exhausted = False
        self.steps = 0
        self.mark = None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        now = time.monotonic()
        if not self.seconds:
            return
        if self.schedule is not None:
            if self.steps == self.measure_after:
                self.mark = (self.steps, now)
            elif self.mark and self.steps == 2 * self.measure_after:
                rate = (self.steps - self.mark[0]) / (now - self.mark[1])
                remaining = self.seconds * (1.0 - self.reserve) - (now - self.start)
                affordable = self.steps + max(remaining, 0.0) * rate
                planned = float(keras.ops.convert_to_numpy(self.schedule.total_steps))
                if affordable < planned:
                    self.schedule.total_steps.assign(affordable)
                    print(f"time budget: {rate:.2f} steps/s, cosine decay now ends at step "
                          f"{affordable:.0f} (planned {planned:.0f})", flush=True)
        if now - self.start > self.seconds:
            self.exhausted = True
            self.model.stop_training = True


class EpochTracker(keras.callbacks.Callback):
    """At each epoch end: task metric, learning rate, tokens/s → MLflow (step = epoch), and the
    best-by-validation-loss weights saved atomically (write to a temp file, then rename).

    Args:
        evaluate: callable `() -> dict` of task metrics on the validation set (e.g. BLEU).
        tokens_per_epoch: target tokens in one epoch, for throughput.
        checkpoint_path: where the best weights go (`*.weights.h5`).
    """

    def __init__(self, evaluate, tokens_per_epoch, checkpoint_path, time_budget=None):
        super().__init__()
        self.evaluate = evaluate
        self.tokens_per_epoch = tokens_per_epoch
        self.checkpoint_path = checkpoint_path
        self.time_budget = time_budget
        self.best_val_loss = math.inf
        self.best_epoch = None
        self.history = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.monotonic()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self.epoch_start
        metrics = {k: float(v) for k, v in (logs or {}).items() if k in ("loss", "val_loss")}
        learning_rate = self.model.optimizer.learning_rate
        metrics["learning_rate"] = float(keras.ops.convert_to_numpy(learning_rate))
        metrics["epoch_seconds"] = seconds
        # A budget-stopped epoch trained on part of the data: scale the token count by steps.
        fraction = 1.0
        if self.time_budget is not None and self.time_budget.exhausted and self.params:
            total = self.params.get("steps") or self.steps
            fraction = min(1.0, self.steps / max(total, 1))
        metrics["target_tokens_per_second"] = self.tokens_per_epoch * fraction / seconds
        metrics.update(self.evaluate())
        mlflow.log_metrics(metrics, step=epoch + 1)
        self.history.append({"epoch": epoch + 1, **metrics})
        if metrics.get("val_loss", -math.inf) < self.best_val_loss:
            self.best_val_loss = metrics["val_loss"]
            self.best_epoch = epoch + 1
            save_weights_atomically(self.model, self.checkpoint_path)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        print(f"epoch {epoch + 1}: {summary}", flush=True)


def save_weights_atomically(model, path):
    """A reader never sees a half-written checkpoint: write beside it, then rename."""
    temporary = f"{path}.tmp-{os.getpid()}.weights.h5"
    model.save_weights(temporary)
    os.replace(temporary, path)
