"""`make bench`: every speed benchmark of issue 7, side by side, then the benchmark table.

    python benchmarks/run_all.py [--quick]

1. `train_throughput.py`: luong_translator training tokens/s, ours (graph / XLA, float32 /
   bfloat16) vs the PyTorch twin on identical batches, with achieved FLOP/s against peak;
2. `decode_throughput.py`: greedy decoding at batch 1 and 32, XLA vs non-XLA SavedModel vs
   torch eager (and torch.compile), with the newest trained luong_translator (trains a short
   one first when there is none);
3. `decode_roofline.py`: the memory-bandwidth bound of batch-1 decoding on this machine, and
   the largest XLA / non-XLA ratio any implementation could reach against step 2's figures;
4. `report.py`: regenerates the table of `docs/benchmarks.md` from `benchmarks/results/*.json`.

Run it on an otherwise idle machine: the figures are ratios measured in one run, but two
processes sharing two cores still skew them.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _run(*arguments):
    started = time.monotonic()
    print(f"== {' '.join(arguments)}", flush=True)
    subprocess.run([sys.executable, *arguments], cwd=ROOT, check=True)
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)


def _has_trained_translator():
    sys.path.insert(0, str(ROOT))
    try:
        from zoo.tracking.loading import load_trained

        load_trained("luong_translator")
        return True
    except (ValueError, OSError):
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds (smoke)")
    args = parser.parse_args(argv)
    steps, rounds = ("8", "1") if args.quick else ("20", "2")
    _run(str(HERE / "train_throughput.py"), "--steps", steps, "--rounds", rounds)
    if not _has_trained_translator():
        minutes = "1" if args.quick else "6"
        _run("-m", "zoo.cli", "train", "configs/luong_translator.yaml",
             "--set", f"time_budget_minutes={minutes}")
    _run(str(HERE / "decode_throughput.py"), "--rounds", rounds,
         "--batch1", "40" if args.quick else "200")
    _run(str(HERE / "decode_roofline.py"), "--repeats", "10" if args.quick else "50")
    _run(str(HERE / "report.py"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
