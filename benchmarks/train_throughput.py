"""Training throughput of luong_translator, side by side on identical padded batches (issue 7).

    python benchmarks/train_throughput.py [--steps 30] [--rounds 3]

Variants, each timed in a fresh process (no thread pool or compile cache shared), rounds
interleaved so machine noise hits them alike, median over rounds:

* `keras_graph_fp32`  — ours, TF graph mode (`jit_compile: false`), float32;
* `keras_xla_fp32`    — ours, train step compiled with XLA;
* `keras_graph_bf16`  — ours, graph mode, `precision: mixed_bfloat16` (the default config);
* `keras_xla_bf16`    — ours, XLA + mixed_bfloat16;
* `torch_fp32`        — the PyTorch 2.13 twin (`torch_luong.py`), eager, float32;
* `torch_bf16`        — the twin under `torch.autocast("cpu", torch.bfloat16)`.

Batches come from `export_batches.py` with `jit_compile=true` (source and target padded to
multiples of 8: the shapes XLA needs, the same tensors for every variant), those of the three
commonest shapes, so XLA's compiles (warm-up, reported, not timed) stay few. Tokens/s counts
real (non-pad) target tokens. Achieved FLOP/s = analytic matmul FLOPs of each step
(`flops.py`) / step time, against the CPU's peak.
"""

import argparse
import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))
BATCHES = HERE.parent / ".cache" / "bench" / "multi30k_luong_batches_xla.npz"
MAX_SHAPES = 3
VARIANTS = ("keras_graph_fp32", "keras_xla_fp32", "keras_graph_bf16", "keras_xla_bf16",
            "torch_fp32", "torch_bf16")


def _batches(path, steps, max_shapes=MAX_SHAPES):
    """The first `steps` training batches whose (source, target) shape is one of the
    `max_shapes` most frequent: every variant gets the same tensors, and XLA compiles a few
    programs (each compile takes tens of seconds; it is reported as warm-up, not timed)."""
    import collections

    import numpy as np

    data = np.load(path)
    batches = [tuple(data[f"train_{k}_{i}"] for k in ("source", "target_in", "target_out"))
               for i in range(int(data["train_count"]))]
    frequency = collections.Counter((b[0].shape, b[1].shape) for b in batches)
    common = {shape for shape, _ in frequency.most_common(max_shapes)}
    chosen = [b for b in batches if (b[0].shape, b[1].shape) in common][:steps]
    if len(chosen) < steps:
        raise ValueError(f"only {len(chosen)} batches of the {max_shapes} commonest shapes "
                         f"in {path}; ask for fewer --steps")
    return chosen


def time_variant(variant, path, steps):
    """Runs in a child process: warm up on every distinct shape, then time `steps` steps."""
    import time

    import numpy as np
    from flops import training_step_flops

    batches = _batches(path, steps)
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    config = meta["config"]
    shapes = {}
    for batch in batches:
        shapes.setdefault((batch[0].shape, batch[1].shape), batch)
    if variant.startswith("keras"):
        import keras
        import tensorflow as tf
        from export_batches import keras_model_for
        from per_step_diagnosis import keras_compile

        precision = "mixed_bfloat16" if variant.endswith("bf16") else "float32"
        keras.config.set_dtype_policy(precision)
        model = keras_model_for(path)
        keras.config.set_dtype_policy("float32")
        keras_compile(model, config | {"jit_compile": "_xla_" in variant}, 10_000)

        def step(batch):
            source, target_in, target_out = (tf.constant(x) for x in batch)
            return model.train_on_batch({"source_ids": source, "target_in": target_in},
                                        target_out)
    else:
        import torch
        from torch_luong import Trainer, model_from_meta

        model = model_from_meta(meta)
        trainer = Trainer(model, config["learning_rate"], config["warmup_steps"], 10_000,
                          config["final_lr_fraction"], config["clip_norm"],
                          config["label_smoothing"])
        autocast = variant.endswith("bf16")

        def step(batch):
            tensors = [torch.from_numpy(x.astype(np.int64)) for x in batch]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return trainer.train_step(*tensors)
    compile_started = time.perf_counter()
    for batch in shapes.values():  # XLA compiles once per shape: not in the timing
        step(batch)
    warmup_seconds = time.perf_counter() - compile_started
    tokens = flops = 0
    started = time.perf_counter()
    for batch in batches:
        step(batch)
        tokens += int((batch[2] != 0).sum())
        flops += training_step_flops(config, *batch[0].shape, batch[1].shape[1])
    seconds = time.perf_counter() - started
    return {"variant": variant, "steps": steps, "seconds": seconds,
            "target_tokens_per_second": tokens / seconds, "flops_per_second": flops / seconds,
            "warmup_seconds": warmup_seconds, "distinct_shapes": len(shapes)}


def ensure_batches(path=BATCHES):
    if not Path(path).exists():
        from export_batches import export

        export({"jit_compile": True}, train_batches=400, path=path)
    return path


def run(steps=30, rounds=3, variants=VARIANTS, path=None):
    from flops import cpu_peak_flops
    from machine import machine_line

    path = ensure_batches(path or BATCHES)
    samples = {variant: [] for variant in variants}
    for round_index in range(rounds):
        for variant in variants:
            output = subprocess.run(
                [sys.executable, __file__, "--child", variant, "--steps", str(steps),
                 "--batches", str(path)], capture_output=True, text=True, check=False)
            if output.returncode != 0:
                print(output.stderr[-3000:], file=sys.stderr)
                raise RuntimeError(f"{variant} failed")
            result = json.loads(output.stdout.strip().splitlines()[-1])
            samples[variant].append(result)
            print(f"round {round_index + 1} {variant}: "
                  f"{result['target_tokens_per_second']:.0f} tok/s", flush=True)
    peak, peak_text = cpu_peak_flops()
    summary = {}
    for variant, results in samples.items():
        tokens = statistics.median(r["target_tokens_per_second"] for r in results)
        flops = statistics.median(r["flops_per_second"] for r in results)
        summary[variant] = {"target_tokens_per_second": tokens, "flops_per_second": flops,
                            "peak_fraction": flops / peak if peak else None,
                            "samples": [r["target_tokens_per_second"] for r in results],
                            "warmup_seconds": results[0]["warmup_seconds"]}

    def ratio(a, b):
        return summary[a]["target_tokens_per_second"] / summary[b]["target_tokens_per_second"]

    ratios = {}
    for a, b in (("keras_xla_fp32", "keras_graph_fp32"), ("keras_graph_fp32", "torch_fp32"),
                 ("keras_xla_fp32", "torch_fp32"), ("keras_graph_bf16", "torch_fp32"),
                 ("keras_graph_bf16", "keras_graph_fp32"), ("keras_graph_bf16", "torch_bf16"),
                 ("keras_xla_bf16", "keras_graph_bf16"), ("keras_xla_bf16", "torch_fp32"),
                 ("keras_xla_bf16", "torch_bf16")):
        if a in summary and b in summary:
            ratios[f"{a}/{b}"] = ratio(a, b)
    return {"benchmark": "train_throughput", "model": "luong_translator (default size)",
            "date": datetime.date.today().isoformat(), "machine": machine_line(),
            "peak": peak_text, "peak_flops_per_second": peak, "steps": steps, "rounds": rounds,
            "batches": f"the first N training batches of export_batches.py (jit_compile=true: "
                       f"padded to multiples of 8) of its {MAX_SHAPES} commonest shapes, "
                       f"identical for every variant",
            "results": summary, "ratios": ratios}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batches", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(HERE / "results" / "train_throughput.json"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(time_variant(args.child, args.batches, args.steps)))
        return 0
    record = run(args.steps, args.rounds, args.variants.split(","), args.batches)
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["ratios"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
