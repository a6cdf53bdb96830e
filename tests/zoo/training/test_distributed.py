"""Multi-worker training (`strategy: multi_worker`): real `zoo train` processes on 127.0.0.1
forming a tf.distribute cluster from their TF_CONFIG, a real sqlite MLflow store.

1. Two workers train a tiny translator: the same weights on both, the chief's run has every
   metric, the loss is a single-worker run's on the same global batch, and the worker leaves
   no file outside its temporary directory.
2. Worker 1 is killed mid-run: the chief stops with a clear error within a bounded time, the
   run is FAILED, and `zoo cluster-local 2 --resume RUN_ID` completes it.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import mlflow
import pytest

from tests.support import REPO, TINY_TRANSLATOR, assert_resumed_once, require_multi30k
from zoo.training.local_cluster import tf_configs

pytestmark = pytest.mark.timeout(900)  # a hang fails the test instead of the suite

# A few optimizer steps: 2 epochs of ~10 global batches of 32 (16 per worker).
CLUSTER_TRANSLATOR = TINY_TRANSLATOR | {
    "train_limit": 480, "eval_limit": 16, "val_bleu_limit": 16, "epochs": 2, "heatmaps": 1,
    "samples": 2}
EPOCH_METRICS = ("loss", "val_loss", "val_bleu", "learning_rate", "target_tokens_per_second")
DIGEST = re.compile(r"worker (\d) of 2.*: weights sha256 (\w+) after (\d+) optimizer steps")


def _environment(tmp_path, cwd):
    environment = dict(os.environ)
    environment["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in [environment.get("PYTHONPATH")] if p])
    environment["TMPDIR"] = str(cwd / "tmp")
    return environment


def _start_workers(tmp_path, settings, count=2):
    """`count` `zoo train` processes, each with its TF_CONFIG, working directory, TMPDIR and
    log file under `tmp_path/worker<i>/`."""
    workers = []
    for index, tf_config in enumerate(tf_configs(count)):
        cwd = tmp_path / f"worker{index}"
        (cwd / "tmp").mkdir(parents=True)
        environment = _environment(tmp_path, cwd) | {"TF_CONFIG": tf_config}
        log = open(tmp_path / f"worker{index}.log", "wb")  # noqa: SIM115 (closed by _finish)
        process = subprocess.Popen(
            [sys.executable, "-m", "zoo.cli", "train", "luong_translator", *settings,
             "--output-dir", str(tmp_path / "runs")],
            cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        workers.append((process, log))
    return workers


def _finish(workers, timeout):
    end = time.monotonic() + timeout
    try:
        for process, _ in workers:
            process.wait(timeout=max(1.0, end - time.monotonic()))
    finally:
        for process, log in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()


def _settings(config):
    return [f"--set={key}={json.dumps(value)}" for key, value in config.items()]


def _log(tmp_path, index):
    return (tmp_path / f"worker{index}.log").read_text(errors="replace")


def test_two_workers_train_the_model_one_worker_trains(tmp_path, monkeypatch):
    require_multi30k()
    # A time budget it does not reach: the workers still agree after every step on stopping.
    config = CLUSTER_TRANSLATOR | {"strategy": "multi_worker", "time_budget_minutes": 30.0}
    workers = _start_workers(tmp_path, _settings(config))
    _finish(workers, timeout=600)
    logs = [_log(tmp_path, index) for index in range(2)]
    for (process, _), log in zip(workers, logs, strict=True):
        assert process.returncode == 0, log[-4000:]

    # Both replicas end with the same weights after the same steps.
    digests = [DIGEST.search(log).groups() for log in logs]
    assert [d[0] for d in digests] == ["0", "1"]
    assert digests[0][1:] == digests[1][1:], digests
    steps = int(digests[0][2])
    assert steps >= 2 * 5

    # The chief's run holds the whole training; the worker tracked nothing and left nothing.
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["zoo.strategy"] == "multi_worker"
    assert run.data.tags["zoo.workers"] == "2"
    assert run.data.tags["zoo.global_batch_size"] == "32"
    for key in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2], key
    assert "test_bleu" in run.data.metrics
    assert client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [run.info.run_id]
    assert "worker 1 of 2: not the chief" in logs[1]
    leftovers = [p for p in (tmp_path / "worker1").rglob("*") if p.is_file()]
    assert leftovers == [], leftovers
    assert not any((tmp_path / "worker1" / "tmp").iterdir())

    # One worker on the same global batch (default strategy, in this process): same losses.
    from zoo.training import train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'single.db'}")
    monkeypatch.chdir(tmp_path)
    single = train("luong_translator", CLUSTER_TRANSLATOR, output_dir=tmp_path / "single",
                   verbose=0)
    for epoch, entry in enumerate(single.history, start=1):
        for key in ("loss", "val_loss"):
            distributed = client.get_metric_history(run.info.run_id, key)[epoch - 1].value
            assert distributed == pytest.approx(entry[key], rel=1e-2), (key, epoch)


def _latest_epoch(run_dir):
    try:
        return json.loads((run_dir / "checkpoints" / "latest.json").read_text())["epoch"]
    except (OSError, ValueError):
        return 0  # none yet, or being replaced right now


def test_a_killed_worker_stops_the_chief_and_the_run_resumes(tmp_path):
    require_multi30k()
    epochs = 2
    config = CLUSTER_TRANSLATOR | {"strategy": "multi_worker", "epochs": epochs,
                                   "heartbeat_timeout_seconds": 5.0}
    workers = _start_workers(tmp_path, _settings(config))
    (chief, _), (worker, _) = workers
    try:
        deadline = time.monotonic() + 600
        run_dirs = []
        while not run_dirs or _latest_epoch(run_dirs[0]) < 1:
            assert chief.poll() is None and worker.poll() is None, _log(tmp_path, 0)[-3000:]
            assert time.monotonic() < deadline, "no first checkpoint in 10 minutes"
            time.sleep(0.05)
            run_dirs = list((tmp_path / "runs").glob("*")) if (tmp_path / "runs").is_dir() else []
        worker.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        chief.wait(timeout=120)
        stopped_after = time.monotonic() - killed
    finally:
        _finish(workers, timeout=1)
    run_id = run_dirs[0].name
    killed_after = _latest_epoch(run_dirs[0])
    assert 1 <= killed_after < epochs, "the training ended before the worker was killed"

    chief_log = _log(tmp_path, 0)
    assert chief.returncode == 1, chief_log[-3000:]
    print(f"the chief stopped {stopped_after:.1f} s after worker 1 was killed")
    assert stopped_after < 60, f"the chief took {stopped_after:.0f} s to stop"
    assert "zoo train: error: multi_worker training stopped: lost contact with" in chief_log
    assert "lost contact with /job:worker/replica:0/task:1 (" in chief_log
    assert f"zoo train --resume {run_id}" in chief_log
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_run(run_id).info.status == "FAILED"

    # The same run continues on two fresh workers from the chief's last checkpoint.
    resumed = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "cluster-local", "2", "--resume", run_id,
         "--output-dir", str(tmp_path / "runs")],
        cwd=tmp_path / "worker0", env=_environment(tmp_path, tmp_path / "worker0"),
        capture_output=True, text=True, timeout=600, check=False)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-4000:]
    assert f"[worker 0] resuming run {run_id} after epoch {killed_after} of {epochs}" in output
    assert f"[worker 1] resuming run {run_id} after epoch {killed_after} of {epochs}" in output
    digests = {match.group(1): match.group(2) for match in DIGEST.finditer(output)}
    assert len(digests) == 2 and len(set(digests.values())) == 1, digests

    assert_resumed_once(client, run_id, killed_after, epochs, EPOCH_METRICS)
    assert client.search_model_versions(f"run_id = '{run_id}'")


def test_every_model_takes_the_distribution_keys():
    from zoo.config import ConfigError
    from zoo.models import catalog

    keys = {"strategy": "multi_worker", "per_replica_batch": True,
            "learning_rate_scaling": "sqrt", "heartbeat_timeout_seconds": 5.0}
    for name in catalog.list_models():  # whatever each builder declares
        assert catalog.resolve_config(name, keys).items() >= keys.items(), name
    for bad, key in (({"strategy": "ring"}, "'strategy'"),
                     ({"learning_rate_scaling": "cubic"}, "'learning_rate_scaling'"),
                     ({"cluster_timeout_seconds": 0.0}, "'cluster_timeout_seconds'")):
        with pytest.raises(ConfigError, match=key):
            catalog.resolve_config("luong_translator", bad)


def test_a_tf_config_cluster_needs_strategy_multi_worker(monkeypatch):
    from zoo.config import ConfigError
    from zoo.models import catalog
    from zoo.training import distribution

    monkeypatch.setenv("TF_CONFIG", tf_configs(2)[1])
    with pytest.raises(ConfigError, match="cluster of 2 tasks but key 'strategy' is 'default'"):
        distribution.get_strategy(catalog.resolve_config("luong_translator"))
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid"):
        distribution.get_strategy(catalog.resolve_config("luong_translator"))


def test_a_worker_whose_cluster_never_forms_gives_up(tmp_path):
    """Worker 1 of a 2-worker TF_CONFIG whose chief never starts is stopped after
    cluster_timeout_seconds (SIGKILL: the wait holds the GIL) and says why; nothing tracked."""
    environment = _environment(tmp_path, tmp_path) | {"TF_CONFIG": tf_configs(2)[1]}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "train", "luong_translator",
         "--set=strategy=multi_worker", "--set=cluster_timeout_seconds=3"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert "the cluster did not form within cluster_timeout_seconds=3" in result.stderr
    assert "task worker:1 of 2" in result.stderr
    assert time.monotonic() - started < 240
    assert not (tmp_path / "mlflow.db").exists()


# Two replicas in one process (2 logical CPUs, MirroredStrategy): the loss and one SGD step on a
# batch whose halves hold very different token counts, and an evaluation whose only (partial)
# batch splits 3/2, equal those of one device; the batch and learning-rate rule.
TWO_REPLICAS = """
import json
import keras, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from zoo.config import ConfigError
from zoo.training import distribution
strategy = distribution._KerasMirroredStrategy(["/cpu:0", "/cpu:1"])  # what strategy=mirrored makes
from zoo.losses import SmoothedSequenceLoss

def build():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None,), dtype="int32")
    logits = keras.layers.Dense(7)(keras.layers.Embedding(7, 4)(inputs))
    model = keras.Model(inputs, logits)
    model.compile(keras.optimizers.SGD(0.5), SmoothedSequenceLoss(0.1))
    return model

with strategy.scope():
    mirrored = build()
single = build()
single.set_weights(mirrored.get_weights())
# Rows 0-1 (replica 0) have 6 real target tokens, rows 2-3 (replica 1) one: 0 is padding.
x = np.array([[1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 1], [3, 0, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0]])
y = np.array([[2, 3, 4, 5, 6, 1], [3, 4, 5, 6, 1, 2], [5, 0, 0, 0, 0, 0], [6, 0, 0, 0, 0, 0]])
train = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
partial = tf.data.Dataset.from_tensor_slices((np.concatenate([x, x[:1]]),
                                              np.concatenate([y, y[:1]]))).batch(5)
result = {"replicas": strategy.num_replicas_in_sync}
for name, model in (("mirrored", mirrored), ("single", single)):
    result[name + "_evaluate"] = float(model.evaluate(partial, verbose=0))
    result[name + "_fit"] = float(model.fit(train, epochs=1, verbose=0).history["loss"][0])
result["weights_equal"] = all(np.allclose(a, b, atol=1e-6) for a, b in
                              zip(mirrored.get_weights(), single.get_weights()))
result["weights_changed"] = not np.allclose(mirrored.get_weights()[0], build().get_weights()[0])
base = {"batch_size": 32, "learning_rate": 0.01, "per_replica_batch": True}
for rule in ("none", "linear", "sqrt"):
    step = distribution.training_config(base | {"learning_rate_scaling": rule}, strategy)
    result[rule] = [step["batch_size"], step["learning_rate"]]
result["global"] = distribution.training_config(base | {"per_replica_batch": False}, strategy)[
    "batch_size"]
try:
    distribution.training_config(base | {"per_replica_batch": False, "batch_size": 33}, strategy)
except ConfigError as error:
    result["uneven"] = str(error)
try:
    distribution.training_config(base | {"jit_compile": True}, strategy)
except ConfigError as error:
    result["jit"] = str(error)
print("RESULT " + json.dumps(result))
"""


def test_two_replicas_compute_the_loss_and_step_of_one_device(tmp_path):
    environment = _environment(tmp_path, tmp_path)
    (tmp_path / "tmp").mkdir()
    result = subprocess.run([sys.executable, "-c", TWO_REPLICAS], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(result.stdout.split("RESULT ", 1)[1])
    assert values["replicas"] == 2
    assert values["mirrored_evaluate"] == pytest.approx(values["single_evaluate"], rel=1e-5)
    assert values["mirrored_fit"] == pytest.approx(values["single_fit"], rel=1e-5)
    assert values["weights_equal"] and values["weights_changed"]
    assert values["none"] == [64, pytest.approx(0.01)]
    assert values["linear"] == [64, pytest.approx(0.02)]
    assert values["sqrt"] == [64, pytest.approx(0.01 * 2 ** 0.5)]
    assert values["global"] == 32
    assert "must split evenly among the 2 replicas" in values["uneven"]
    assert "XLA cannot compile the all-reduce of 2 replicas on CPUs" in values["jit"]
