"""Why training is not run under XLA on this CPU: one train step of transformer_translator
(default size, batch 64 × 24 random ids) in TF graph mode vs XLA, float32 vs mixed_bfloat16,
and XLA with the XLA:CPU flags that could route its matmuls to faster kernels (issue 7).

    python benchmarks/xla_cpu_flags.py [--steps 10]

Each variant runs in a fresh process (`XLA_FLAGS` is read once, when TF starts); three
untimed steps first (XLA compiles there), then the median step time of `--steps`. The
Transformer is used because its step has no recurrent loop: what is left is matmuls, so the
figure isolates XLA's CPU dot kernels from its while-loop code.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {  # name: (jit_compile, precision, XLA_FLAGS)
    "graph_fp32": (False, "float32", ""),
    "graph_bf16": (False, "mixed_bfloat16", ""),
    "xla_fp32": (True, "float32", ""),
    "xla_bf16": (True, "mixed_bfloat16", ""),
    "xla_fp32_onednn": (True, "float32", "--xla_cpu_use_onednn=true"),
    "xla_bf16_onednn": (True, "mixed_bfloat16", "--xla_cpu_use_onednn=true"),
    "xla_fp32_onednn_custom_call": (True, "float32",
                                    "--xla_cpu_experimental_onednn_custom_call=true"),
    "xla_fp32_xnnpack": (True, "float32", "--xla_cpu_use_xnnpack=true"),
    "xla_fp32_vector_512": (True, "float32", "--xla_cpu_prefer_vector_width=512"),
}


def time_step(jit_compile, precision, steps):
    import statistics
    import time

    sys.path.insert(0, str(HERE.parent))
    import keras
    import numpy as np
    import tensorflow as tf

    import zoo
    from zoo.losses import SmoothedSequenceLoss

    ids = np.random.default_rng(0).integers(4, 8000, size=(2, 64, 24)).astype("int32")
    keras.config.set_dtype_policy(precision)
    model = zoo.build("transformer_translator")
    keras.config.set_dtype_policy("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=SmoothedSequenceLoss(0.1),
                  jit_compile=jit_compile)
    inputs = {"source_ids": tf.constant(ids[0]), "target_in": tf.constant(ids[1])}
    target = tf.constant(ids[1])
    for _ in range(3):
        model.train_on_batch(inputs, target)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(inputs, target)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(HERE / "results" / "xla_cpu_flags.json"))
    args = parser.parse_args(argv)
    if args.child:
        jit_compile, precision, _ = VARIANTS[args.child]
        print(json.dumps(time_step(jit_compile, precision, args.steps)))
        return 0
    sys.path.insert(0, str(HERE))
    from machine import machine_line

    results = {}
    for name, (_, _, flags) in VARIANTS.items():
        env = os.environ | {"XLA_FLAGS": flags, "TF_CPP_MIN_LOG_LEVEL": "2"}
        output = subprocess.run([sys.executable, __file__, "--child", name, "--steps",
                                 str(args.steps)], env=env, capture_output=True, text=True,
                                check=False)
        if output.returncode != 0:
            results[name] = {"error": output.stderr[-500:]}
            continue
        seconds = json.loads(output.stdout.strip().splitlines()[-1])
        results[name] = {"ms_per_step": 1000 * seconds, "xla_flags": flags}
        print(f"{name}: {1000 * seconds:.0f} ms/step", flush=True)
    record = {"benchmark": "xla_cpu_flags", "model": "transformer_translator (default size)",
              "batch": "64 × 24 source and target ids", "date": datetime.date.today().isoformat(),
              "machine": machine_line(), "results": results}
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
