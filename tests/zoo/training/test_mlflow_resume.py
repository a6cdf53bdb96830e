"""`zoo train` killed with SIGKILL after its 2nd epoch checkpoint, then `zoo train --resume
RUN_ID`: the same MLflow run goes on from the checkpoint (same tokenizer, weights and optimizer
state) and ends with every epoch's metrics exactly once. The dead process's run lock, left
behind, is taken over."""

import json
import signal
import subprocess
import time
from pathlib import Path

import mlflow

from tests.support import (
    TINY_TRANSLATOR,
    assert_resumed_once,
    latest_checkpoint,
    require_multi30k,
    start_training,
    zoo_command,
)

EPOCHS = 5
RESUME_TRANSLATOR = TINY_TRANSLATOR | {"epochs": EPOCHS, "train_limit": 1500,
                                       "jit_compile": False}
EPOCH_METRICS = ("loss", "val_loss", "val_bleu", "val_chrf", "learning_rate",
                 "target_tokens_per_second", "epoch_seconds")


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
            run_id, epoch = latest_checkpoint(output)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_after = latest_checkpoint(output)[1]
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
        zoo_command("train", "--resume", run_id, "--output-dir", str(output)),
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900,
        check=False)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming run {run_id} after epoch {killed_after} of {EPOCHS}" in resumed.stdout
    assert f"taking over from pid {process.pid}" in resumed.stdout
    assert f"run {run_id} is RUNNING in MLflow but no live process holds it" in resumed.stdout
    assert not (output / run_id / ".lock").exists()

    run = assert_resumed_once(client, run_id, killed_after, EPOCHS, EPOCH_METRICS)
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

