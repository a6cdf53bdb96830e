"""`zoo ui`: the MLflow UI on the tracking store `zoo train` writes to."""

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


def run_ui(host="127.0.0.1", port=5000):
    """Run the UI in the foreground until Ctrl-C. With an `http(s)://` tracking URI the server
    is already there: print its address instead."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"MLFLOW_TRACKING_URI is a tracking server; its UI is {uri}")
        return 0
    command = ui_command(host, port)
    print(f"MLflow UI: http://{host}:{port}  (store {uri}; Ctrl-C stops it)", flush=True)
    try:
        return subprocess.call(command, env=server_environment())
    except KeyboardInterrupt:
        return 0
