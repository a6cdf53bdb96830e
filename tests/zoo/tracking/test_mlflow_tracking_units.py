"""Fast checks of the tracking pieces (no training): atomic epoch checkpoints, metrics logged
once per step, the runs table, CLI argument errors, FAILED runs, the UI command."""

import json
import os
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest

from tests.support import require_multi30k
from zoo import tracking
from zoo.config import ConfigError
from zoo.training.callbacks import EpochTracker, RunCheckpoint


@pytest.fixture()
def sqlite_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    tracking.configure()
    # MLflow caches the active experiment id per process; an earlier test's id need not exist
    # in this fresh store.
    mlflow.set_experiment("tracking-units")
    yield mlflow.MlflowClient()
    monkeypatch.undo()
    tracking.configure()


def _small_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    return model


def _fit(model, steps=1):
    model.fit(np.ones((4 * steps, 3)), np.zeros((4 * steps, 2)), batch_size=4, verbose=0)


def _state(epoch, best):
    return {"epoch": epoch, "best_epoch": best, "best_val_loss": 1.0 / best,
            "history": [{"epoch": e, "loss": 1.0 / e} for e in range(1, epoch + 1)]}


def test_checkpoint_keeps_latest_and_best_and_restores_optimizer(tmp_path):
    model = _small_model()
    checkpoint = RunCheckpoint(tmp_path / "checkpoints")
    assert checkpoint.latest() is None and checkpoint.best_weights() is None
    _fit(model)
    checkpoint.save(model, _state(1, 1))
    _fit(model)
    checkpoint.save(model, _state(2, 1))
    names = sorted(p.name for p in checkpoint.directory.iterdir())
    assert names == ["epoch-0001", "epoch-0002", "latest.json"]
    assert checkpoint.best_weights() == checkpoint.directory / "epoch-0001" / "state.weights.h5"
    _fit(model, steps=2)
    checkpoint.save(model, _state(3, 3))
    assert sorted(p.name for p in checkpoint.directory.iterdir()) == ["epoch-0003",
                                                                       "latest.json"]

    restored = _small_model(seed=1)
    state = checkpoint.restore(restored)
    assert state["epoch"] == 3 and [h["epoch"] for h in state["history"]] == [1, 2, 3]
    for mine, theirs in zip(model.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 4
    for mine, theirs in zip(model.optimizer.variables, restored.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


@pytest.mark.parametrize("best_by, best_epoch", [("val_loss", 2), ("val_rouge1", 3)])
def test_best_by_picks_the_kept_epoch(tmp_path, best_by, best_epoch):
    # Scripted validation: the loss is lowest after epoch 2, the score highest after epoch 3.
    scores = iter([{"val_loss": 3.0, "val_rouge1": 20.0}, {"val_loss": 2.0, "val_rouge1": 21.0},
                   {"val_loss": 2.5, "val_rouge1": 24.0}, {"val_loss": 2.6, "val_rouge1": 22.0}])
    model = _small_model()
    checkpoint = RunCheckpoint(tmp_path / "checkpoints")
    tracker = EpochTracker(lambda: next(scores), 10, checkpoint,
                           log_metrics=lambda metrics, step: None, best_by=best_by)
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), batch_size=4, epochs=4, verbose=0,
              callbacks=[tracker])
    assert tracker.best_epoch == best_epoch
    assert checkpoint.best_weights() == checkpoint.epoch_dir(best_epoch) / "state.weights.h5"
    assert checkpoint.best_weights().exists()
    # a resumed run goes on ranking by the same value
    resumed = EpochTracker(dict, 10, best_by=best_by)
    resumed.restore(checkpoint.latest())
    assert resumed.best_epoch == best_epoch
    assert resumed.best_value == tracker.history[best_epoch - 1][best_by]
    assert not resumed.is_better(float("nan"))


def test_best_by_names_a_validation_metric_of_the_task():
    import zoo

    assert zoo.resolve_config("summarizer", {"best_by": "val_rouge1"})["best_by"] == "val_rouge1"
    assert zoo.resolve_config("luong_translator")["best_by"] == "val_loss"  # the default
    assert zoo.resolve_config("sentiment")["best_by"] == "val_accuracy"  # its YAML's
    with pytest.raises(ConfigError, match=r"best_by.*val_loss, val_accuracy"):
        zoo.resolve_config("sentiment", {"best_by": "val_rouge1"})


def test_a_kill_mid_checkpoint_leaves_the_previous_one(tmp_path):
    model = _small_model()
    _fit(model)
    checkpoint = RunCheckpoint(tmp_path / "checkpoints")
    checkpoint.save(model, _state(1, 1))
    # Killed while writing epoch 2 (a temp dir), and after renaming epoch 3 but before the
    # pointer moved: the latest checkpoint is still epoch 1.
    (checkpoint.directory / ".epoch-0002.tmp-99999").mkdir()
    (checkpoint.directory / ".epoch-0002.tmp-99999" / "state.json").write_text("{")
    (checkpoint.directory / "epoch-0003").mkdir()
    (checkpoint.directory / ".latest.json.tmp-99999").write_text('{"directory": "epoch-0003"')
    assert checkpoint.latest()["epoch"] == 1
    assert checkpoint.restore(_small_model(seed=2))["epoch"] == 1
    _fit(model)
    checkpoint.save(model, _state(2, 2))
    assert sorted(p.name for p in checkpoint.directory.iterdir()) == ["epoch-0002",
                                                                       "latest.json"]
    assert json.loads((checkpoint.directory / "latest.json").read_text())["epoch"] == 2


def test_metric_log_writes_each_step_once(sqlite_store):
    client = sqlite_store
    with mlflow.start_run() as run:
        log = tracking.MetricLog(run.info.run_id)
        assert log.log({"loss": 2.0, "val_loss": 2.5}, step=1) == {"loss": 2.0, "val_loss": 2.5}
        log.log({"loss": 1.5}, step=2)
        assert log.log({"loss": 9.0}, step=2) == {}
        again = tracking.MetricLog.for_run(run.info.run_id)  # as a resumed training would
        assert again.log({"loss": 1.5, "val_loss": 2.0}, step=2) == {"val_loss": 2.0}
        again.log({"loss": 1.0}, step=3)
        again.log({"test_bleu": 3.0})
        assert again.log({"test_bleu": 4.0}) == {}
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.5), (3, 1.0)]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
    assert len(client.get_metric_history(run.info.run_id, "test_bleu")) == 1


def test_runs_table_formats_and_sorts():
    rows = [
        {"run": "a", "model": "m", "attention": "x", "status": "FINISHED", "epochs": 3,
         "BLEU": 12.345, "chrF": 40.0, "wall time": 3725.0, "tokens/s": 12345.6,
         "started": "2026-01-01 10:00"},
        {"run": "b", "model": "m", "attention": "y", "status": "RUNNING", "epochs": 1,
         "BLEU": None, "chrF": None, "wall time": 65.0, "tokens/s": None,
         "started": "2026-01-02 10:00"},
        {"run": "c", "model": "m", "attention": "z", "status": "FINISHED", "epochs": 3,
         "BLEU": 20.0, "chrF": 45.0, "wall time": 100.0, "tokens/s": 999.0,
         "started": "2026-01-03 10:00"},
    ]
    assert [r["run"] for r in tracking.sort_rows(rows, "bleu")] == ["c", "a", "b"]
    assert [r["run"] for r in tracking.sort_rows(rows, "time")] == ["b", "c", "a"]
    assert [r["run"] for r in tracking.sort_rows(rows, "started")] == ["c", "b", "a"]
    lines = tracking.format_table(rows).splitlines()
    assert lines[0].split() == ["run", "model", "attention", "status", "epochs", "BLEU", "chrF",
                                "wall", "time", "tokens/s", "started"]
    assert "12.35" in lines[2] and "1h02m" in lines[2] and "12,346" in lines[2]
    assert "1m05s" in lines[3] and " - " in lines[3]


def test_cli_train_needs_a_config_or_resume_not_both(capsys):
    from zoo.cli import main

    assert main(["train"]) == 2
    assert main(["train", "luong_translator", "--resume", "0" * 32]) == 2
    assert "not both" in capsys.readouterr().err


def test_resume_refuses_unknown_and_finished_runs(sqlite_store, capsys):
    from zoo.cli import main
    from zoo.training import train

    assert main(["train", "--resume", "0" * 32]) == 2
    assert "no run" in capsys.readouterr().err
    with mlflow.start_run() as run:
        pass
    with pytest.raises(ValueError, match="already finished"):
        train(resume=run.info.run_id)


def test_a_failing_training_marks_its_run_failed(sqlite_store, tmp_path):
    require_multi30k()
    from zoo.training import train

    with pytest.raises(ValueError, match="too few for batch_size"):
        train("luong_translator", {"train_limit": 200, "max_subwords": 1, "vocab_size": 300,
                                   "epochs": 1}, output_dir=tmp_path / "runs", verbose=0)
    runs = sqlite_store.search_runs(
        [sqlite_store.get_experiment_by_name("translation").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.tags["zoo.model"] == "luong_translator"
    run_dir = Path(runs[0].data.tags["zoo.run_dir"])
    assert (run_dir / "config.yaml").is_file() and (run_dir / "tokenizer" /
                                                    "subword.model").is_file()


def test_ui_command_uses_the_configured_store(sqlite_store, tmp_path, monkeypatch, capsys):
    from zoo.tracking import ui

    command = ui.ui_command(port=5123)
    assert command[1:4] == ["-m", "mlflow", "server"]
    store = command[command.index("--backend-store-uri") + 1]
    assert store == os.environ["MLFLOW_TRACKING_URI"]
    assert command[command.index("--port") + 1] == "5123"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--default-artifact-root") + 1] == \
        (tmp_path / "mlruns").resolve().as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert ui.run_ui() == 0
    assert "http://127.0.0.1:5999" in capsys.readouterr().out
