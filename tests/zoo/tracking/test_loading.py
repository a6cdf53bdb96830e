"""`zoo.load`: trained models back by name, registry URI, run, run directory or file; and
`zoo train --init-from`, fine-tuning from them."""

import mlflow
import numpy as np
import pytest

import zoo
from export import export_model
from serving import Client, start_server
from tests.support import TINY_TRANSLATOR
from zoo.config import ConfigError
from zoo.tasks import get_task
from zoo.training import train

PROBE = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.", "Eine Frau liest."]


def assert_same_weights(a, b):
    for left, right in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(left, right)


def test_every_kind_of_source_gives_the_trained_model(trained_translator):
    result = trained_translator
    for source in (f"models:/luong_translator/{result.model_version}", f"runs:/{result.run_id}",
                   result.run_id, result.model_path, result.model_path.parent):
        assert_same_weights(zoo.load(source), result.model)


def test_load_by_name_translates_as_its_served_export(trained_translator, tmp_path):
    model = zoo.load("luong_translator")  # the newest registered version
    newest = max(int(v.version) for v in
                 mlflow.MlflowClient().search_model_versions("name = 'luong_translator'"))
    assert_same_weights(model, zoo.load(f"models:/luong_translator/{newest}"))
    translations = model.translate(PROBE)
    assert all(translations)
    export_model(model, tmp_path, name="luong_translator", warmup_lengths=())
    handle = start_server(tmp_path, port=0, poll_interval=0)
    try:
        with Client(handle.target, timeout=120.0, retries=0) as client:
            assert client.translate("luong_translator", PROBE) == translations
    finally:
        handle.stop()


def test_unknown_names_and_empty_stores_are_clear_errors(trained_translator, tmp_path,
                                                          monkeypatch):
    with pytest.raises(ValueError, match=r"no trained model 'luong_transltor'.*Did you mean: "
                                         r"luong_translator\?.*Registered: .*luong_translator"):
        zoo.load("luong_transltor")
    with pytest.raises(ValueError, match="no version 999 of registered model 'luong_translator'"):
        zoo.load("models:/luong_translator/999")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(ValueError, match=r"no trained model 'luong_translator'.*which has "
                                             r"none \(train one"):
            zoo.load("luong_translator")
    finally:
        monkeypatch.undo()
        mlflow.set_tracking_uri(zoo.tracking.tracking_uri())


def test_init_from_starts_from_the_registered_weights(trained_translator, tmp_path):
    source = f"models:/luong_translator/{trained_translator.model_version}"
    loaded = zoo.load(source)
    result = train("luong_translator", TINY_TRANSLATOR | {"init_from": source, "epochs": 1},
                   output_dir=tmp_path, verbose=0)
    assert result.config["init_from"] == source
    assert result.model.tokenizer.model_proto == loaded.tokenizer.model_proto
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "init_val_loss")
    assert len(history) == 1

    # Step 0 of the fine-tuning is the loaded model: the same loss on the same batches.
    config = result.config
    task = get_task(config["task"])
    prepared = task.prepare(config, loaded.tokenizer, task.read_split(config, "train"),
                            task.read_split(config, "valid"))
    loaded.compile(loss=task.loss(config), jit_compile=config["jit_compile"])
    expected = loaded.evaluate(prepared.valid, verbose=0, return_dict=True)["loss"]
    assert history[0].value == pytest.approx(expected, rel=1e-4)  # a fresh model: ~6.9


def test_init_from_a_different_architecture_names_the_keys(trained_translator, tmp_path):
    with pytest.raises(ConfigError, match=r"init_from.*embedding_dim"):
        train("luong_translator",
              TINY_TRANSLATOR | {"init_from": trained_translator.run_id, "embedding_dim": 24,
                                 "epochs": 1}, output_dir=tmp_path, verbose=0)
