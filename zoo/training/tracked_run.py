"""The MLflow run and run directory of one training process (chief or not)."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import mlflow

from zoo import tracking
from zoo.training import run_lock
from zoo.training.distribution import is_chief, training_config, worker_count, worker_index
from zoo.training.worker_sync import finish_together


@contextlib.contextmanager
def tracked_run(strategy, config, output_dir, resume=None):
    """The MLflow run and run directory of this process, as `(run_id, run_dir)`.

    The chief opens the run (`resume=(run_id, run_dir)`: that run again) in the configured
    store, under `<output_dir>/<run_id>`, and holds that directory's lock (`run_lock`; when
    resuming, the caller holds it) until the run has ended. Any other worker opens a run in a
    throwaway store in a temporary directory, which also holds its run directory (with a copy
    of the chief's checkpoints when resuming) and its temporary files, and is removed on exit.
    """
    effective = training_config(config, strategy)
    tags = {"zoo.strategy": config.get("strategy", "default"),
            "zoo.workers": str(worker_count(strategy)),
            "zoo.replicas": str(strategy.num_replicas_in_sync),
            "zoo.global_batch_size": str(effective["batch_size"]),
            "zoo.learning_rate": f"{effective['learning_rate']:g}"}
    if is_chief(strategy):
        if resume is None:
            tracking.use_experiment(config["task"])
            # The lock (entered in the outer ExitStack) is released after the run has its
            # final status, so a resumer never finds a run that is about to finish unlocked.
            with contextlib.ExitStack() as lock, mlflow.start_run() as run:
                run_dir = (Path(output_dir) / run.info.run_id).resolve()
                lock.enter_context(run_lock.hold(run_dir, run.info.run_id))
                mlflow.set_tags(tags)
                yield run.info.run_id, run_dir
        else:  # `resume_training` holds the run's lock
            with mlflow.start_run(run_id=resume[0]):
                mlflow.set_tags(tags)
                yield resume
        finish_together(strategy, resume[0] if resume else run.info.run_id)
        return
    with _worker_scratch(strategy) as scratch:
        client = mlflow.MlflowClient()
        client.create_experiment(config["task"], artifact_location=(scratch / "mlruns").as_uri())
        tracking.use_experiment(config["task"])
        with mlflow.start_run() as run:
            run_dir = scratch / "runs" / run.info.run_id
            if resume is not None and (Path(resume[1]) / "checkpoints").is_dir():
                shutil.copytree(Path(resume[1]) / "checkpoints", run_dir / "checkpoints")
            yield run.info.run_id, run_dir
        finish_together(strategy, resume[0] if resume else None)


@contextlib.contextmanager
def _worker_scratch(strategy):
    """A temporary directory for a non-chief worker's MLflow store, run directory and
    temporary files; the tracking URI and `tempfile` point into it until it is removed."""
    scratch = Path(tempfile.mkdtemp(prefix=f"zoo-worker{worker_index(strategy)}-")).resolve()
    (scratch / "tmp").mkdir()
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "TMPDIR")}
    saved_tempdir = tempfile.tempdir
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    os.environ["TMPDIR"] = tempfile.tempdir = str(scratch / "tmp")
    tracking.configure()
    print(f"worker {worker_index(strategy)} of {worker_count(strategy)}: not the chief; its "
          f"MLflow store, checkpoints and temporary files go to {scratch} (removed at the end)",
          flush=True)
    try:
        yield scratch
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        tracking.configure()
        shutil.rmtree(scratch, ignore_errors=True)
