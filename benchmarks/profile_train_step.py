"""Where a luong_translator training step spends its time (issue 7, item 4).

    python benchmarks/profile_train_step.py [--steps 10] [--set precision=float32 ...]

Traces `--steps` graph-mode training steps (the default recipe: `jit_compile: false`,
`mixed_bfloat16`) on the batches `train_throughput.py` times, with the TensorFlow profiler,
then reads the trace (`xplane.pb`, parsed with TensorFlow's own protobuf module) and sums
each op's own time on the executor threads:

* by op type (MatMul, BiasAdd, Cast, TensorListSetItem, ...), and
* by part of the model, from the op's name scope: encoder, decoder loop (forward and
  gradient), output projection + loss, optimizer.

Writes `benchmarks/results/profile_train_step.json` and prints both tables. Times are summed
over threads, so with two cores the total exceeds the wall time; the fractions are what count.
"""

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))
PARTS = (  # first match wins; all needles of a part must be in the op's full name
    ("optimizer", ("adam",)),
    ("decoder loop", ("decoder", "/while")),
    ("encoder", ("encoder",)),
    ("output projection", ("output_projection",)),
    ("loss", ("loss",)),
)


def part_of(name):
    """The part of the model an op belongs to (forward and gradient alike), from its name
    scope, e.g. `gradient_tape/luong_translator_1/decoder_1/while/...` → decoder loop."""
    lowered = name.lower()
    for part, needles in PARTS:
        if all(needle in lowered for needle in needles):
            return part
    return "other"


def _self_times(spans):
    """`(start, end, name)` events of one thread, which nest (TraceMe) → `[(name, own
    picoseconds)]`: an event's time less the events inside it."""
    stack, own = [], []  # stack entries: [end, name, start, children's picoseconds]

    def close(entry):
        end, name, start, children = entry
        # Clamped: an event that outlives its parent's end is not nested.
        own.append((name, max(end - start - children, 0)))

    for start, end, name in sorted(spans, key=lambda s: (s[0], -s[1])):
        while stack and stack[-1][0] <= start:
            close(stack.pop())
        if stack:
            stack[-1][3] += end - start
        stack.append([end, name, start, 0])
    while stack:
        close(stack.pop())
    return own


def op_times(logdir):
    """`[(op name, op type, self microseconds)]` of every TF op in the trace under `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    events = []
    for path in Path(logdir).rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            metadata = plane.event_metadata
            for line in plane.lines:
                own = _self_times((e.offset_ps, e.offset_ps + e.duration_ps,
                                   metadata[e.metadata_id].name) for e in line.events)
                for name, picoseconds in own:
                    # Executor ops are named "scope/op:OpType". Skipped: runtime bookkeeping,
                    # and the caller's "KernelAndDeviceFunc:Run", which waits for the ops.
                    if ":" not in name or name.startswith(("Iterator", "MemoryAllocation",
                                                           "KernelAndDeviceFunc")):
                        continue
                    op_name, op_type = name.rsplit(":", 1)
                    events.append((op_name, op_type, picoseconds / 1e6))
    return events


def profile(steps, overrides):
    import keras
    import numpy as np
    import tensorflow as tf
    from export_batches import keras_model_for
    from per_step_diagnosis import keras_compile
    from train_throughput import _batches, ensure_batches

    path = ensure_batches()
    batches = _batches(path, steps)
    config = json.loads(str(np.load(path)["meta"]))["config"]
    config = config | {"jit_compile": False, "precision": "mixed_bfloat16"} | overrides
    keras.config.set_dtype_policy(config["precision"])
    model = keras_model_for(path)
    keras.config.set_dtype_policy("float32")
    keras_compile(model, config, 10_000)

    def step(batch):
        source, target_in, target_out = (tf.constant(x) for x in batch)
        return model.train_on_batch({"source_ids": source, "target_in": target_in},
                                    target_out)

    for batch in {(b[0].shape, b[1].shape): b for b in batches}.values():
        step(batch)  # traces each shape once, outside the profile
    started = time.perf_counter()
    for batch in batches:
        step(batch)
    unprofiled = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        for batch in batches:
            step(batch)
        profiled = time.perf_counter() - started
        tf.profiler.experimental.stop()
        events = op_times(logdir)
    return config, events, unprofiled / steps, profiled / steps


def summarize(events, steps):
    by_type = collections.Counter()
    by_part = collections.Counter()
    counts = collections.Counter()
    for op_name, op_type, microseconds in events:
        by_type[op_type] += microseconds
        by_part[part_of(op_name)] += microseconds
        counts[op_type] += 1
    total = sum(by_type.values())

    def table(counter, with_counts=False):
        rows = []
        for key, microseconds in counter.most_common():
            row = {"name": key, "ms_per_step": microseconds / 1e3 / steps,
                   "fraction": microseconds / total if total else 0.0}
            if with_counts:
                row["ops_per_step"] = counts[key] / steps
            rows.append(row)
        return rows

    return {"op_ms_per_step": total / 1e3 / steps,
            "ops_per_step": sum(counts.values()) / steps,
            "by_part": table(by_part), "by_op_type": table(by_type, True)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--label", default="default")
    parser.add_argument("--output", default=str(HERE / "results" / "profile_train_step.json"))
    args = parser.parse_args(argv)
    from machine import machine_line

    from zoo.config import parse_assignment

    overrides = dict(parse_assignment(item) for item in args.set)
    config, events, step_seconds, profiled_seconds = profile(args.steps, overrides)
    summary = summarize(events, args.steps)
    record = {"benchmark": "profile_train_step", "label": args.label,
              "model": "luong_translator (default size)", "machine": machine_line(),
              "jit_compile": config["jit_compile"], "precision": config["precision"],
              "steps": args.steps, "step_ms": step_seconds * 1e3,
              "step_ms_while_profiling": profiled_seconds * 1e3} | summary
    output = Path(args.output)
    records = json.loads(output.read_text()) if output.exists() else {}
    records[args.label] = record
    output.write_text(json.dumps(records, indent=2) + "\n")
    print(f"step {record['step_ms']:.0f} ms ({record['step_ms_while_profiling']:.0f} while "
          f"profiling); op time summed over threads {summary['op_ms_per_step']:.0f} ms, "
          f"{summary['ops_per_step']:.0f} ops per step")
    for title, rows in (("part", summary["by_part"]), ("op type", summary["by_op_type"][:25])):
        print(f"\n| {title} | ms/step | share |" + (" ops/step |" if title == "op type" else ""))
        for row in rows:
            extra = f" {row['ops_per_step']:.0f} |" if "ops_per_step" in row else ""
            print(f"| {row['name']} | {row['ms_per_step']:.1f} | {row['fraction']:.1%} |{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
