"""The tracking server at scale's setup: PostgreSQL (a throwaway cluster on 127.0.0.1 and a
free port) as MLflow's backend store, `mlflow server` on it, a tiny training against it."""

import os

import mlflow
import pytest

from tests.support import TINY_TRANSLATOR, require_multi30k
from zoo import tracking
from zoo.tracking.servers import LocalPostgres, MlflowServer, postgres_binaries

POSTGRES_TRANSLATOR = TINY_TRANSLATOR | {"epochs": 1, "train_limit": 1200, "jit_compile": False,
                                         "heatmaps": 1, "samples": 2}


def test_tiny_training_against_mlflow_server_on_postgresql(tmp_path, monkeypatch):
    require_multi30k()
    if postgres_binaries() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    psycopg2 = pytest.importorskip("psycopg2")
    from zoo.training import train

    with LocalPostgres() as postgres, MlflowServer(postgres.uri, tmp_path / "artifacts") as server:
        cluster_directory = postgres.directory
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        try:
            result = train("luong_translator", POSTGRES_TRANSLATOR, output_dir=tmp_path / "runs",
                           verbose=0)
            client = mlflow.MlflowClient(server.url)
            run = client.get_run(result.run_id)
            assert run.info.status == "FINISHED"
            assert run.data.params["epochs"] == "1"
            assert [m.step for m in client.get_metric_history(result.run_id, "val_bleu")] == [1]
            assert "test_bleu" in run.data.metrics
            version = client.get_model_version("luong_translator", result.model_version)
            assert version.run_id == result.run_id
            assert {a.path for a in client.list_artifacts(result.run_id, "attention")} == {
                "attention/sentence_00.png"}
        finally:
            monkeypatch.undo()
            tracking.configure()

        # It really is PostgreSQL that holds the run, its metrics and the registry.
        connection = psycopg2.connect(host="127.0.0.1", port=postgres.port, user=postgres.user,
                                      dbname=postgres.database)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (result.run_id,))
                assert cursor.fetchone() == ("FINISHED",)
                cursor.execute("SELECT count(*) FROM metrics WHERE run_uuid = %s AND key = %s",
                               (result.run_id, "loss"))
                assert cursor.fetchone() == (1,)
                cursor.execute("SELECT name, version FROM model_versions WHERE run_id = %s",
                               (result.run_id,))
                assert cursor.fetchall() == [("luong_translator", int(result.model_version))]
        finally:
            connection.close()
    assert not os.path.exists(cluster_directory)  # the cluster is gone
