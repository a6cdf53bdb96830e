"""Train a translator config end to end (`zoo train`) and record speed and quality as JSON.

    python benchmarks/train_translator.py configs/luong_translator.yaml [--set key=value ...]

Writes `benchmarks/results/<model>_training.json`: wall time, target tokens/s per epoch, the
validation curve, and test sacreBLEU (13a, cased, detokenized greedy output) on Multi30k test.
"""

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", default="configs/luong_translator.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output", default=None, help="JSON path (default results/<model>_…)")
    args = parser.parse_args(argv)

    from zoo.config import parse_assignment
    from zoo.training import train

    overrides = dict(parse_assignment(item) for item in args.set)
    started = time.monotonic()
    result = train(args.config, overrides, verbose=2)
    wall = time.monotonic() - started
    speeds = [epoch["target_tokens_per_second"] for epoch in result.history[1:]] or [
        result.history[0]["target_tokens_per_second"]]
    record = {
        "benchmark": "train_translator",
        "model": result.config["model"],
        "config": args.config,
        "overrides": overrides,
        "date": datetime.date.today().isoformat(),
        "machine": machine_line(),
        "run_id": result.run_id,
        "wall_minutes": wall / 60,
        "train_minutes": result.metrics["train_seconds"] / 60,
        "epochs_run": len(result.history),
        "target_tokens_per_second_median": statistics.median(speeds),
        "test_bleu": result.metrics["test_bleu"],
        "test_chrf": result.metrics["test_chrf"],
        "history": result.history,
        "parameters": result.model.count_params(),
    }
    RESULTS.mkdir(exist_ok=True)
    path = Path(args.output) if args.output else RESULTS / f"{record['model']}_training.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "history"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
