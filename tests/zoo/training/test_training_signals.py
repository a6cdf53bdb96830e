"""`zoo train` stopped by SIGTERM ends its MLflow run as KILLED and keeps its last epoch
checkpoint; the run lock lets exactly one process resume a run, refusing while its holder
lives and taking over from one that is gone. One real training serves every test here."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import mlflow
import pytest

from tests.support import (
    REPO,
    TINY_TRANSLATOR,
    latest_checkpoint,
    require_multi30k,
    start_training,
    zoo_command,
)

EPOCHS = 2
SIGNAL_TRANSLATOR = TINY_TRANSLATOR | {"epochs": EPOCHS, "train_limit": 640,
                                       "jit_compile": False}


def _run_lock():
    """zoo/training/run_lock.py alone: `zoo.training` would import TensorFlow, which the
    lock's helper processes below do not need."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "run_lock_under_test", REPO / "zoo" / "training" / "run_lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_lock = _run_lock()


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A real `zoo train` sent SIGTERM once its first epoch is checkpointed:
    `(environment, output dir, run id, the process, its log)`."""
    require_multi30k()
    directory = tmp_path_factory.mktemp("signals")
    log_path = directory / "train.log"
    environment, output, process = start_training(directory, SIGNAL_TRANSLATOR, log_path)
    try:
        run_id = _wait_for_first_checkpoint(process, output, log_path)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)  # stops within a step, not at the end of the epoch
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return environment, output, run_id, process, log_path.read_text()


def _wait_for_first_checkpoint(process, output, log_path):
    deadline = time.monotonic() + 600
    while True:
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, "no epoch checkpoint in 10 minutes"
        run_id, epoch = latest_checkpoint(output)
        if epoch >= 1:
            return run_id
        time.sleep(0.05)


def test_sigterm_marks_the_run_killed_and_keeps_the_checkpoint(stopped_run):
    environment, output, run_id, process, log = stopped_run
    assert process.returncode == 128 + signal.SIGTERM, log[-3000:]
    assert f"run {run_id} stopped by SIGTERM, marked KILLED" in log
    assert f"zoo train --resume {run_id}" in log
    run = mlflow.MlflowClient(environment["MLFLOW_TRACKING_URI"]).get_run(run_id)
    assert run.info.status == "KILLED"
    checkpoints = output / run_id / "checkpoints"
    epoch = latest_checkpoint(output)[1]
    assert epoch == 1, "the training went on after the signal"
    assert (checkpoints / f"epoch-{epoch:04d}" / "state.weights.h5").is_file()
    assert not [p.name for p in checkpoints.iterdir() if ".tmp-" in p.name]
    assert not (output / run_id / run_lock.LOCK_NAME).exists()  # released on the way out


def test_resume_is_refused_while_a_live_process_holds_the_run(stopped_run, tmp_path):
    environment, output, run_id, _, _ = stopped_run
    run_dir = output / run_id
    holder = subprocess.Popen(["sleep", "60"])
    try:
        identity = run_lock.process_identity(holder.pid)
        (run_dir / run_lock.LOCK_NAME).write_text(json.dumps(identity))
        before = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
        refused = subprocess.run(
            zoo_command("train", "--resume", run_id, "--output-dir", str(output)), cwd=tmp_path,
            env=environment, capture_output=True, text=True, timeout=300, check=False)
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    message = refused.stderr.splitlines()[-1]  # after TensorFlow's start-up lines
    assert message.startswith("zoo train: error: run directory "), refused.stderr[-2000:]
    assert f"pid {holder.pid} on host {socket.gethostname()}" in message
    assert "still running" in message
    # The loser touched nothing: same files, the holder's lock still in place.
    assert sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")) == before
    assert json.loads((run_dir / run_lock.LOCK_NAME).read_text()) == identity
    status = mlflow.MlflowClient(environment["MLFLOW_TRACKING_URI"]).get_run(run_id).info.status
    assert status == "KILLED"


def test_resume_takes_over_a_dead_holders_lock_and_finishes_the_run(stopped_run, tmp_path):
    environment, output, run_id, _, _ = stopped_run
    epoch = latest_checkpoint(output)[1]
    (output / run_id / run_lock.LOCK_NAME).write_text(json.dumps(_dead_identity()))
    resumed = subprocess.run(
        zoo_command("train", "--resume", run_id, "--output-dir", str(output)), cwd=tmp_path,
        env=environment, capture_output=True, text=True, timeout=900, check=False)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "taking over from pid" in resumed.stdout
    assert f"resuming run {run_id} after epoch {epoch} of {EPOCHS}" in resumed.stdout
    client = mlflow.MlflowClient(environment["MLFLOW_TRACKING_URI"])
    assert client.get_run(run_id).info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    assert sorted(steps) == list(range(1, EPOCHS + 1))
    assert not (output / run_id / run_lock.LOCK_NAME).exists()


def _dead_identity():
    """A lock as a process that has exited left it (SIGKILL, OOM: nothing removed it)."""
    process = subprocess.Popen(["sleep", "60"])
    identity = run_lock.process_identity(process.pid)
    process.kill()
    process.wait()
    return identity


def test_lock_of_a_recycled_pid_or_an_earlier_boot_is_stale():
    me = run_lock.process_identity()
    assert run_lock.holder_state(me) == "live"
    assert run_lock.holder_state(me | {"start_time": me["start_time"] - 1}) == "stale"
    assert run_lock.holder_state(me | {"boot_id": "another-boot"}) == "stale"
    assert run_lock.holder_state(_dead_identity()) == "stale"


def test_lock_of_another_host_is_refused_with_how_to_clear_it(tmp_path):
    (tmp_path / run_lock.LOCK_NAME).write_text(json.dumps(
        {"pid": os.getpid(), "host": "elsewhere.example", "start_time": 1, "boot_id": "x"}))
    with pytest.raises(run_lock.RunLockedError) as refused:
        run_lock.acquire(tmp_path)
    message = str(refused.value)
    assert f"pid {os.getpid()} on host elsewhere.example" in message
    assert f"delete {tmp_path / run_lock.LOCK_NAME}" in message


def test_lock_is_released_only_by_its_holder(tmp_path):
    with run_lock.hold(tmp_path, "run") as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(run_lock.RunLockedError, match="still running"):
            run_lock.acquire(tmp_path)
    assert not lock.path.exists()


_TAKE_OVER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("run_lock", sys.argv[1])
run_lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_lock)
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # start together
try:
    run_lock.acquire(sys.argv[2])
except run_lock.RunLockedError:
    sys.exit(3)
time.sleep(2)  # hold it while the others try
"""


def test_only_one_of_several_processes_takes_over_a_stale_lock(tmp_path):
    (tmp_path / run_lock.LOCK_NAME).write_text(json.dumps(_dead_identity()))
    start = time.time() + 1.5
    racers = [subprocess.Popen([sys.executable, "-c", _TAKE_OVER,
                                str(REPO / "zoo" / "training" / "run_lock.py"), str(tmp_path),
                                str(start)], stdout=subprocess.DEVNULL) for _ in range(4)]
    codes = sorted(racer.wait(timeout=60) for racer in racers)
    assert codes == [0, 3, 3, 3]


def test_sigint_raises_stopped_and_a_checkpoint_write_defers_it():
    from zoo.training.callbacks import Stopped, signals_deferred, stop_on_signals

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Stopped) as stopped, stop_on_signals():
        written = []
        with signals_deferred():  # as `RunCheckpoint.save`: the write completes first
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)  # the handler has run (main thread, between bytecodes)
            written.append("checkpoint")
    assert stopped.value.signum == signal.SIGINT and written == ["checkpoint"]
    assert signal.getsignal(signal.SIGINT) is before  # put back for the caller
