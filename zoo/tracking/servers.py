"""Local servers for the tracking store: an `mlflow server` (the UI and REST API) and a
throwaway PostgreSQL cluster to back it. Both bind 127.0.0.1 only."""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_command(backend_store_uri, host="127.0.0.1", port=5000, workers=1,
                   artifacts_destination=None, default_artifact_root=None):
    """The `mlflow server` command line (run with this interpreter's MLflow)."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
               "--host", host, "--port", str(port), "--workers", str(workers)]
    if artifacts_destination:
        command += ["--artifacts-destination", str(artifacts_destination)]
    if default_artifact_root:
        command += ["--default-artifact-root", str(default_artifact_root)]
    return command


def server_environment():
    """The environment for `mlflow server`: no tracking URI of a client, and no job runner
    (MLflow 3 starts several huey worker processes for its GenAI jobs; the zoo has none)."""
    environment = dict(os.environ)
    environment.pop("MLFLOW_TRACKING_URI", None)
    environment.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return environment


def _tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class MlflowServer:
    """`mlflow server` in a subprocess (its own process group), on 127.0.0.1 and a free port.

    Args:
        backend_store_uri: `sqlite:///...` or `postgresql://...`.
        artifacts_destination: the directory the server stores artifacts in; clients upload and
            download through the server (`mlflow-artifacts:/`).
        log_path: where the server's output goes (default: beside the artifacts).

    Use as a context manager; `url` is the tracking URI for clients.
    """

    def __init__(self, backend_store_uri, artifacts_destination, host="127.0.0.1", port=0,
                 workers=1, log_path=None):
        self.backend_store_uri = backend_store_uri
        self.artifacts_destination = Path(artifacts_destination)
        self.host = host
        self.port = port or free_port(host)
        self.workers = workers
        self.log_path = Path(log_path or self.artifacts_destination.parent / "mlflow-server.log")
        self.process = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self, timeout=180):
        self.artifacts_destination.mkdir(parents=True, exist_ok=True)
        command = server_command(self.backend_store_uri, self.host, self.port, self.workers,
                                 artifacts_destination=self.artifacts_destination)
        environment = server_environment()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.artifacts_destination.parent, env=environment, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n"
                                   f"{_tail(self.log_path)}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout} s:\n{_tail(self.log_path)}")

    def stop(self, timeout=30):
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and its workers
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def postgres_binaries():
    """Directory of PostgreSQL's server binaries (`initdb`, `pg_ctl`), or None."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if
                   Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


class LocalPostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 and a free port, trust authentication, one
    database (`mlflow`); `uri` is its SQLAlchemy URI. Started as root (PostgreSQL refuses to
    run as root), the cluster runs as the `postgres` user (or `nobody`) in a directory of its
    own under the system temp dir. Removed by `stop()`.
    """

    def __init__(self, port=0, database="mlflow", user="zoo"):
        self.port = port or free_port()
        self.database = database
        self.user = user
        self.bin = postgres_binaries()
        self.directory = None
        self.run_as = None

    @property
    def uri(self):
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the driver here is psycopg2.
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def log_path(self):
        return self.directory / "postgres.log"

    def _run(self, *command, timeout=120):
        kwargs = {}
        if self.run_as is not None:
            kwargs.update(user=self.run_as.pw_uid, group=self.run_as.pw_gid, extra_groups=[])
        result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                                check=False, timeout=timeout, cwd=self.directory, **kwargs)
        if result.returncode:
            raise RuntimeError(f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}\n{_tail(self.log_path)}")
        return result

    def start(self):
        if self.bin is None:
            raise RuntimeError("PostgreSQL not found (no initdb on PATH nor under "
                               "/usr/lib/postgresql/*/bin): apt-get install postgresql")
        self.directory = Path(tempfile.mkdtemp(prefix="zoo-postgres-"))
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.run_as = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            os.chown(self.directory, self.run_as.pw_uid, self.run_as.pw_gid)
        data = self.directory / "data"
        self._run(self.bin / "initdb", "-D", data, "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} "
                   "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
        self._run(self.bin / "pg_ctl", "-D", data, "-o", options, "-l", self.log_path, "-w",
                  "-t", "60", "start")
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user,
                                      dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()
        return self

    def stop(self):
        if self.directory is None:
            return
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(self.bin / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
