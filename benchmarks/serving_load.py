"""Load test of the gRPC model server: 1, 8 and 32 concurrent clients, batching off and on.

The server (``python -m serving.server``) runs in its own process; each client is a thread in a
closed loop (send one request, wait for the answer, send the next) using ``serving.Client``.
For every (batching, concurrency) pair it warms up, then measures for a fixed time: requests/s,
p50/p90/p99 latency and errors. Results go to ``benchmarks/results/serving_load.json``.

    python benchmarks/serving_load.py                       # builds the tiny translator fixture
    python benchmarks/serving_load.py export/luong_translator/3 --model luong_translator
    python benchmarks/serving_load.py --duration 10 --concurrency 1 8 32 64

Clients and server share the machine's cores, so on a small host the figures are a lower bound
on what the server alone does; compare configurations measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_TEXTS = [
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau in einem roten Kleid liest ein Buch.",
    "Kinder spielen am Strand.",
]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


def _prepare_repository(saved_model: str | None, model: str, workdir: Path) -> Path:
    """A repository ``<workdir>/repo/<model>/1`` pointing at the SavedModel (or the fixture)."""
    repo = workdir / "repo"
    (repo / model).mkdir(parents=True)
    if saved_model is None:
        from serving import fixtures

        fixtures.build_translator(repo / model / "1", tag="1")
        return repo
    source = Path(saved_model).resolve()
    if not (source / "saved_model.pb").exists():  # a base path: take its newest version
        versions = sorted((int(p.name) for p in source.iterdir() if p.name.isdigit()),
                          reverse=True)
        if not versions:
            raise SystemExit(f"{source} has no saved_model.pb and no version directories")
        source = source / str(versions[0])
    os.symlink(source, repo / model / "1", target_is_directory=True)
    return repo


class _Server:
    def __init__(self, repo: Path, batching_file: str | None, log_path: Path):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        args = [sys.executable, "-m", "serving.server", str(repo), "--port", "0",
                "--file_system_poll_wait_seconds", "0", "--grpc_max_threads", "128"]
        if batching_file:
            args += ["--enable_batching", "--batching_parameters_file", batching_file]
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True)
        self.target = None
        for line in self.process.stdout:
            if line.startswith("serving on"):
                self.target = line.split("serving on", 1)[1].strip()
                break
        if self.target is None:
            raise SystemExit(f"server did not start; see {log_path}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _run_load(target: str, model: str, input_name: str, texts: list[str], concurrency: int,
              duration: float, timeout: float) -> dict:
    from serving import Client

    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[list[str]] = [[] for _ in range(concurrency)]
    start_barrier = threading.Barrier(concurrency + 1)
    deadline: list[float] = [0.0]

    def worker(index: int) -> None:
        with Client(target, timeout=timeout, retries=0) as client:
            client.predict(model, {input_name: [texts[index % len(texts)]]})  # connect
            start_barrier.wait()
            n = index
            while True:
                text = texts[n % len(texts)]
                n += 1
                started = time.perf_counter()
                if started >= deadline[0]:
                    return
                try:
                    client.predict(model, {input_name: [text]})
                    latencies[index].append(time.perf_counter() - started)
                except Exception as error:  # noqa: BLE001 - counted as an error
                    errors[index].append(f"{type(error).__name__}: {error}"[:200])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + 3600  # set for real once everyone is connected
    start_barrier.wait()
    began = time.perf_counter()
    deadline[0] = began + duration
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = [x for xs in latencies for x in xs]
    flat_errors = [e for es in errors for e in es]
    return {
        "concurrency": concurrency,
        "requests": len(flat),
        "errors": len(flat_errors),
        "error_examples": sorted(set(flat_errors))[:3],
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(flat) / elapsed, 1),
        "p50_ms": round(_percentile(flat, 50) * 1000, 2),
        "p90_ms": round(_percentile(flat, 90) * 1000, 2),
        "p99_ms": round(_percentile(flat, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(flat) * 1000, 2) if flat else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved_model", nargs="?", default=None,
                        help="SavedModel directory (or a model base path); default: build the "
                             "tiny translator fixture")
    parser.add_argument("--model", default="tiny_translator", help="model name to serve it as")
    parser.add_argument("--input", default="text", help="string input of serving_default")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request deadline")
    parser.add_argument("--batching_parameters_file",
                        default=str(REPO_ROOT / "serving" / "tf_serving" /
                                    "batching_parameters.txt"))
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" /
                                                "serving_load.json"))
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="serving_load_") as tmp:
        workdir = Path(tmp)
        repo = _prepare_repository(args.saved_model, args.model, workdir)
        for batching in (False, True):
            server = _Server(repo, args.batching_parameters_file if batching else None,
                             workdir / f"server_batching_{batching}.log")
            try:
                for concurrency in args.concurrency:
                    if args.warmup > 0:  # XLA compiles each new batch shape once
                        _run_load(server.target, args.model, args.input, DEFAULT_TEXTS,
                                  concurrency, args.warmup, args.timeout)
                    row = _run_load(server.target, args.model, args.input, DEFAULT_TEXTS,
                                    concurrency, args.duration, args.timeout)
                    row["batching"] = batching
                    results.append(row)
                    print(f"batching={'on ' if batching else 'off'} clients={concurrency:3d} "
                          f"{row['requests_per_s']:8.1f} req/s  p50 {row['p50_ms']:7.2f} ms  "
                          f"p99 {row['p99_ms']:7.2f} ms  errors {row['errors']}", flush=True)
            finally:
                server.stop()

    report = {
        "benchmark": "serving_load",
        "model": args.model,
        "saved_model": args.saved_model or "serving.fixtures.build_translator (tiny fixture)",
        "request": f"Predict, 1 text per request, input '{args.input}'",
        "server": "python -m serving.server (separate process), gRPC over 127.0.0.1",
        "batching_parameters_file": os.path.relpath(args.batching_parameters_file, REPO_ROOT),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "python": platform.python_version()},
        "note": "clients and server share the host's cores",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": results,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = output.with_suffix(output.suffix + ".tmp")
    tmp_path.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp_path, output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
