"""Chaos benchmark of `zoo serve`: many clients, bad requests and a repository that changes.

Loopback only, bounded in time, stops by itself. Against a default-size luong_translator
export (`--keras model.keras`, or `--train-minutes N` trains one from
configs/luong_translator.yaml first), a server process (`python -m serving.server`) gets, for
`--duration` seconds from `--clients` client threads, a mix of

* valid requests (Multi30k test sentences), maximum-size requests (32 texts of 16 KiB: what
  `--max_request_tokens 4096` lets through) and requests with a 50 ms deadline;
* every kind of malformed request: unknown model, version, label and signature; wrong input
  name, dtype and rank; empty batch; invalid UTF-8; a string over 16 KiB; a batch over the
  limit; a request over the token budget; bytes that are not a PredictRequest;

while a chaos thread adds versions, adds a version whose saved_model.pb is truncated, deletes
versions, and makes junk directories (`²`, `abc`, stale `.staging-*`). A health checker asks
`grpc.health.v1` every 100 ms. Each request kind has the status codes TF Serving would answer;
any other code is counted as unexpected. Results: `benchmarks/results/serving_chaos.json`.

    python benchmarks/serving_chaos.py --keras runs/<run>/model.keras
    python benchmarks/serving_chaos.py --train-minutes 6 --duration 120 --clients 32
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

MODEL = "luong_translator"
OK, INVALID, NOT_FOUND = "OK", "INVALID_ARGUMENT", "NOT_FOUND"
# The token budget the chaos server runs with: 32 texts at the translator's 128-subword cap,
# so 32 x 16 KiB is the largest request it admits and 64 x 16 KiB is over budget.
MAX_REQUEST_TOKENS = 4096
# Answers a well-formed request may get from a loaded server: its result, or a refusal.
LOAD_CODES = {OK, "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "UNAVAILABLE"}


def _percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def _sentences(limit=512):
    data = Path(os.environ.get("ZOO_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    lines = (data / "mt" / "test.tsv").read_text(encoding="utf-8").splitlines()[:limit]
    return [line.split("\t")[1].strip() for line in lines if "\t" in line]


def _train(minutes: float, workdir: Path) -> Path:
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    from zoo.training import train

    old = os.getcwd()
    os.chdir(workdir)
    try:
        result = train(MODEL, {"time_budget_minutes": minutes}, output_dir=workdir / "runs",
                       verbose=0)
    finally:
        os.chdir(old)
    return Path(result.model_path)


def _export(keras_path: Path, workdir: Path) -> tuple[Path, dict]:
    import keras

    from export import export_model

    model = keras.saving.load_model(keras_path, compile=False)
    # Warm-up at batch 1 only: the chaos thread loads new versions while clients hammer the
    # server, and every warm-up request is an XLA compile of the default-size decoder.
    version = export_model(model, workdir / "exports", name=MODEL, warmup_batch_sizes=(1,))
    metadata = json.loads((version / "assets.extra" / "zoo_export.json").read_text())
    return version, {"parameters": int(model.count_params()),
                     "limits": metadata.get("limits", {}), "config": {
                         k: metadata["config"].get(k) for k in (
                             "embedding_dim", "encoder_units", "decoder_units", "vocab_size",
                             "attention", "max_source_tokens", "max_decode_steps")}}


class _Server:
    def __init__(self, repo: Path, log_path: Path, poll: float, extra_flags=()):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        self.log_path = log_path
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving.server", str(repo), "--port", "0",
             "--file_system_poll_wait_seconds", str(poll), "--max_num_load_retries", "2",
             "--load_retry_interval_micros", "3000000",
             *(extra_flags or ("--max_request_tokens", str(MAX_REQUEST_TOKENS)))],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.target = None
        for line in self.process.stdout:
            if line.startswith("serving on"):
                self.target = line.split("serving on", 1)[1].strip()
                break
        if self.target is None:
            raise SystemExit(f"server did not start; see {log_path}")

    def memory_kib(self) -> dict:
        """VmRSS now and VmHWM (the peak resident set since start) of the server process."""
        fields = {}
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0])
        except OSError:
            pass
        return fields

    def stop(self) -> int | None:
        code = self.process.poll()
        if code is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        return code


def _request_kinds(sentences):
    """name -> (weight, function(client, stub, rng) -> status name, expected codes)."""
    from tensorflow_serving.apis import predict_pb2

    from serving import ServingError

    def call(fn):
        try:
            fn()
            return OK
        except ServingError as error:
            return error.code.name
        except grpc.RpcError as error:
            return error.code().name

    def predict(client, inputs, timeout=60.0, **kwargs):
        return call(lambda: client.predict(MODEL, inputs, timeout=timeout, **kwargs))

    # 16 KiB exactly (the server's --max_string_bytes): ASCII, so characters are bytes.
    long_text = ("Ein Mann faehrt mit dem Fahrrad durch die Stadt . " * 400)[:16 * 1024]
    return {
        "valid": (40, lambda c, s, r: predict(c, {"text": [r.choice(sentences)]}), LOAD_CODES),
        "valid_batch_8": (8, lambda c, s, r: predict(c, {"text": r.sample(sentences, 8)}),
                          LOAD_CODES),
        "max_size (32 x 16 KiB)": (2, lambda c, s, r: predict(c, {"text": [long_text] * 32}),
                                   LOAD_CODES),
        "short_deadline (50 ms)": (
            8, lambda c, s, r: predict(c, {"text": [r.choice(sentences)]}, timeout=0.05),
            LOAD_CODES),
        "over_token_budget": (2, lambda c, s, r: predict(c, {"text": [long_text] * 64}),
                              {INVALID}),
        "unknown_model": (2, lambda c, s, r: call(lambda: c.predict("nope", {"text": ["x"]})),
                          {NOT_FOUND}),
        "unknown_version": (2, lambda c, s, r: predict(c, {"text": ["x"]}, version=999999),
                            {NOT_FOUND}),
        "unknown_label": (2, lambda c, s, r: predict(c, {"text": ["x"]}, label="nope"),
                          {INVALID}),
        "unknown_signature": (2, lambda c, s, r: predict(c, {"text": ["x"]},
                                                         signature_name="nope"),
                              {"FAILED_PRECONDITION"}),
        "wrong_input_name": (2, lambda c, s, r: predict(c, {"txt": ["x"]}), {INVALID}),
        "wrong_dtype": (2, lambda c, s, r: predict(c, {"text": np.array([1.0], np.float32)}),
                        {INVALID}),
        "wrong_rank": (2, lambda c, s, r: predict(c, {"text": [["x"]]}), {INVALID}),
        "empty_batch": (2, lambda c, s, r: predict(c, {"text": np.array([], dtype=object)}),
                        {INVALID}),
        "invalid_utf8": (2, lambda c, s, r: predict(c, {"text": [b"\xff\xfe"]}), {INVALID}),
        "string_over_16KiB": (2, lambda c, s, r: predict(c, {"text": ["x" * 16385]}),
                              {INVALID}),
        "batch_over_limit": (2, lambda c, s, r: predict(c, {"text": ["x"] * 65}), {INVALID}),
        "not_a_predict_request": (
            2, lambda c, s, r: call(lambda: s(r.randbytes(64) + b"\xff" * 8, timeout=10)),
            {INVALID, "INTERNAL"}),
        "empty_predict_request": (
            2, lambda c, s, r: call(lambda: s(predict_pb2.PredictRequest().SerializeToString(),
                                              timeout=10)), {INVALID}),
    }


def _chaos(repo: Path, source: Path, stop: threading.Event, events: list, rng: random.Random,
           period: float) -> None:
    """Changes the repository every `period` seconds, in a fixed rotation of actions."""
    model_dir = repo / MODEL
    next_version = [2]

    def add(corrupt=False):
        version = next_version[0]
        next_version[0] += 1
        staging = model_dir / f".staging-chaos-{version}"
        shutil.copytree(source, staging, symlinks=True)
        if corrupt:
            pb = staging / "saved_model.pb"
            pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 3])
        os.rename(staging, model_dir / str(version))
        return f"{'corrupt ' if corrupt else ''}version {version} added"

    def delete_oldest():
        from serving.versions import version_dirs

        versions = sorted(version_dirs(model_dir, report=False))
        if len(versions) < 2:
            return "nothing to delete"
        shutil.rmtree(model_dir / str(versions[0]))
        return f"version {versions[0]} deleted"

    def junk():
        for name in ("²", "abc", f".staging-{os.getpid() + 10**6}-x", "-3"):
            (model_dir / name).mkdir(exist_ok=True)
        return "junk directories ²/abc/.staging-*/-3 made"

    # A corrupt version is only tried while it is the newest (the `latest` policy), so each
    # one is followed by a deletion, not at once by a newer version.
    actions = [junk, add, delete_oldest, lambda: add(corrupt=True), delete_oldest, add,
               delete_oldest, lambda: add(corrupt=True)]
    index = 0
    while not stop.wait(period):
        action = actions[index % len(actions)]
        index += 1
        try:
            events.append((time.monotonic(), action()))
        except OSError as error:
            events.append((time.monotonic(), f"chaos action failed: {error}"))


def worst_request_memory(repo: Path, workdir: Path, concurrency: int = 16) -> dict:
    """Peak RSS of a server with the default limits: after loading, after the largest request
    they admit (64 texts of 16 KiB), and after `concurrency` such requests at once (the default
    --max_concurrent_requests, batching off: each runs on its own)."""
    from serving import Client

    long_text = ("Ein Mann faehrt mit dem Fahrrad durch die Stadt . " * 400)[:16 * 1024]
    server = _Server(repo, workdir / "worst.log", poll=0, extra_flags=("--max_num_load_retries",
                                                                       "0"))
    try:
        after_load = server.memory_kib().get("VmHWM", 0)
        with Client(server.target, retries=0, timeout=600) as client:
            started = time.perf_counter()
            out = client.predict(MODEL, {"text": [long_text] * 64})
            one_s = time.perf_counter() - started
            after_one = server.memory_kib().get("VmHWM", 0)
            errors = []

            def send():
                try:
                    client.predict(MODEL, {"text": [long_text] * 64})
                except Exception as error:  # noqa: BLE001 - reported
                    errors.append(str(error)[:200])

            threads = [threading.Thread(target=send) for _ in range(concurrency)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            many_s = time.perf_counter() - started
        after_many = server.memory_kib().get("VmHWM", 0)
    finally:
        server.stop()
    return {"request": "64 texts x 16 KiB (default --max_request_batch_size, "
                       "--max_string_bytes, --max_request_tokens 8192)",
            "source_tokens": int(out["source_tokens"].shape[1]),
            "target_steps": int(out["target_tokens"].shape[1]),
            "peak_rss_mib_after_load": round(after_load / 1024, 1),
            "peak_rss_mib_after_one": round(after_one / 1024, 1), "one_s": round(one_s, 1),
            f"peak_rss_mib_after_{concurrency}_concurrent": round(after_many / 1024, 1),
            "concurrent_s": round(many_s, 1), "errors": errors}


def run(args) -> dict:
    from serving import Client

    workdir = Path(tempfile.mkdtemp(prefix="serving-chaos-"))
    keras_path = Path(args.keras) if args.keras else _train(args.train_minutes, workdir)
    exported, model_info = _export(keras_path, workdir)
    source = workdir / "source"
    shutil.copytree(exported, source)
    repo = workdir / "repo"
    (repo / MODEL).mkdir(parents=True)
    shutil.copytree(source, repo / MODEL / "1")

    worst = worst_request_memory(repo, workdir) if args.worst_request else None
    sentences = _sentences()
    kinds = _request_kinds(sentences)
    names = list(kinds)
    weights = [kinds[n][0] for n in names]
    started_server = time.monotonic()
    server = _Server(repo, workdir / "server.log", poll=0.5)
    ready_s = time.monotonic() - started_server
    answers = {name: collections.Counter() for name in names}
    latencies = collections.defaultdict(list)
    health_ms, health_errors = [], collections.Counter()
    stop = threading.Event()
    events: list = []

    def client_loop(index):
        rng = random.Random(index)
        channel = grpc.insecure_channel(server.target)
        raw = channel.unary_unary("/tensorflow.serving.PredictionService/Predict",
                                  request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
        with Client(server.target, retries=0, max_batch_size=None, channel=channel) as client:
            while not stop.is_set():
                name = rng.choices(names, weights)[0]
                started = time.perf_counter()
                code = kinds[name][1](client, raw, rng)
                answers[name][code] += 1
                if code == OK:
                    latencies[name].append(time.perf_counter() - started)
        channel.close()

    def health_loop():
        # Its own process: the 32 client threads' GIL must not be what a health check waits on.
        probe = subprocess.run(
            [sys.executable, __file__, "--health-probe", server.target,
             "--duration", str(args.duration)], capture_output=True, text=True,
            timeout=args.duration + 120, check=False)
        try:
            result = json.loads(probe.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            health_errors[f"probe failed: {probe.stderr[-300:]}"] += 1
            return
        health_ms.extend(result["ms"])
        health_errors.update(result["errors"])

    rss_samples = []
    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True)
               for i in range(args.clients)]
    threads.append(threading.Thread(target=health_loop, daemon=True))
    threads.append(threading.Thread(target=_chaos, args=(repo, source, stop, events,
                                                        random.Random(0), args.chaos_period),
                                    daemon=True))
    began = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() - began < args.duration:
        time.sleep(1.0)
        rss_samples.append(server.memory_kib().get("VmRSS", 0))
        if server.process.poll() is not None:
            break
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - began
    alive = server.process.poll() is None
    memory = server.memory_kib()
    status_rows = []
    if alive:
        with Client(server.target, retries=0) as client:
            try:
                status_rows = client.status(MODEL, timeout=10)
            except Exception as error:  # noqa: BLE001
                status_rows = [{"error": str(error)}]
    exit_code = server.stop()
    log_text = server.log_path.read_text(errors="replace")
    unexpected = {name: {code: n for code, n in answers[name].items()
                         if code not in kinds[name][2]} for name in names}
    unexpected = {k: v for k, v in unexpected.items() if v}
    valid = latencies["valid"]
    by_code = collections.Counter()
    for counter in answers.values():
        by_code.update(counter)
    return {
        "benchmark": "serving_chaos",
        "model": f"{MODEL}, default size ({model_info['parameters']:,} parameters)",
        "model_info": model_info,
        "keras_model": str(keras_path) if args.keras else
        f"trained by this run ({args.train_minutes} min budget)",
        "clients": args.clients, "duration_s": round(elapsed, 1),
        "server_ready_s": round(ready_s, 1),
        "requests": sum(by_code.values()),
        "answers_by_code": dict(by_code.most_common()),
        "answers_by_kind": {k: dict(v) for k, v in answers.items()},
        "unexpected": unexpected,
        "unexpected_total": sum(sum(v.values()) for v in unexpected.values()),
        "server_alive_at_end": alive, "server_exit_code_before_stop": exit_code,
        "server_restarts": 0 if alive else 1,
        "valid_p50_ms": round(_percentile(valid, 50) * 1000, 1) if valid else None,
        "valid_p99_ms": round(_percentile(valid, 99) * 1000, 1) if valid else None,
        "max_size_ok_p50_ms": (round(_percentile(latencies["max_size (32 x 16 KiB)"], 50)
                                * 1000, 1) if latencies["max_size (32 x 16 KiB)"] else None),
        "health_checks": len(health_ms), "health_errors": dict(health_errors),
        "health_p50_ms": round(_percentile(health_ms, 50), 2) if health_ms else None,
        "health_p99_ms": round(_percentile(health_ms, 99), 2) if health_ms else None,
        "peak_rss_mib": round(memory.get("VmHWM", max(rss_samples or [0])) / 1024, 1),
        "versions_loaded": log_text.count(" loaded from "),
        "versions_refused": log_text.count("failed to load"),
        "junk_warnings": log_text.count("a version directory name must be a decimal integer"),
        "worst_request": worst,
        "final_status": status_rows,
        "chaos_events": [f"{t - began:6.1f}s {what}" for t, what in events],
        "host": {"cpu": _cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _health_probe(target: str, duration: float) -> None:
    """Asks grpc.health.v1 every 100 ms for `duration` s; prints latencies and errors (JSON)."""
    from serving import Client

    ms, errors = [], collections.Counter()
    end = time.monotonic() + duration
    with Client(target, retries=0) as client:
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                client.health(timeout=2.0)
                ms.append((time.perf_counter() - started) * 1000)
            except Exception as error:  # noqa: BLE001 - counted
                errors[f"{type(error).__name__}: {str(error)[:80]}"] += 1
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))
    print(json.dumps({"ms": ms, "errors": errors}))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--health-probe":
        _health_probe(sys.argv[2], float(sys.argv[sys.argv.index("--duration") + 1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--keras", help="a trained default-size luong_translator .keras file")
    source.add_argument("--train-minutes", type=float,
                        help="train one from configs/luong_translator.yaml for this long first")
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--chaos-period", type=float, default=15.0)
    parser.add_argument("--worst-request", action=argparse.BooleanOptionalAction, default=True,
                        help="first measure the peak RSS of the largest admitted request")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results"
                                                / "serving_chaos.json"))
    args = parser.parse_args(argv)
    record = run(args)
    Path(args.output).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: record[k] for k in (
        "requests", "answers_by_code", "unexpected_total", "server_restarts", "valid_p50_ms",
        "valid_p99_ms", "health_p99_ms", "peak_rss_mib", "versions_loaded",
        "versions_refused")}, indent=1))
    ok = record["unexpected_total"] == 0 and record["server_restarts"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
