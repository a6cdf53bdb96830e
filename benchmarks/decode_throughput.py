"""Decoding speed of luong_translator: XLA SavedModel (float32 and int8) vs non-XLA SavedModel
vs the PyTorch twin (eager float32, eager with dynamic int8 quantization, and `torch.compile`
where it works), at batch 1 and batch 32; the BLEU of each and, at batch 1, how close each
comes to the memory bound of its own precision.

    python benchmarks/decode_throughput.py [--model runs/<id>/model.keras] [--batch1 200]
    python benchmarks/decode_throughput.py --decoding beam      # beam 5 (torch.compile: greedy)

The same trained weights everywhere (the newest `luong_translator` run by default; the torch
twin gets them through `torch_luong.port_keras_to_torch`; `torch_eager_int8` is that twin after
`torch.ao.quantization.quantize_dynamic` of its LSTMs and Linears, int8 weights with dynamic
per-row activation scales, as PyTorch's users would quantize it), the Multi30k test sources,
sorted by length and cut into batches alike. SavedModels are called through their
`serving_default` signature, text in (tokenization and detokenization included: what TF Serving
would run); torch decodes the same token ids (tokenization outside its timing). Each workload
runs once untimed (XLA compiles a shape once per (batch bucket, padded length)) — the batch-32
pass over the whole test split gives each variant's BLEU — then is timed `--rounds` times, the
variants interleaved; the median is kept.

Memory bound (batch 1): one greedy step reads every decoder weight but the embedding table (one
row of it), in the variant's precision (`decoder_bytes_per_step`: int8 kernels are a quarter of
float32's, plus their float32 scales); the streaming rate is the fastest matrix-vector product
over as many float32 bytes measured in this run (`decode_roofline.streaming_rates`), so each
variant's bound is `rate / its bytes per step` tokens/s and `fraction_of_bound` is its tokens/s
over that (the encoder, tokenization and argmax not subtracted).
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
        translations = [t.decode() for t in output["translation"].numpy()]
        return int(output["target_lengths"].numpy().sum()), translations  # tokens incl. EOS

    return run


def _torch_runner(keras_model, compiled=False, quantized=False, beam=False):
    import torch
    from torch_luong import PAD_ID, twin_of

    torch.set_grad_enabled(False)
    model = twin_of(keras_model).eval()
    if quantized:  # PyTorch's post-training dynamic quantization of the recurrent and dense
        model = torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.LSTM, torch.nn.LSTMCell, torch.nn.Linear}, dtype=torch.qint8)
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
        if beam:  # the export's beam: the model's config (the YAML: beam 5, α 1)
            output = model.beam_decode(cache[key], keras_model.beam_width,
                                       keras_model.length_penalty)
        else:
            output = model.greedy_decode(cache[key])
        tokens = int((output != PAD_ID).sum())
        return tokens, output.numpy().astype("int32")

    def texts_of(output):  # detokenized outside the timing too
        return [t.decode() for t in keras_model.decode_ids(output).numpy()]

    run.texts_of = texts_of

    return run


def _workload(sources, batch_size, limit):
    texts = sorted(sources[:limit] if limit else sources, key=len)
    return [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)]


def _time(run, batches):
    started = time.perf_counter()
    outputs = [run(batch) for batch in batches]
    seconds = time.perf_counter() - started
    tokens = sum(count for count, _ in outputs)
    sentences = sum(len(batch) for batch in batches)
    return {"seconds": seconds, "sentences": sentences, "tokens": tokens,
            "sentences_per_second": sentences / seconds, "tokens_per_second": tokens / seconds,
            "ms_per_sentence": 1000 * seconds / sentences}, outputs


def _translations(run, outputs):
    """The strings of one pass's outputs (the torch runners detokenize after the timing)."""
    texts_of = getattr(run, "texts_of", None)
    return [text for _, batch in outputs
            for text in (texts_of(batch) if texts_of else batch)]


def memory_bound(keras_model, repeats=50):
    """Batch-1 tokens/s bound per precision: this machine's fastest float32 matrix-vector
    streaming rate over the step's float32 bytes, divided by each precision's bytes per step."""
    from decode_roofline import decoder_bytes_per_step, streaming_rates

    from export.saved_model import quantized_copy

    step_bytes = {"float32": decoder_bytes_per_step(keras_model)[0],
                  "int8": decoder_bytes_per_step(quantized_copy(keras_model, "int8"))[0]}
    rates = streaming_rates(step_bytes["float32"], repeats)
    rate = max(rates.values()) * 1e9
    return {"decoder_bytes_per_step": step_bytes, "streaming_gb_per_s": rates,
            "tokens_per_second": {k: rate / v for k, v in step_bytes.items()}}


def run(model_source="luong_translator", batch1_limit=200, rounds=3, try_compile=True,
        decoding="greedy"):
    from machine import machine_line

    import zoo.training  # noqa: F401
    from zoo import data as data_lib
    from zoo.metrics import corpus_bleu
    from zoo.models import catalog
    from zoo.tasks.sequence_outputs import with_decoding
    from zoo.tracking.loading import load_trained

    keras_model, origin = load_trained(model_source)
    # Exports decode as the model's config says (the YAML: beam 5): set here for all variants.
    with_decoding(keras_model, {"decoding": decoding})
    config = catalog.resolve_config("luong_translator")
    sources, references = data_lib.read_parallel(config, "test")
    workloads = {1: _workload(sources, 1, batch1_limit), 32: _workload(sources, 32, None)}
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))  # _workload's order
    sorted_references = [references[i] for i in order]
    directory = Path(tempfile.mkdtemp(prefix="zoo-decode-bench-"))
    runners = {"saved_model_xla": _saved_model_runner(keras_model, True, directory / "xla"),
               "saved_model_xla_int8": _saved_model_runner(keras_model, True,
                                                           directory / "xla_int8", "int8"),
               "saved_model_no_xla": _saved_model_runner(keras_model, False,
                                                         directory / "no_xla")}
    beam = decoding == "beam"
    runners["torch_eager"] = _torch_runner(keras_model, beam=beam)
    runners["torch_eager_int8"] = _torch_runner(keras_model, quantized=True, beam=beam)
    notes = {}
    if try_compile and decoding == "greedy":
        try:
            compiled = _torch_runner(keras_model, compiled=True)
            compiled(workloads[1][0])
            runners["torch_compile"] = compiled
        except Exception as error:  # noqa: BLE001  (reported, not fatal: it is optional)
            notes["torch_compile"] = f"failed on this machine: {type(error).__name__}: " \
                                     f"{str(error)[:300]}"
    results, bleu = {}, {}
    for batch_size, batches in workloads.items():
        for name, runner in runners.items():  # untimed pass: compilation, caches, BLEU
            _, outputs = _time(runner, batches)
            if batch_size == 32:
                bleu[name] = corpus_bleu(_translations(runner, outputs),
                                         sorted_references)["bleu"]
        samples = {name: [] for name in runners}
        for _ in range(rounds):
            for name, runner in runners.items():
                samples[name].append(_time(runner, batches)[0])
        for name, values in samples.items():
            best = sorted(values, key=lambda v: v["seconds"])[len(values) // 2]
            results[f"{name}@{batch_size}"] = best | {
                "samples_sentences_per_second": [v["sentences_per_second"] for v in values]}
        print(json.dumps({k: round(v["sentences_per_second"], 1) for k, v in results.items()}),
              flush=True)
    for name, score in bleu.items():
        for size in (1, 32):
            results[f"{name}@{size}"]["bleu"] = score
    bound = memory_bound(keras_model)
    for name in runners:
        result = results[f"{name}@1"]
        precision = "int8" if name.endswith("int8") else "float32"
        result["bound_tokens_per_second"] = bound["tokens_per_second"][precision]
        result["fraction_of_bound"] = (result["tokens_per_second"]
                                       / result["bound_tokens_per_second"])

    def ratio(a, b):
        return results[a]["sentences_per_second"] / results[b]["sentences_per_second"]

    ratios = {}
    for size in (1, 32):
        exports = [name for name in runners if name.startswith("saved_model")]
        fastest = max(exports, key=lambda name: results[f"{name}@{size}"]["sentences_per_second"])
        notes[f"fastest_export@{size}"] = fastest
        ratios[f"xla/no_xla@{size}"] = ratio(f"saved_model_xla@{size}",
                                              f"saved_model_no_xla@{size}")
        ratios[f"int8/xla@{size}"] = ratio(f"saved_model_xla_int8@{size}",
                                            f"saved_model_xla@{size}")
        for twin in ("torch_eager", "torch_eager_int8", "torch_compile"):
            if f"{twin}@{size}" in results:
                ratios[f"xla/{twin}@{size}"] = ratio(f"saved_model_xla@{size}",
                                                      f"{twin}@{size}")
                ratios[f"fastest_export/{twin}@{size}"] = ratio(f"{fastest}@{size}",
                                                                 f"{twin}@{size}")
    bleu_deltas = {"int8-float32 (ours)": bleu["saved_model_xla_int8"] - bleu["saved_model_xla"]}
    if "torch_eager_int8" in bleu:
        bleu_deltas["int8-float32 (torch)"] = bleu["torch_eager_int8"] - bleu["torch_eager"]
    return {"benchmark": "decode_throughput", "date": datetime.date.today().isoformat(),
            "machine": machine_line(), "model": origin, "rounds": rounds, "decoding": decoding,
            "batch1_sentences": len(workloads[1]), "batch32_sentences": len(sources),
            "memory_bound": bound, "results": results, "ratios": ratios,
            "bleu_deltas": bleu_deltas, "notes": notes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="luong_translator",
                        help="a .keras file, run id or model name (its newest run)")
    parser.add_argument("--batch1", type=int, default=200, help="sentences timed at batch 1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--decoding", choices=("greedy", "beam"), default="greedy",
                        help="greedy, or beam search as the YAML says (beam 5, GNMT α 1)")
    parser.add_argument("--output", default=None,
                        help="default: results/decode_throughput.json (greedy), "
                             "results/decode_throughput_beam.json (beam)")
    args = parser.parse_args(argv)
    if args.output is None:
        suffix = "" if args.decoding == "greedy" else "_beam"
        args.output = str(HERE / "results" / f"decode_throughput{suffix}.json")
    record = run(args.model, args.batch1, args.rounds, not args.no_compile, args.decoding)
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["ratios"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
