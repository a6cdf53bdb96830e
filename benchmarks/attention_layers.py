"""Forward + backward time of every registered attention layer, eager vs `jit_compile`.

One realistic size: batch 64, source length S = 32, model dim 512 (query = keys = values),
in two settings:

* sequence: a rank-3 query of T = 32 positions (teacher forcing; stateful layers scan over T);
* step: a rank-2 query, one decoder step with `projected_keys` precomputed, as in a decoder loop.

Each measurement is one training-mode call plus the gradients of a scalar loss with respect
to the layer's weights, the query and the values; the figure is the median over `--repeats`
timed runs after `--warmup` untimed ones, eager and compiled runs alternating (the first
`jit_compile` run, which compiles, is reported separately as `compile_s`). Results go to
`benchmarks/results/attention_layers.json`.

    python benchmarks/attention_layers.py
    python benchmarks/attention_layers.py --repeats 20 --layers additive multi_head

Timings are for the machine the script runs on (recorded in the JSON with its load average);
compare rows of one run, not across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import zoo  # noqa: E402  (the repository root goes on sys.path first: runs from a checkout)


def make_step_fn(layer, rank):
    """`fn(query, values, mask, projected) -> loss and gradients` for one training call."""

    def fn(query, values, mask, projected):
        with tf.GradientTape() as tape:
            tape.watch([query, values])
            kwargs = {"mask": mask, "training": True}
            if rank == 2:
                kwargs["projected_keys"] = projected
            if layer.uses_state:
                kwargs["state"] = layer.get_initial_state(values, mask)
            outputs = layer(query, values, **kwargs)
            loss = tf.reduce_sum(tf.square(outputs[0])) + tf.reduce_sum(outputs[1])
        grads = tape.gradient(loss, [query, values, *layer.trainable_variables])
        return loss, grads

    return fn


def _run(fn, args):
    """One call, synchronised on its outputs; seconds."""
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, fn(*args))
    return time.perf_counter() - start


def measure(name, rank, args, inputs):
    """Eager and `jit_compile` timings of one layer in one setting.

    The two are timed alternately (eager, jit, eager, jit, ...) so that load from other
    processes on a shared host weighs on both alike.
    """
    layer = zoo.attention.get(name)
    query = inputs["query3"] if rank == 3 else inputs["query2"]
    values, mask = inputs["values"], inputs["mask"]
    layer(query, values, mask=mask)  # build
    projected = layer.project_keys(values)
    eager = make_step_fn(layer, rank)
    compiled = tf.function(make_step_fn(layer, rank), jit_compile=True)
    call_args = (query, values, mask, projected)
    compile_s = _run(compiled, call_args)
    for _ in range(args.warmup):
        _run(eager, call_args)
        _run(compiled, call_args)
    eager_ms, jit_ms = [], []
    for _ in range(args.repeats):
        eager_ms.append(_run(eager, call_args) * 1000.0)
        jit_ms.append(_run(compiled, call_args) * 1000.0)
    eager_ms, jit_ms = statistics.median(eager_ms), statistics.median(jit_ms)
    return {"eager_ms": round(eager_ms, 3), "jit_ms": round(jit_ms, 3),
            "speedup": round(eager_ms / jit_ms, 2), "compile_s": round(compile_s, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--src-len", type=int, default=32)
    parser.add_argument("--tgt-len", type=int, default=32)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--layers", nargs="*", default=None, help="default: all registered")
    parser.add_argument("--output", default=str(REPO_ROOT / "benchmarks" / "results" /
                                                "attention_layers.json"))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    lengths = rng.integers(args.src_len // 2, args.src_len + 1, size=args.batch)
    inputs = {
        "query2": tf.constant(rng.normal(size=(args.batch, args.dim)), tf.float32),
        "query3": tf.constant(rng.normal(size=(args.batch, args.tgt_len, args.dim)), tf.float32),
        "values": tf.constant(rng.normal(size=(args.batch, args.src_len, args.dim)), tf.float32),
        "mask": tf.constant(np.arange(args.src_len)[None, :] < lengths[:, None]),
    }
    names = args.layers or zoo.attention.names()
    shape = (f"batch {args.batch}, T={args.tgt_len} queries over S={args.src_len}, "
             f"d={args.dim}")
    load_before = os.getloadavg()
    rows = []
    for name in names:
        row = {"name": name, "shape": shape,
               "uses_state": zoo.attention.get_class(name).uses_state}
        row.update(measure(name, 3, args, inputs))
        row.update({f"step_{key}": value for key, value in measure(name, 2, args, inputs).items()})
        rows.append(row)
        print(f"{name:20s} sequence eager {row['eager_ms']:9.2f} ms  jit {row['jit_ms']:9.2f} ms"
              f"  x{row['speedup']:5.2f} | step eager {row['step_eager_ms']:8.2f} ms  jit "
              f"{row['step_jit_ms']:8.2f} ms  x{row['step_speedup']:5.2f}", flush=True)

    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    report = {
        "benchmark": "attention_layers",
        "measure": "median ms of one training-mode forward + gradients (weights, query, values)",
        "sizes": {"batch": args.batch, "src_len": args.src_len, "tgt_len": args.tgt_len,
                  "dim": args.dim, "dtype": "float32"},
        "columns": {
            "eager_ms, jit_ms, speedup, compile_s": f"rank-3 query [batch, {args.tgt_len}, d] "
                                                    "(stateful layers scan over T)",
            "step_*": "rank-2 query: one decoder step, projected_keys precomputed",
            "speedup": "eager_ms / jit_ms",
            "compile_s": "first jit_compile call (trace + XLA compile + one run)",
        },
        "repeats": args.repeats,
        "warmup": args.warmup,
        "machine": f"{device}, {os.cpu_count()} cores, {platform.machine()}, "
                   f"TF {tf.__version__}",
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "device": device,
                 "python": platform.python_version(), "tensorflow": tf.__version__,
                 "keras": __import__("keras").__version__},
        "note": "default layer arguments; the host may be shared, see the load averages",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": rows,
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
