"""Load test of the gRPC model server: 1, 8 and 32 concurrent clients, batching off and on.

The server (`python -m serving.server`) runs in its own process; each client is a thread in a
closed loop (send one request, wait for the answer, send the next) using `serving.Client`.
For every (batching, concurrency) pair it warms up, then measures for a fixed time: requests/s,
p50/p90/p99 latency and errors. Results go to `benchmarks/results/serving_load.json`.

    python benchmarks/serving_load.py                       # builds the tiny translator fixture
    python benchmarks/serving_load.py export/luong_translator/3 --model luong_translator
    python benchmarks/serving_load.py --duration 10 --concurrency 1 8 32 64
    python benchmarks/serving_load.py --tiny-translator     # a real (tiny, trained) translator

`--tiny-translator` trains the tests' tiny luong_translator (or takes `--keras model.keras`),
exports it twice (XLA core and `jit_compile=False`, both op-checked, with warm-up requests) and
serves real Multi30k test sentences. It also writes `benchmarks/results/serving_latency.json`:

* the first request of each shape with and without the export's warm-up requests replayed at
  load (`--enable_model_warmup`), and the server's start-up time in both cases;
* batch 1 latency of an in-process call of the SavedModel signature vs the same call over gRPC;
* greedy decoding latency of the XLA and the no-XLA export at batch 1 and 32 (in-process).

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
    """A repository `<workdir>/repo/<model>/1` pointing at the SavedModel (or the fixture)."""
    repo = workdir / "repo"
    (repo / model).mkdir(parents=True)
    if saved_model is None:
        from serving import fixtures

        fixtures.build_translator(repo / model / "1", tag="1")
        return repo
    os.symlink(_version_dir(saved_model), repo / model / "1", target_is_directory=True)
    return repo


def _version_dir(saved_model: str) -> Path:
    """The SavedModel directory itself, or a base path's newest version."""
    from serving.versions import version_dirs

    source = Path(saved_model).resolve()
    if not (source / "saved_model.pb").exists():
        versions = sorted(version_dirs(source), reverse=True)
        if not versions:
            raise SystemExit(f"{source} has no saved_model.pb and no version directories")
        source = source / str(versions[0])
    return source


def _export_metadata(saved_model: str | None) -> dict | None:
    """What the served export is (`assets.extra/zoo_export.json` of its newest version):
    precision, XLA, decoding."""
    if saved_model is None:
        return None
    path = _version_dir(saved_model) / "assets.extra" / "zoo_export.json"
    if not path.is_file():
        return None
    metadata = json.loads(path.read_text())
    return {"precision": metadata.get("precision", "float32"),
            "jit_compile": metadata.get("jit_compile"),
            "decoding": metadata.get("config", {}).get("decoding")}


class _Server:
    def __init__(self, repo: Path, batching_file: str | None, log_path: Path,
                 warmup: bool = True):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        args = [sys.executable, "-m", "serving.server", str(repo), "--port", "0",
                "--file_system_poll_wait_seconds", "0", "--grpc_max_threads", "128",
                f"--enable_model_warmup={'true' if warmup else 'false'}"]
        if batching_file:
            args += ["--enable_batching", "--batching_parameters_file", batching_file]
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.process = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True)
        self.target = None
        for line in self.process.stdout:
            if line.startswith("serving on"):
                self.target = line.split("serving on", 1)[1].strip()
                break
        self.ready_s = time.perf_counter() - started  # process start, load, warm-up, bind
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


# ------------------------------------------------------------------ a real (tiny) translator

TINY_MODEL = "luong_translator"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _multi30k_sources(limit: int = 256) -> list[str]:
    """German sides of the Multi30k test set (`$ZOO_DATA_DIR/mt/test.tsv`: English, German)."""
    data_dir = Path(os.environ.get("ZOO_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    path = data_dir / "mt" / "test.tsv"
    if not path.is_file():
        raise SystemExit(f"--tiny-translator needs Multi30k: {path} not found (ZOO_DATA_DIR)")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[1].strip() for line in lines[:limit] if "\t" in line]


def _tiny_translator(keras_path: str | None, workdir: Path) -> tuple[Path, float | None]:
    """A trained tiny luong_translator: `keras_path` or trained now with the tests' config."""
    if keras_path:
        return Path(keras_path), None
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    from tests.conftest import TINY_TRANSLATOR
    from zoo.training import train

    started = time.perf_counter()
    old_cwd = os.getcwd()
    os.chdir(workdir)  # MLflow's default artifact root is relative to the working directory
    try:
        result = train("luong_translator", TINY_TRANSLATOR, output_dir=workdir / "runs",
                       verbose=0)
    finally:
        os.chdir(old_cwd)
    return Path(result.model_path), time.perf_counter() - started


def _export_pair(keras_path: Path, workdir: Path):
    from export import export_model
    from zoo.tracking.loading import load_trained

    model, source = load_trained(keras_path)
    return model, {
        "xla": export_model(model, workdir / "xla", name=TINY_MODEL, source=source,
                            check_ops=True),
        "plain": export_model(model, workdir / "plain", name=TINY_MODEL, source=source,
                              jit_compile=False, check_ops=True)}


def _stats(seconds: list[float]) -> dict:
    return {"calls": len(seconds), "p50_ms": round(_percentile(seconds, 50) * 1000, 2),
            "p99_ms": round(_percentile(seconds, 99) * 1000, 2),
            "mean_ms": round(statistics.fmean(seconds) * 1000, 2)}


def _request_shapes(model, texts: list[str]):
    """Requests whose shapes the export's warm-up covers (padded source length <= 32, batch
    1, 5 -> 8, 32) and one it does not (a source longer than 32 subwords); and the texts whose
    padded length the warm-up covers."""
    import tensorflow as tf

    lengths = {t: int(model.encode_texts(tf.constant([t])).shape[1]) for t in texts}
    covered = [t for t in texts if lengths[t] <= 32]
    short = min(covered, key=lengths.get)
    long = max(covered, key=lengths.get)
    beyond = next((t for t in texts if lengths[t] > 32), None)
    shapes = [(f"batch 1, source padded to {lengths[short]}", [short]),
              (f"batch 1, source padded to {lengths[long]}", [long]),
              ("batch 5 (padded to 8)", covered[:5]), ("batch 32", covered[5:37])]
    if beyond:
        shapes.append((f"batch 1, source padded to {lengths[beyond]} (no warm-up request)",
                       [beyond]))
    return shapes, covered


def _first_requests(repo: Path, warmup: bool, shapes, log_path: Path) -> dict:
    """Server start-up time, then the latency of the first and second request of each shape."""
    from serving import Client

    server = _Server(repo, None, log_path, warmup=warmup)
    rows = []
    try:
        with Client(server.target, timeout=600, retries=0) as client:
            for label, batch in shapes:
                times = []
                for _ in range(2):
                    started = time.perf_counter()
                    client.predict(TINY_MODEL, {"text": batch})
                    times.append(time.perf_counter() - started)
                rows.append({"request": label, "first_ms": round(times[0] * 1000, 1),
                             "second_ms": round(times[1] * 1000, 1)})
    finally:
        server.stop()
    return {"warmup_replayed": warmup, "server_ready_s": round(server.ready_s, 2),
            "requests": rows}


def _in_process_vs_grpc(path: Path, repo: Path, texts: list[str], calls: int,
                        log_path: Path) -> dict:
    import tensorflow as tf

    from serving import Client

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    for text in texts:  # compile every length bucket first
        signature(text=tf.constant([text]))
    local = []
    for i in range(calls):
        started = time.perf_counter()
        signature(text=tf.constant([texts[i % len(texts)]]))
        local.append(time.perf_counter() - started)
    server = _Server(repo, None, log_path, warmup=False)  # warmed below by the same texts
    remote = []
    try:
        with Client(server.target, timeout=600, retries=0) as client:
            for text in texts:
                client.predict(TINY_MODEL, {"text": [text]})
            for i in range(calls):
                started = time.perf_counter()
                client.predict(TINY_MODEL, {"text": [texts[i % len(texts)]]})
                remote.append(time.perf_counter() - started)
    finally:
        server.stop()
    return {"in_process": _stats(local), "grpc": _stats(remote),
            "what": "batch 1, one Multi30k sentence per call, after every length bucket was "
                    "compiled; in-process = the SavedModel's serving_default signature called "
                    "from Python; grpc = serving.Client.predict to python -m serving.server (no "
                    "batching) in another process on the same host"}


def _xla_vs_plain(paths: dict[str, Path], texts: list[str], calls: int) -> list[dict]:
    import tensorflow as tf

    rows = []
    for kind, path in paths.items():
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        for batch in (1, 32):
            batches = [texts[i:i + batch] for i in range(0, len(texts) - batch + 1, batch)]
            for inputs in batches:  # compile (XLA) / trace every shape once
                signature(text=tf.constant(inputs))
            seconds = []
            for i in range(calls if batch == 1 else max(calls // 8, 8)):
                inputs = batches[i % len(batches)]
                started = time.perf_counter()
                signature(text=tf.constant(inputs))
                seconds.append(time.perf_counter() - started)
            row = {"export": "XLA core" if kind == "xla" else "no XLA (--no-xla)",
                   "batch": batch, **_stats(seconds)}
            row["sentences_per_s"] = round(batch / statistics.fmean(seconds), 1)
            rows.append(row)
    return rows


def run_tiny_translator(args) -> int:
    load_before = os.getloadavg()
    texts = _multi30k_sources()
    with tempfile.TemporaryDirectory(prefix="serving_tiny_") as tmp:
        workdir = Path(tmp)
        keras_path, train_s = _tiny_translator(args.keras, workdir)
        print(f"tiny translator: {keras_path}" +
              (f" (trained in {train_s:.0f} s)" if train_s else ""), flush=True)
        model, paths = _export_pair(keras_path, workdir)
        shapes, covered = _request_shapes(model, texts)
        metadata = json.loads((paths["xla"] / "assets.extra" / "zoo_export.json").read_text())
        print(f"exported {paths['xla']} and {paths['plain']}; warm-up: {metadata['warmup']}",
              flush=True)
        repo = paths["xla"].parent.parent  # <workdir>/xla: the repository of the XLA export

        latency = {"first_request": []}
        for warmup in (False, True):
            row = _first_requests(repo, warmup, shapes, workdir / f"first_{warmup}.log")
            latency["first_request"].append(row)
            print(f"warm-up {'on ' if warmup else 'off'}: server ready in "
                  f"{row['server_ready_s']} s; " + "; ".join(
                      f"{r['request']}: first {r['first_ms']} ms, second {r['second_ms']} ms"
                      for r in row["requests"]), flush=True)
        latency["in_process_vs_grpc"] = _in_process_vs_grpc(
            paths["xla"], repo, covered[:64], args.calls, workdir / "grpc.log")
        print(f"batch 1: in-process {latency['in_process_vs_grpc']['in_process']}, gRPC "
              f"{latency['in_process_vs_grpc']['grpc']}", flush=True)
        latency["xla_vs_no_xla"] = _xla_vs_plain(paths, covered, args.calls)
        for row in latency["xla_vs_no_xla"]:
            print(f"{row['export']:>18} batch {row['batch']:2d}: p50 {row['p50_ms']} ms, "
                  f"{row['sentences_per_s']} sentences/s", flush=True)

        load_args = [str(paths["xla"]), "--model", TINY_MODEL, "--output", args.output,
                     "--note", args.note,
                     "--duration", str(args.duration), "--warmup", str(args.warmup),
                     "--concurrency", *map(str, args.concurrency),
                     "--batching_parameters_file", args.batching_parameters_file]
        load_status = main(load_args, texts=covered[:64],
                           description=f"luong_translator (tiny, trained; XLA export with "
                                       f"warm-up; {metadata['config']['vocab_size']}-subword "
                                       f"vocabulary); Multi30k test sentences of <= 32 "
                                       f"subwords")

    report = {
        "benchmark": "serving_latency",
        "model": "luong_translator, tiny test config (tests/conftest.py TINY_TRANSLATOR)",
        "keras_model": str(keras_path) if args.keras else "trained by this run",
        "train_seconds": round(train_s, 1) if train_s else None,
        "warmup": metadata["warmup"],
        "batch_buckets": metadata["batch_buckets"],
        "texts": f"German side of Multi30k test: the {len(covered)} of the first {len(texts)} "
                 f"lines whose padded source length the warm-up covers (<= 32 subwords); "
                 f"first_request also uses one longer sentence",
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "python": platform.python_version()},
        "note": "server, clients and in-process calls share the host's cores" +
                (f"; {args.note}" if args.note else ""),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **latency,
    }
    output = Path(args.latency_output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {output}")
    return load_status


def main(argv: list[str] | None = None, texts: list[str] | None = None,
         description: str | None = None) -> int:
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
    parser.add_argument("--tiny-translator", action="store_true",
                        help="train (or --keras), export and benchmark a real tiny translator; "
                             "also writes --latency-output")
    parser.add_argument("--keras", default=None, help="with --tiny-translator: a trained "
                                                      ".keras translator instead of training")
    parser.add_argument("--calls", type=int, default=200, help="calls per latency measurement")
    parser.add_argument("--note", default="", help="added to the reports' note (e.g. host load)")
    parser.add_argument("--multi30k", type=int, default=0, metavar="N",
                        help="send the German side of the first N Multi30k test lines instead "
                             "of four fixed sentences")
    parser.add_argument("--latency-output", default=str(REPO_ROOT / "benchmarks" / "results" /
                                                        "serving_latency.json"))
    args = parser.parse_args(argv)
    if args.tiny_translator:
        return run_tiny_translator(args)
    texts = texts or (_multi30k_sources(args.multi30k) if args.multi30k else DEFAULT_TEXTS)

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
                        _run_load(server.target, args.model, args.input, texts,
                                  concurrency, args.warmup, args.timeout)
                    row = _run_load(server.target, args.model, args.input, texts,
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
        "saved_model": description or args.saved_model or
        "serving.fixtures.build_translator (tiny fixture)",
        "export": _export_metadata(args.saved_model),
        "request": f"Predict, 1 text per request, input '{args.input}', cycling over "
                   f"{len(texts)} texts",
        "server": "python -m serving.server (separate process), gRPC over 127.0.0.1",
        "batching_parameters_file": os.path.relpath(args.batching_parameters_file, REPO_ROOT),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "host": {"cpu": _cpu_model(), "cpus": os.cpu_count(), "machine": platform.machine(),
                 "python": platform.python_version()},
        "note": "clients and server share the host's cores" +
                (f"; {args.note}" if args.note else ""),
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
