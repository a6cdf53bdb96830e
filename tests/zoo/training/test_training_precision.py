"""`precision: mixed_bfloat16` trains with bfloat16 matmuls and keeps a float32 model."""

import os

import keras
import numpy as np
import pytest

from tests.support import TINY_TRANSLATOR, require_multi30k
from zoo.config import ConfigError
from zoo.models import catalog
from zoo.training.trainer import build_model


def test_mixed_precision_model_computes_in_bfloat16_and_restores_the_policy():
    config = catalog.resolve_config("luong_translator", {**TINY_TRANSLATOR})
    model = build_model(config, None, "mixed_bfloat16")
    assert model.decoder.output_projection.compute_dtype == "bfloat16"
    assert model.decoder.output_projection.kernel.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ConfigError, match="precision"):
        build_model(config, None, "float16")


def test_mixed_precision_training_saves_a_float32_model(tracking_dir, tmp_path):
    require_multi30k()
    from zoo.training import train

    old = os.getcwd()
    os.chdir(tracking_dir)
    try:
        result = train("luong_translator", {**TINY_TRANSLATOR, "epochs": 2,
                                            "precision": "mixed_bfloat16"},
                       output_dir=tmp_path, verbose=0)
    finally:
        os.chdir(old)
    losses = [epoch["loss"] for epoch in result.history]
    assert losses[-1] < losses[0]
    assert result.model.decoder.output_projection.compute_dtype == "float32"
    saved = keras.saving.load_model(result.model_path, compile=False)
    assert saved.decoder.output_projection.compute_dtype == "float32"
    for a, b in zip(saved.get_weights(), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(result.metrics["test_bleu"])


def test_ema_momentum_validates_and_keeps_the_moving_average(tracking_dir, tmp_path):
    """`ema_momentum`: validation, the epoch's checkpoint and so the kept model are the
    weights' moving average (Keras swaps it in before validation and at each epoch's end)."""
    require_multi30k()
    from zoo.tasks import get_task
    from zoo.training import train
    from zoo.training.trainer import _read_data

    with pytest.raises(ConfigError, match="ema_momentum"):
        train("luong_translator", {**TINY_TRANSLATOR, "ema_momentum": 1.0},
              output_dir=tmp_path, verbose=0)
    old = os.getcwd()
    os.chdir(tracking_dir)
    try:
        result = train("luong_translator", {**TINY_TRANSLATOR, "epochs": 2, "ema_momentum": 0.9,
                                            "precision": "float32"},
                       output_dir=tmp_path, verbose=0)
    finally:
        os.chdir(old)
    model, config = result.model, result.config  # float32: the kept model is the trained one
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == 0.9
    # The best epoch's logged val_loss was computed on the average; the kept model is that
    # epoch's checkpoint. Had the checkpoint been written before the swap (the raw weights),
    # their losses would differ.
    best = result.history[result.metrics["best_epoch"] - 1]
    task = get_task(config["task"])
    data = _read_data(config)
    valid = task.prepare(config, model.tokenizer, data["train"], data["valid"]).valid
    kept_loss = model.evaluate(valid, verbose=0, return_dict=True)["loss"]
    assert kept_loss == pytest.approx(best["val_loss"], rel=1e-4)
    assert np.isfinite(result.metrics["test_bleu"])
