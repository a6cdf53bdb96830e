"""Issue 6 against a real `mlflow server` (sqlite backend, artifacts served by the server on a
free 127.0.0.1 port): a tiny training's params, tags, metrics, artifacts and registered model
version read back through `MlflowClient`; `zoo export models:/...`; `zoo runs compare`; the UI
in headless Chromium."""

import json
import os
import re
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from tests.support import TINY_TRANSLATOR, require_multi30k
from zoo import tracking
from zoo.tracking.servers import MlflowServer

EPOCH_METRICS = ("loss", "val_loss", "val_bleu", "val_chrf", "learning_rate",
                 "target_tokens_per_second", "epoch_seconds")
FINAL_METRICS = ("test_bleu", "test_chrf", "train_seconds", "best_epoch", "test_seconds",
                 "train_examples", "parameters")
SERVER_TRANSLATOR = TINY_TRANSLATOR | {"epochs": 2, "train_limit": 2000}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` with a sqlite store; MLFLOW_TRACKING_URI points at it for the module."""
    directory = tmp_path_factory.mktemp("mlflow_server")
    server = MlflowServer(f"sqlite:///{directory / 'mlflow.db'}", directory / "artifacts")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    with server:
        os.environ["MLFLOW_TRACKING_URI"] = server.url
        tracking.configure()
        try:
            yield server
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous
            tracking.configure()


@pytest.fixture(scope="module")
def server_run(mlflow_server, tmp_path_factory):
    require_multi30k()
    from zoo.training import train

    return train("luong_translator", SERVER_TRANSLATOR,
                 output_dir=tmp_path_factory.mktemp("server_runs"), verbose=0)


@pytest.fixture()
def client(mlflow_server):
    return mlflow.MlflowClient(mlflow_server.url)


def test_params_are_the_whole_resolved_config(server_run, client):
    run = client.get_run(server_run.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {key: str(value) for key, value in
                               tracking.flatten_params(server_run.config).items()}
    assert run.data.params["train_limit"] == "2000" and run.data.params["attention"] == \
        "luong_general"


def test_tags_name_model_task_attention_data_commit_versions(server_run, client):
    run = client.get_run(server_run.run_id)
    tags = run.data.tags
    assert tags["mlflow.runName"] == f"luong_translator-luong_general-{run.info.run_id[:8]}"
    assert run.info.run_name == tags["mlflow.runName"]
    assert tags["zoo.model"] == "luong_translator"
    assert tags["zoo.task"] == "translation"
    assert tags["zoo.attention"] == "luong_general"
    assert tags["zoo.dataset"] == "multi30k"
    assert re.fullmatch(r"[0-9a-f]{16}", tags["zoo.dataset_hash"])
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", tags["git.commit"])
    for package in ("tensorflow", "keras", "tensorflow_text", "mlflow", "python"):
        assert tags[f"version.{package}"], package
    assert tags["version.mlflow"] == mlflow.__version__
    assert tags["zoo.registered_model"] == f"models:/luong_translator/{server_run.model_version}"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "translation"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_metrics_per_epoch_and_final(server_run, client):
    run_id = server_run.run_id
    epochs = SERVER_TRANSLATOR["epochs"]
    for key in EPOCH_METRICS:
        history = client.get_metric_history(run_id, key)
        assert sorted(m.step for m in history) == list(range(1, epochs + 1)), key
    for key in FINAL_METRICS:
        history = client.get_metric_history(run_id, key)
        assert [m.step for m in history] == [0], key
    metrics = client.get_run(run_id).data.metrics
    assert 0 <= metrics["test_bleu"] <= 100
    assert metrics["target_tokens_per_second"] > 0
    assert 0 < metrics["learning_rate"] <= SERVER_TRANSLATOR["learning_rate"]
    assert [h["epoch"] for h in server_run.history] == list(range(1, epochs + 1))


def test_artifacts_config_vocabulary_heatmaps_samples_model(server_run, client, tmp_path):
    run_id = server_run.run_id
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "tokenizer", "attention", "samples", "model"} <= top
    config = yaml.safe_load(Path(client.download_artifacts(run_id, "config.yaml",
                                                           str(tmp_path))).read_text())
    assert config == server_run.config
    tokenizer = {a.path for a in client.list_artifacts(run_id, "tokenizer")}
    assert tokenizer == {"tokenizer/subword.model", "tokenizer/vocabulary.txt"}
    vocabulary = Path(client.download_artifacts(run_id, "tokenizer/vocabulary.txt",
                                                str(tmp_path))).read_text().splitlines()
    assert len(vocabulary) == server_run.model.vocab_size
    heatmaps = [a.path for a in client.list_artifacts(run_id, "attention")]
    assert heatmaps == ["attention/sentence_00.png", "attention/sentence_01.png"]
    png = Path(client.download_artifacts(run_id, heatmaps[0], str(tmp_path))).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    samples = {a.path for a in client.list_artifacts(run_id, "samples")}
    assert samples == {"samples/translations.json", "samples/translations.tsv"}
    table = mlflow.load_table("samples/translations.json", run_ids=[run_id])
    assert list(table.columns[:3]) == ["source", "reference", "translation"]
    assert len(table) == SERVER_TRANSLATOR["samples"]
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/model.keras"]


def test_registered_model_version_is_the_serving_savedmodel(server_run, client, tmp_path):
    import tensorflow as tf

    version = client.get_model_version("luong_translator", server_run.model_version)
    assert version.run_id == server_run.run_id
    assert version.status == "READY"
    assert version.tags["zoo.run_id"] == server_run.run_id
    uri = f"models:/luong_translator/{server_run.model_version}"
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path)))
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert mlmodel["flavors"]["tensorflow"]["model_type"] == "tf2-module"
    assert mlmodel["metadata"]["zoo.model"] == "luong_translator"
    assert mlmodel["signature"]["inputs"]
    saved_model = local / mlmodel["flavors"]["tensorflow"]["saved_model_dir"]
    assert (saved_model / "saved_model.pb").is_file()
    loaded = tf.saved_model.load(str(saved_model))
    texts = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen."]
    outputs = loaded.signatures["serving_default"](text=tf.constant(texts))
    assert [t.decode() for t in outputs["translation"].numpy()] == \
        server_run.model.translate(texts)
    predictions = mlflow.pyfunc.load_model(str(local)).predict(np.array(texts))
    assert [t.decode() for t in np.asarray(predictions["translation"])] == \
        server_run.model.translate(texts)


def test_each_run_registers_a_new_version(server_run, client):
    """A second run registers version n + 1; logging again for a run returns its version."""
    from zoo.tracking import registry

    first = int(server_run.model_version)
    assert registry.log_serving_model(server_run.model, server_run.config,
                                      server_run.run_id).version == str(first)
    mlflow.set_experiment("translation")
    with mlflow.start_run(run_name="second-registration") as run:
        version = registry.log_serving_model(server_run.model, server_run.config,
                                             run.info.run_id)
    assert int(version.version) == first + 1 and version.run_id == run.info.run_id
    client.delete_run(run.info.run_id)  # keep the experiment's runs to real trainings
    versions = client.search_model_versions("name = 'luong_translator'")
    assert {int(v.version) for v in versions} >= {first, first + 1}


def test_zoo_export_from_the_registry(server_run, tmp_path, capsys):
    from export.saved_model import METADATA_FILE
    from zoo.cli import main

    uri = f"models:/luong_translator/{server_run.model_version}"
    assert main(["export", uri, "--model-dir", str(tmp_path)]) == 0
    path = tmp_path / "luong_translator" / "1"
    assert (path / "saved_model.pb").is_file()
    metadata = json.loads((path / "assets.extra" / METADATA_FILE).read_text())
    assert metadata["source"]["run_id"] == server_run.run_id
    assert "exported" in capsys.readouterr().out


def test_runs_compare_prints_the_experiment_table(server_run, capsys):
    from zoo.cli import main

    assert main(["runs", "compare", "--experiment", "translation", "--sort", "bleu"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("run "))
    for column in ("model", "attention", "BLEU", "wall time", "tokens/s"):
        assert column in header
    row = next(line for line in out.splitlines() if server_run.run_id[:8] in line)
    assert "luong_translator" in row and "luong_general" in row and "FINISHED" in row
    assert f"{server_run.metrics['test_bleu']:.2f}" in row
    assert main(["runs", "compare", "--experiment", "no-such-task"]) == 2
    assert "no experiment 'no-such-task'" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def test_the_run_in_the_mlflow_ui(server_run, mlflow_server, tmp_path):
    """A person's path in headless Chromium: the experiment list → `translation` → the run
    (its registered model version) → its metric charts → its attention heatmap. Screenshots
    go to the test's tmp_path."""
    if CHROMIUM is None:
        pytest.skip("no chromium (apt-get install chromium; .ci/run does)")
    pytest.importorskip("playwright.sync_api")
    shots = walk_the_ui(mlflow_server.url, server_run.run_id, server_run.model_version, tmp_path)
    for shot in shots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
    print("screenshots:", *shots, sep="\n  ")


def walk_the_ui(url, run_id, model_version, directory, timeout_ms=90_000):
    from playwright.sync_api import sync_playwright

    run_name = f"luong_translator-luong_general-{run_id[:8]}"
    shots = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            str(directory / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)

            def shot(name):
                shots.append(directory / name)
                page.screenshot(path=str(shots[-1]), full_page=True)

            page.goto(f"{url}/#/experiments")
            page.get_by_text("Model training", exact=True).click()
            page.get_by_role("link", name="translation", exact=True).click()
            page.get_by_role("link", name=run_name).click()
            page.get_by_text(run_id, exact=True).wait_for()
            page.get_by_text("zoo.dataset_hash").first.wait_for()
            registered = f'a[href="#/models/luong_translator/versions/{model_version}"]'
            page.locator(registered).first.wait_for()  # "Registered models: luong_translator"
            shot("1-run-overview.png")

            page.get_by_role("tab", name="Model metrics").click()
            line = page.locator(".js-plotly-plot:visible .scatterlayer .trace")
            page.get_by_text("loss", exact=True).first.wait_for()
            line.first.wait_for()
            shot("2-metric-charts.png")
            search = page.get_by_placeholder("Search metric charts")
            for metric in ("target_tokens_per_second", "val_bleu"):  # one chart each
                search.fill(metric)
                page.get_by_text(metric, exact=True).first.wait_for()
                page.wait_for_function(  # the one chart left, with its line drawn
                    "document.querySelectorAll('.js-plotly-plot').length === 1 && "
                    "document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length")
            shot("3-val-bleu-chart.png")

            page.get_by_role("tab", name="Artifacts").click()
            page.get_by_text("attention", exact=True).click()
            page.get_by_text("sentence_00.png", exact=True).click()
            page.get_by_text("attention/sentence_00.png", exact=True).wait_for()
            page.wait_for_function(
                "Array.from(document.images).some(i => i.complete && i.naturalWidth > 300)")
            shot("4-attention-heatmap.png")
        finally:
            browser.close()
    return shots
