"""Decoding speed of luong_translator: XLA SavedModel (float32 and int8) vs non-XLA SavedModel
vs the PyTorch twin (eager, and `torch.compile` where it works), at batch 1 and batch 32.

    python benchmarks/decode_throughput.py [--model runs/<id>/model.keras] [--batch1 200]
    python benchmarks/decode_throughput.py --decoding beam      # the exports only (no twin)

The same trained weights everywhere (the newest `luong_translator` run by default; the torch
twin gets them through `torch_luong.port_keras_to_torch`), the Multi30k test sources, sorted by
length and cut into batches alike. SavedModels are called through their `serving_default`
signature, text in (tokenization and detokenization included: what TF Serving would run);
torch decodes the same token ids (tokenization outside its timing). Each workload runs once
untimed (XLA compiles a shape once per (batch bucket, padded length)), then is timed
`--rounds` times, the variants interleaved; the median is kept.
"""

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))


def _saved_model_runner(keras_model, jit_compile, directory, quantize=None):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from export import export_model

    path = export_model(keras_model, directory, name="bench", jit_compile=jit_compile,
                        warmup_lengths=(), quantize=quantize)
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]

    def run(texts):
        output = signature(text=tf.constant(texts))
        return int(output["target_lengths"].numpy().sum())  # tokens incl. EOS

    return run


def _torch_runner(keras_model, compiled):
    import torch
    from torch_luong import PAD_ID, twin_of

    torch.set_grad_enabled(False)
    model = twin_of(keras_model).eval()
    if compiled:
        model.step = torch.compile(model.step, dynamic=True)
    tokenizer = keras_model.tokenizer

    cache = {}

    def run(texts):
        key = tuple(texts)
        if key not in cache:  # tokenization is not part of torch's timing
            rows = [[*ids, 3] for ids in tokenizer.tokenize(texts).to_list()]
            width = -(-max(len(r) for r in rows) // 8) * 8  # padded like the zoo's export
            ids = torch.zeros(len(rows), width, dtype=torch.long)
            for index, row in enumerate(rows):
                ids[index, :len(row)] = torch.tensor(row)
            cache[key] = ids
        output = model.greedy_decode(cache[key])
        return int((output != PAD_ID).sum())

    return run


def _workload(sources, batch_size, limit):
    texts = sorted(sources[:limit] if limit else sources, key=len)
    return [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)]


def _time(run, batches):
    started = time.perf_counter()
    tokens = sum(run(batch) for batch in batches)
    seconds = time.perf_counter() - started
    sentences = sum(len(batch) for batch in batches)
    return {"seconds": seconds, "sentences": sentences, "tokens": tokens,
            "sentences_per_second": sentences / seconds, "tokens_per_second": tokens / seconds,
            "ms_per_sentence": 1000 * seconds / sentences}


def run(model_source="luong_translator", batch1_limit=200, rounds=3, try_compile=True,
        decoding="greedy"):
    from machine import machine_line

    import zoo.training  # noqa: F401
    from zoo import data as data_lib
    from zoo.models import catalog
    from zoo.tasks.sequence_outputs import with_decoding
    from zoo.tracking.loading import load_trained

    keras_model, origin = load_trained(model_source)
    # Exports decode as the model's config says (the YAML: beam 5); the twin decodes greedily.
    with_decoding(keras_model, {"decoding": decoding})
    config = catalog.resolve_config("luong_translator")
    sources, _ = data_lib.read_parallel(config, "test")
    workloads = {1: _workload(sources, 1, batch1_limit), 32: _workload(sources, 32, None)}
    directory = Path(tempfile.mkdtemp(prefix="zoo-decode-bench-"))
    runners = {"saved_model_xla": _saved_model_runner(keras_model, True, directory / "xla"),
               "saved_model_xla_int8": _saved_model_runner(keras_model, True,
                                                           directory / "xla_int8", "int8"),
               "saved_model_no_xla": _saved_model_runner(keras_model, False,
                                                         directory / "no_xla")}
    if decoding == "greedy":  # the twin has greedy decoding only
        runners["torch_eager"] = _torch_runner(keras_model, False)
    notes = {}
    if try_compile and decoding == "greedy":
        try:
            compiled = _torch_runner(keras_model, True)
            compiled(workloads[1][0])
            runners["torch_compile"] = compiled
        except Exception as error:  # noqa: BLE001  (reported, not fatal: it is optional)
            notes["torch_compile"] = f"failed on this machine: {type(error).__name__}: " \
                                     f"{str(error)[:300]}"
    results = {}
    for batch_size, batches in workloads.items():
        for runner in runners.values():  # untimed pass: compilation, caches
            _time(runner, batches)
        samples = {name: [] for name in runners}
        for _ in range(rounds):
            for name, runner in runners.items():
                samples[name].append(_time(runner, batches))
        for name, values in samples.items():
            best = sorted(values, key=lambda v: v["seconds"])[len(values) // 2]
            results[f"{name}@{batch_size}"] = best | {
                "samples_sentences_per_second": [v["sentences_per_second"] for v in values]}
        print(json.dumps({k: round(v["sentences_per_second"], 1) for k, v in results.items()}),
              flush=True)

    def ratio(a, b):
        return results[a]["sentences_per_second"] / results[b]["sentences_per_second"]

    ratios = {}
    for size in (1, 32):
        ratios[f"xla/no_xla@{size}"] = ratio(f"saved_model_xla@{size}",
                                              f"saved_model_no_xla@{size}")
        ratios[f"int8/xla@{size}"] = ratio(f"saved_model_xla_int8@{size}",
                                            f"saved_model_xla@{size}")
        if f"torch_eager@{size}" in results:
            ratios[f"xla/torch_eager@{size}"] = ratio(f"saved_model_xla@{size}",
                                                       f"torch_eager@{size}")
        if f"torch_compile@{size}" in results:
            ratios[f"xla/torch_compile@{size}"] = ratio(f"saved_model_xla@{size}",
                                                         f"torch_compile@{size}")
    return {"benchmark": "decode_throughput", "date": datetime.date.today().isoformat(),
            "machine": machine_line(), "model": origin, "rounds": rounds, "decoding": decoding,
            "batch1_sentences": len(workloads[1]), "batch32_sentences": len(sources),
            "results": results, "ratios": ratios, "notes": notes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="luong_translator",
                        help="a .keras file, run id or model name (its newest run)")
    parser.add_argument("--batch1", type=int, default=200, help="sentences timed at batch 1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--decoding", choices=("greedy", "beam"), default="greedy",
                        help="the exports' decoding (beam: the YAML's beam width; no twin)")
    parser.add_argument("--output", default=str(HERE / "results" / "decode_throughput.json"))
    args = parser.parse_args(argv)
    record = run(args.model, args.batch1, args.rounds, not args.no_compile, args.decoding)
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["ratios"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
