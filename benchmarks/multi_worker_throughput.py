"""Training throughput of 1 process vs 2 multi-worker processes on this machine.

Trains a small luong_translator for 2 epochs three ways — `zoo train` (one process),
`zoo cluster-local 2` with the same global batch, and `zoo cluster-local 2` with
`per_replica_batch` (twice the global batch) — and reads epoch 2's target tokens per second and
seconds from each MLflow run (epoch 1 includes graph tracing).

    python benchmarks/multi_worker_throughput.py            # → results/multi_worker_throughput.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

REPO = Path(__file__).resolve().parent.parent
SMALL = {"train_limit": 2000, "eval_limit": 16, "val_bleu_limit": 16, "max_subwords": 24,
         "vocab_size": 1000, "embedding_dim": 64, "encoder_units": 64, "decoder_units": 128,
         "encoder_layers": 1, "batch_size": 32, "epochs": 2, "learning_rate": 0.005,
         "warmup_steps": 10, "heatmaps": 1, "samples": 2, "dropout": 0.0}
CASES = (
    ("1 process (strategy default)", ["train", "luong_translator"], {}),
    ("2 workers, same global batch (16 per worker)",
     ["cluster-local", "2", "luong_translator"], {}),
    ("2 workers, per_replica_batch (global batch 64)",
     ["cluster-local", "2", "luong_translator"], {"per_replica_batch": True}),
)


def run_case(arguments, settings, directory):
    environment = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{directory / 'mlflow.db'}",
                       PYTHONPATH=str(REPO), TMPDIR=str(directory))
    flags = [f"--set={key}={json.dumps(value)}" for key, value in (SMALL | settings).items()]
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "zoo.cli", *arguments, *flags,
                             "--output-dir", str(directory / "runs")], cwd=directory,
                            env=environment, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(result.stdout[-3000:] + result.stderr[-3000:])
    client = mlflow.MlflowClient(environment["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    metric = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
              for key in ("target_tokens_per_second", "epoch_seconds", "train_examples")}
    return {"target_tokens_per_second_epoch2": round(metric["target_tokens_per_second"][2], 1),
            "epoch2_seconds": round(metric["epoch_seconds"][2], 2),
            "global_batch_size": int(run.data.tags["zoo.global_batch_size"]),
            "workers": int(run.data.tags["zoo.workers"]),
            "wall_seconds": round(time.monotonic() - started, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" /
                                                "multi_worker_throughput.json"))
    args = parser.parse_args()
    results = {"benchmark": "multi_worker_throughput", "machine": machine_line(),
               "niceness": os.nice(0), "config": SMALL,
               "load_average_before": list(os.getloadavg()), "cases": {}}
    for name, arguments, settings in CASES:
        with tempfile.TemporaryDirectory(prefix="zoo-throughput-") as directory:
            results["cases"][name] = run_case(arguments, settings, Path(directory))
        print(name, results["cases"][name], flush=True)
    results["load_average_after"] = list(os.getloadavg())
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
