"""`zoo ui`: the MLflow UI on the tracking store `zoo train` writes to."""

import os
import signal
import subprocess
from pathlib import Path

from zoo.tracking.mlflow_tracking import tracking_uri
from zoo.tracking.servers import server_command, server_environment


def ui_command(host="127.0.0.1", port=5000):
    """The `mlflow server` command line for the configured store (`$MLFLOW_TRACKING_URI`, else
    `./mlflow.db`). New experiments get their artifacts under `./mlruns`, where `zoo train`
    with the same embedded store puts them."""
    return server_command(tracking_uri(), host=host, port=port, workers=1,
                          default_artifact_root=Path("mlruns").resolve().as_uri())


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_ui(host="127.0.0.1", port=5000):
    """Run the UI in the foreground until Ctrl-C or SIGTERM, which stop the server and its
    workers too. With an `http(s)://` tracking URI the server is already there: print its
    address instead."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"MLFLOW_TRACKING_URI is a tracking server; its UI is {uri}")
        return 0
    print(f"MLflow UI: http://{host}:{port}  (store {uri}; Ctrl-C stops it)", flush=True)
    process = subprocess.Popen(ui_command(host, port), env=server_environment(),
                               start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # mlflow server and its uvicorn workers
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
