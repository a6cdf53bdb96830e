"""`zoo train` killed with SIGKILL after its 2nd epoch checkpoint, then `zoo train --resume
RUN_ID`: the same MLflow run goes on from the checkpoint (same tokenizer, weights and optimizer
state) and ends with every epoch's metrics exactly once. The dead process's run lock, left
behind, is taken over."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow

from tests.conftest import TINY_TRANSLATOR, require_multi30k

REPO = Path(__file__).resolve().parent.parent
EPOCHS = 5
RESUME_TRANSLATOR = TINY_TRANSLATOR | {"epochs": EPOCHS, "train_limit": 1500,
                                       "jit_compile": False}
EPOCH_METRICS = ("loss", "val_loss", "val_bleu", "val_chrf", "learning_rate",
                 "target_tokens_per_second", "epoch_seconds")


def _zoo(*arguments):
    return [sys.executable, "-m", "zoo.cli", *arguments]


def start_training(directory, config, log_path):
    """A real `zoo train luong_translator` subprocess with `config` as `--set`s, tracked in
    `<directory>/mlflow.db`, its runs under `<directory>/runs`: `(environment, output,
    process)`; its output goes to `log_path`."""
    environment = dict(os.environ)
    environment["MLFLOW_TRACKING_URI"] = f"sqlite:///{directory / 'mlflow.db'}"
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in [environment.get("PYTHONPATH")] if p])
    output = directory / "runs"
    settings = [f"--set={key}={json.dumps(value)}" for key, value in config.items()]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _zoo("train", "luong_translator", *settings, "--output-dir", str(output)),
            cwd=directory, env=environment, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    return environment, output, process


def _latest_checkpoint(output):
    for pointer in output.glob("*/checkpoints/latest.json"):
        try:
            return pointer.parent.parent.name, json.loads(pointer.read_text())["epoch"]
        except (OSError, ValueError):
            pass  # being replaced right now
    return None, 0


def test_sigkill_after_epoch_two_then_resume_continues_the_same_run(tmp_path):
    require_multi30k()
    first_log = tmp_path / "first.log"
    environment, output, process = start_training(tmp_path, RESUME_TRANSLATOR, first_log)
    try:
        deadline = time.monotonic() + 600
        run_id, epoch = None, 0
        while epoch < 2:
            assert process.poll() is None, first_log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no 2nd epoch checkpoint in 10 minutes"
            time.sleep(0.05)
            run_id, epoch = _latest_checkpoint(output)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_after = _latest_checkpoint(output)[1]
    assert 2 <= killed_after < EPOCHS, "the training finished before it was killed"

    client = mlflow.MlflowClient(environment["MLFLOW_TRACKING_URI"])
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"  # nobody ended it: the process died at once
    lock = json.loads((output / run_id / ".lock").read_text())  # nor released its lock
    assert (lock["pid"], lock["run_id"]) == (process.pid, run_id)
    tokenizer_before = (output / run_id / "tokenizer" / "subword.model").read_bytes()
    logged_before = [m.step for m in client.get_metric_history(run_id, "loss")]
    assert logged_before == list(range(1, len(logged_before) + 1))
    assert len(logged_before) <= killed_after

    resumed = subprocess.run(
        _zoo("train", "--resume", run_id, "--output-dir", str(output)),
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900,
        check=False)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming run {run_id} after epoch {killed_after} of {EPOCHS}" in resumed.stdout
    assert f"taking over from pid {process.pid}" in resumed.stdout
    assert f"run {run_id} is RUNNING in MLflow but no live process holds it" in resumed.stdout
    assert not (output / run_id / ".lock").exists()

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["zoo.resumes"] == "1"
    assert run.data.tags["zoo.resumed_from_epoch"] == str(killed_after)
    for key in EPOCH_METRICS:
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert sorted(steps) == list(range(1, EPOCHS + 1)), (key, steps)
    for key in ("test_bleu", "train_examples", "parameters"):
        assert len(client.get_metric_history(run_id, key)) == 1, key
    assert [r.info.run_id for r in client.search_runs([run.info.experiment_id])] == [run_id]

    # The same tokenizer, and the weights went on from the checkpoint instead of restarting.
    assert (output / run_id / "tokenizer" / "subword.model").read_bytes() == tokenizer_before
    artifact = client.download_artifacts(run_id, "tokenizer/subword.model", str(tmp_path))
    assert Path(artifact).read_bytes() == tokenizer_before
    losses = {m.step: m.value for m in client.get_metric_history(run_id, "loss")}
    assert losses[killed_after + 1] < losses[1], losses
    rates = {m.step: m.value for m in client.get_metric_history(run_id, "learning_rate")}
    assert rates[EPOCHS] < rates[killed_after]  # the schedule went on decaying
    assert not (output / run_id / "checkpoints").exists()  # finished: checkpoints cleared
    assert client.search_model_versions(f"run_id = '{run_id}'")[0].name == "luong_translator"

