"""Regenerate the benchmark table of `docs/benchmarks.md` from `benchmarks/results/*.json`
(never by hand): the rows between its `benchmark-table` markers are rewritten.

    python benchmarks/report.py
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BENCHMARKS_DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- benchmark-table:start -->", "<!-- benchmark-table:end -->"


def _load(name):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def training_rows():
    rows = []
    for path in sorted(RESULTS.glob("*_training.json")):
        record = json.loads(path.read_text())
        rows.append(
            f"| {record['model']} | Multi30k de→en test, greedy | "
            f"**{record['test_bleu']:.1f}** BLEU / {record['test_chrf']:.1f} chrF | "
            f"{record['train_minutes']:.1f} min train, {record['epochs_run']} epochs | "
            f"{record['target_tokens_per_second_median']:,.0f} target tok/s | "
            f"{record['machine']}, {record['date']} |")
    return rows


def serving_rows():
    record = _load("serving_load.json")
    if not record:
        return []
    # The note's first clause after the fixed "clients and server share..." says what was served.
    what = record.get("note", "").split("; ")[1:2]
    model = what[0].split(" (")[0] if what else record.get("model", "fixture")
    export = record.get("export")
    if export:
        model += (f", {'XLA' if export.get('jit_compile') else 'no XLA'} "
                  f"{export.get('precision')}, {export.get('decoding')}")
    machine = record.get("host", {}).get("cpu", "")
    rows = []
    for level in record.get("results", []):
        rows.append(
            f"| serving load ({'batching' if level.get('batching') else 'no batching'}, "
            f"{level.get('concurrency')} clients) | {model} | "
            f"{level.get('requests_per_s', 0):,.0f} req/s | p50 "
            f"{level.get('p50_ms', 0):.1f} ms, p99 {level.get('p99_ms', 0):.1f} ms | "
            f"{level.get('errors', 0)} errors | {machine}, {record.get('created', '')[:10]} |")
    return rows


def chaos_rows():
    record = _load("serving_chaos.json")
    if not record:
        return []
    codes = ", ".join(f"{code} {count:,}" for code, count in record["answers_by_code"].items())
    row = (
        f"| serving chaos ({record['clients']} clients, {record['duration_s']:.0f} s, versions "
        f"added/corrupted/deleted, junk dirs) | {record['model']} | {record['requests']:,} "
        f"requests: {codes}; **unexpected codes {record['unexpected_total']}, server restarts "
        f"{record['server_restarts']}**; versions loaded {record['versions_loaded']}, refused "
        f"{record['versions_refused']} | valid p50 {record['valid_p50_ms']} ms, p99 "
        f"{record['valid_p99_ms']} ms; health p99 {record['health_p99_ms']} ms | peak RSS "
        f"{record['peak_rss_mib']:,.0f} MiB | {record['host'].get('cpu', '')}, "
        f"{record['created'][:10]} |")
    return [row]


def attention_rows():
    record = _load("attention_layers.json")
    if not record:
        return []
    rows = []
    for row in record.get("layers", record.get("rows", [])):
        rows.append(
            f"| attention `{row.get('name')}` fwd+bwd | {row.get('shape', '')} | "
            f"jit ×{row.get('speedup', 0):.2f} (eager {row.get('eager_ms', 0):.0f} → "
            f"{row.get('jit_ms', 0):.0f} ms); one decoder step jit ×"
            f"{row.get('step_speedup', 0):.2f} | | | {record.get('created', '')[:10]} |")
    return rows


def throughput_rows():
    record = _load("train_throughput.json")
    if not record:
        return []
    names = {"keras_graph_fp32": "ours, graph, float32", "keras_xla_fp32": "ours, XLA, float32",
             "keras_graph_bf16": "ours, graph, mixed bf16 (default)",
             "keras_xla_bf16": "ours, XLA, mixed bf16", "torch_fp32": "PyTorch 2.13 twin, float32",
             "torch_bf16": "PyTorch 2.13 twin, bf16 autocast"}
    rows = []
    for variant, result in record["results"].items():
        share, peak = result.get("peak_fraction"), "FP32 peak"
        if share and variant.endswith("bf16"):
            # AVX512-BF16 dot products do two multiply-adds per FP32 lane: twice the FP32 peak.
            share, peak = share / 2, "bf16 peak (2× FP32)"
        rows.append(
            f"| training throughput: {names.get(variant, variant)} | luong_translator default "
            f"size, batch 64, identical batches | **{result['target_tokens_per_second']:,.0f}** "
            f"target tok/s | {result['flops_per_second'] / 1e9:.0f} GFLOP/s"
            f"{f' = {share:.0%} of {peak}' if share else ''} | median of {record['rounds']} | "
            f"{record['machine']}, {record['date']} |")
    ratios = ", ".join(f"{k} ×{v:.2f}" for k, v in record.get("ratios", {}).items())
    rows.append(f"| training ratios | same batches, one run | {ratios} | peak: "
                f"{record.get('peak', '')} | | {record['date']} |")
    return rows


def profile_rows():
    records = _load("profile_train_step.json")
    rows = []
    for label, record in (records or {}).items():
        parts = ", ".join(f"{part['name']} {part['fraction']:.0%}"
                          for part in record["by_part"] if part["fraction"] >= 0.005)
        types = ", ".join(f"{op['name']} {op['fraction']:.0%}"
                          for op in record["by_op_type"][:5])
        rows.append(
            f"| training step profile: {label} | luong_translator default size, batch 64, "
            f"{'XLA' if record['jit_compile'] else 'graph'} {record['precision']} | "
            f"**{record['step_ms']:.0f} ms**/step | op time by part: {parts} | top op types: "
            f"{types}; {record['ops_per_step']:,.0f} ops/step | {record['machine']} |")
    return rows


def decode_rows():
    return _decode_rows("decode_throughput.json") + _decode_rows("decode_throughput_beam.json")


def _decode_rows(name):
    record = _load(name)
    if not record:
        return []
    rows = []
    for name, result in record["results"].items():
        variant, batch = name.split("@")
        bleu = f", BLEU {result['bleu']:.2f}" if "bleu" in result else ""
        bound = (f" ({result['fraction_of_bound']:.0%} of its precision's memory bound)"
                 if "fraction_of_bound" in result else "")
        rows.append(
            f"| {record.get('decoding', 'greedy')} decoding: {variant.replace('_', ' ')} | "
            f"batch {batch}, Multi30k test "
            f"({result['sentences']} sentences) | **{result['sentences_per_second']:,.1f}** "
            f"sentences/s{bleu} | {result['ms_per_sentence']:.1f} ms/sentence | "
            f"{result['tokens_per_second']:,.0f} tok/s{bound} | {record['machine']}, "
            f"{record['date']} |")
    ratios = ", ".join(f"{k} ×{v:.2f}" for k, v in record.get("ratios", {}).items())
    deltas = ", ".join(f"{k} {v:+.2f}" for k, v in record.get("bleu_deltas", {}).items())
    if deltas:
        ratios += f"; BLEU {deltas}"
    rows.append(f"| {record.get('decoding', 'greedy')} decoding ratios | same weights, one run | "
                f"{ratios} | | | {record['date']} |")
    return rows


def roofline_rows():
    record = _load("decode_roofline.json")
    if not record:
        return []
    rates = ", ".join(f"{name.replace('_', ' ')} {rate:.1f}"
                      for name, rate in record["streaming_gb_per_s"].items())
    row = (f"| batch-1 decoding bound (memory) | {record['model']}: "
           f"{record['decoder_bytes_per_step'] / 1e6:.1f} MB of weights per greedy step | "
           f"**{record['bound_tokens_per_second']:,.0f}** tok/s at most | streaming GB/s: "
           f"{rates} |")
    if "fraction_of_bound" in record:
        fractions = ", ".join(f"{name.replace('_', ' ')} {fraction:.0%}"
                              for name, fraction in record["fraction_of_bound"].items())
        row += (f" measured: {fractions} of the bound; largest XLA / non-XLA possible "
                f"×{record['largest_possible_xla_over_no_xla']:.2f}")
    return [row + f" | {record['machine']}, {record['date']} |"]


def table():
    header = ["| benchmark | setting | result | time | speed | machine, date |",
              "|---|---|---|---|---|---|"]
    rows = (training_rows() + throughput_rows() + profile_rows() + decode_rows()
            + roofline_rows() + attention_rows()
            + serving_rows() + chaos_rows())
    if not rows:
        rows = ["| (no results yet: run `make bench`) | | | | | |"]
    return "\n".join(header + rows)


def main():
    text = BENCHMARKS_DOC.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{BENCHMARKS_DOC} lacks the {START} ... {END} markers")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    text = pattern.sub(lambda _: f"{START}\n{table()}\n{END}", text)
    BENCHMARKS_DOC.write_text(text)
    print(table())


if __name__ == "__main__":
    main()
