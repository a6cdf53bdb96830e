"""The memory-bandwidth bound of batch-1 greedy decoding (issue 7's XLA / non-XLA target).

    python benchmarks/decode_roofline.py [--repeats 50]

At batch 1 one decoder step multiplies one vector by every decoder matrix: about two FLOPs per
weight read, so the step is bound by how fast the weights stream from memory, not by the FMA
units. This script measures that bound on this machine and compares `decode_throughput.json`'s
batch-1 figures with it:

1. the bytes one greedy step of `luong_translator` (default size) must read: every decoder
   variable but the embedding table (one row of it is read), in float32;
2. the achievable streaming rate of a matrix-vector product over exactly that many float32
   weights, in NumPy (OpenBLAS sgemv), TF graph and TF XLA (`tf.linalg.matvec`), median of
   `--repeats`; the fastest is the bound;
3. the tokens/s no implementation of that model can exceed at batch 1 (encoder, tokenization
   and the argmax not even counted), and so the largest XLA / non-XLA ratio any XLA code
   could reach against the measured non-XLA SavedModel.

Writes `benchmarks/results/decode_roofline.json`.
"""

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))
RESULTS = HERE / "results"


def decoder_bytes_per_step(model=None):
    """Bytes of the weights one batch-1 greedy step of `model`'s decoder (default: an untrained
    default-size luong_translator) reads, each variable in its own dtype (int8 kernels 1 byte,
    their scales 4): all but the embedding table, of which the fed token's row. → `(total,
    bytes by variable path)`."""
    if model is None:
        import zoo

        model = zoo.build("luong_translator")
    parts = {}
    for variable in model.decoder.weights:
        count = int(np.prod(variable.shape))
        if "embedding" in variable.path.split("/")[-2]:  # one row (and its scale)
            count = int(variable.shape[-1]) if len(variable.shape) == 2 else 1
        parts[variable.path] = count * np.dtype(variable.dtype).itemsize
    return sum(parts.values()), parts


def _median_seconds(function, repeats):
    function()  # warm-up (and XLA's compile)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def streaming_rates(total_bytes, repeats):
    """GB/s of `y = W x` over `total_bytes` of float32 `W`, per implementation."""
    import tensorflow as tf

    columns = 2048
    rows = total_bytes // 4 // columns
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((rows, columns), dtype=np.float32)
    vector = rng.standard_normal(columns, dtype=np.float32)
    tf_weights, tf_vector = tf.constant(weights), tf.constant(vector)
    graph = tf.function(lambda: tf.linalg.matvec(tf_weights, tf_vector))
    xla = tf.function(lambda: tf.linalg.matvec(tf_weights, tf_vector), jit_compile=True)
    runners = {
        "numpy_sgemv": lambda: weights @ vector,
        "tf_graph_matvec": lambda: graph().numpy(),
        "tf_xla_matvec": lambda: xla().numpy(),
    }
    nbytes = weights.nbytes
    return {name: nbytes / _median_seconds(run, repeats) / 1e9 for name, run in runners.items()}


def main(argv=None):
    from machine import machine_line

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    step_bytes, parts = decoder_bytes_per_step()
    rates = streaming_rates(step_bytes, args.repeats)
    best = max(rates.values())
    bound_tokens_per_second = best * 1e9 / step_bytes
    record = {
        "benchmark": "decode_roofline",
        "date": datetime.date.today().isoformat(),
        "machine": machine_line(),
        "model": "luong_translator (default size, float32 weights)",
        "decoder_bytes_per_step": step_bytes,
        "decoder_bytes_by_variable": parts,
        "streaming_gb_per_s": rates,
        "bound_tokens_per_second": bound_tokens_per_second,
    }
    measured = RESULTS / "decode_throughput.json"
    decoded = json.loads(measured.read_text()) if measured.exists() else None
    if decoded and decoded["machine"] != record["machine"]:  # a bound of another machine
        print(f"{measured} was measured on {decoded['machine']}: not compared", file=sys.stderr)
        decoded = None
    if decoded:
        results = decoded["results"]
        xla = results["saved_model_xla@1"]["tokens_per_second"]
        no_xla = results["saved_model_no_xla@1"]["tokens_per_second"]
        record["measured_tokens_per_second"] = {"saved_model_xla@1": xla,
                                                "saved_model_no_xla@1": no_xla}
        record["fraction_of_bound"] = {"saved_model_xla@1": xla / bound_tokens_per_second,
                                       "saved_model_no_xla@1": no_xla / bound_tokens_per_second}
        record["largest_possible_xla_over_no_xla"] = bound_tokens_per_second / no_xla
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "decode_roofline.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "decoder_bytes_by_variable"},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
