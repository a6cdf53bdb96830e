"""`precision: mixed_bfloat16` trains with bfloat16 matmuls and keeps a float32 model; where
the CPU has no bfloat16 arithmetic it trains in float32 instead."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.support import TINY_TRANSLATOR, require_multi30k
from zoo.config import ConfigError
from zoo.models import catalog
from zoo.training import precision
from zoo.training.precision import native_bfloat16, training_precision
from zoo.training.trainer import build_model


def test_mixed_precision_model_computes_in_bfloat16_and_restores_the_policy():
    config = catalog.resolve_config("luong_translator", {**TINY_TRANSLATOR})
    model = build_model(config, None, "mixed_bfloat16")
    assert model.decoder.output_projection.compute_dtype == "bfloat16"
    assert model.decoder.output_projection.kernel.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ConfigError, match="precision"):
        build_model(config, None, "float16")


def test_bfloat16_arithmetic_is_read_from_the_cpu_flags(tmp_path):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a visible GPU has bfloat16 whatever the CPU")
    zen3 = tmp_path / "zen3"  # AMD EPYC 7003: AVX2 only
    zen3.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n")
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 avx512_vnni\n")
    sapphire_rapids = tmp_path / "spr"
    sapphire_rapids.write_text("flags\t\t: avx2 avx512f amx_bf16 amx_tile\n")
    check = native_bfloat16.__wrapped__  # uncached
    assert not check(str(zen3))
    assert check(str(zen4)) and check(str(sapphire_rapids))
    assert check(str(tmp_path / "not-linux"))  # unreadable: the config's choice stands


def test_mixed_bfloat16_falls_back_to_float32_without_bfloat16_arithmetic(monkeypatch):
    monkeypatch.setattr(precision, "native_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="training in float32"):
        assert training_precision({"precision": "mixed_bfloat16"}) == "float32"
    assert training_precision({"precision": "float32"}) == "float32"
    monkeypatch.setattr(precision, "native_bfloat16", lambda: True)
    assert training_precision({"precision": "mixed_bfloat16"}) == "mixed_bfloat16"


def test_mixed_precision_training_saves_a_float32_model(tracking_dir, tmp_path, monkeypatch):
    require_multi30k()
    import mlflow

    from zoo.training import train

    # The bfloat16 path is tested on every CPU (emulated where it has no bfloat16: slower,
    # but this model is tiny).
    monkeypatch.setattr(precision, "native_bfloat16", lambda: True)

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
    run = mlflow.MlflowClient().get_run(result.run_id)
    assert run.data.tags["zoo.precision"] == "mixed_bfloat16"
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
