"""The quality table: train each task's default config within one fixed budget and score it.

    python benchmarks/quality.py --suite translators --budget-minutes 10   # the leaderboard
    python benchmarks/quality.py --suite tasks                             # their own budgets
    python benchmarks/quality.py --models sentiment,qa
    python benchmarks/quality.py --models luong_translator --rescore     # new decoding keys

Each model trains in its own process (`zoo train` with `time_budget_minutes` set to the budget,
or the YAML's own budget with `--budget-minutes 0`), one after the other: never two trainings at
once on a small machine. Rows are merged into `benchmarks/results/quality.json` by model and
dataset (a partial run keeps the other rows), and `benchmarks/results/quality.md` plus the
README's quality table are regenerated from it.
"""

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
QUALITY = RESULTS / "quality.json"
START, END = "<!-- quality-table:start -->", "<!-- quality-table:end -->"
TASK_MODELS = ("luong_translator", "sentiment", "qa", "summarizer", "summarizer_dialogsum",
               "responder")
METRIC_LABELS = {"bleu": "BLEU", "chrf": "chrF", "accuracy": "accuracy %", "f1": "F1",
                 "exact_match": "EM", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2",
                 "rougeL": "ROUGE-L", "f1_first_n": "F1 first 2,000",
                 "exact_match_first_n": "EM first 2,000", "distinct1": "distinct-1",
                 "distinct2": "distinct-2", "perplexity": "perplexity"}


def translator_models():
    import zoo

    return [name for name in zoo.list_models() if name.endswith("_translator")]


def dataset_label(config, task_name):
    if task_name == "translation":
        return f"{config['dataset']} {config['source_lang']}→{config['target_lang']}"
    return str(config.get("dataset", task_name))


def decoding_label(config):
    """How a row's test outputs were decoded (sequence generators only)."""
    if "decoding" not in config:
        return "–"
    if config["decoding"] == "greedy":
        return "greedy"
    return f"beam {config['beam_width']}, lp {config['length_penalty']:g}"


def rescore(model):
    """Re-score `model`'s row on the test split with the decoding its YAML now names (the
    trained weights are the row's run: decoding keys do not change training)."""
    from zoo.evaluation import evaluate
    from zoo.models import catalog
    from zoo.tasks.sequence_outputs import DECODING_KEYS

    rows = json.loads(QUALITY.read_text())["rows"]
    matches = [row for row in rows if row["model"] == model]
    if len(matches) != 1:
        raise SystemExit(f"{model}: {len(matches)} rows in {QUALITY}, need exactly one")
    row = matches[0]
    config = catalog.resolve_config(model)
    overrides = {key: config[key] for key in DECODING_KEYS if key in config}
    if row.get("decoding", "greedy") == "greedy":  # keep the training run's own scores
        row.setdefault("greedy_test", dict(row["test"]))
    scores, _ = evaluate(row["run_id"], split="test", overrides=overrides)
    row["test"] = {k[len("test_"):]: v for k, v in scores.items()
                   if k.startswith("test_") and not k.endswith("_seconds")}
    row["decoding"] = decoding_label(config)
    row["rescored"] = {"date": datetime.date.today().isoformat(), "decoding": overrides}
    return row


def train_one(model, budget, overrides, output):
    """Runs in a child process: train `model`, write its quality row to `output`."""
    from zoo.config import parse_assignment
    from zoo.tasks import get_task
    from zoo.training import train

    overrides = dict(parse_assignment(item) for item in overrides)
    if budget:
        overrides["time_budget_minutes"] = budget
    result = train(model, overrides, verbose=2)
    config = result.config
    task = get_task(config["task"])
    speeds = [e["target_tokens_per_second"] for e in result.history
              if "target_tokens_per_second" in e]
    row = {
        "model": config["model"], "task": task.name, "dataset": dataset_label(config, task.name),
        "attention": str(config.get("attention")), "headline": task.headline,
        "test": {k[len("test_"):]: v for k, v in result.metrics.items()
                 if k.startswith("test_") and k != "test_seconds"},
        "train_minutes": result.metrics["train_seconds"] / 60,
        "budget_minutes": config["time_budget_minutes"], "epochs": len(result.history),
        "tokens_per_second": statistics.median(speeds[1:] or speeds) if speeds else None,
        "parameters": result.model.count_params(), "run_id": result.run_id,
        "decoding": decoding_label(config),
        "overrides": overrides, "date": datetime.date.today().isoformat(),
        "machine": machine_line(), "commit": _commit(),
    }
    Path(output).write_text(json.dumps(row, indent=2))


def _commit():
    """The code a row was trained with: its speed (epochs in the budget) depends on it."""
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or None


def merge(rows):
    existing = json.loads(QUALITY.read_text())["rows"] if QUALITY.exists() else []
    keyed = {(r["model"], r["dataset"]): r for r in existing}
    for row in rows:
        keyed[(row["model"], row["dataset"])] = row
    RESULTS.mkdir(exist_ok=True)
    ordered = sorted(keyed.values(), key=lambda r: (r["task"], -r["test"].get(r["headline"], 0)))
    QUALITY.write_text(json.dumps({"rows": ordered}, indent=2) + "\n")
    return ordered


def table(rows):
    header = ("| model | dataset (test) | score | decoding | train time (budget) | tokens/s | "
              "params | code |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        test = row["test"]
        headline = row["headline"]
        others = [f"{METRIC_LABELS.get(k, k)} {v:.1f}" for k, v in test.items() if k != headline]
        score = f"**{METRIC_LABELS.get(headline, headline)} {test.get(headline, 0):.1f}**"
        if others:
            score += " / " + " / ".join(others)
        if row.get("greedy_test") and row.get("decoding") != "greedy":  # re-scored rows
            score += f" (greedy: {METRIC_LABELS.get(headline, headline)} " \
                     f"{row['greedy_test'][headline]:.1f})"
        speed = f"{row['tokens_per_second']:,.0f}" if row.get("tokens_per_second") else "–"
        lines.append(
            f"| {row['model']} | {row['dataset']} | {score} | {row.get('decoding', '–')} | "
            f"{row['train_minutes']:.1f} min "
            f"({row['budget_minutes']:g}), {row['epochs']} ep | {speed} | "
            f"{row['parameters'] / 1e6:.1f} M | {row.get('commit') or '–'} |")
    machines = sorted({row["machine"] for row in rows})
    lines.append("")
    lines.append(f"Machine: {'; '.join(machines)}. Dates: "
                 f"{', '.join(sorted({row['date'] for row in rows}))}.")
    return "\n".join(lines)


def write_tables(rows):
    text = table(rows)
    (RESULTS / "quality.md").write_text(text + "\n")
    readme = ROOT / "README.md"
    content = readme.read_text()
    if START in content:
        start, end = content.index(START), content.index(END) + len(END)
        content = content[:start] + f"{START}\n{text}\n{END}" + content[end:]
        readme.write_text(content)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=["translators", "tasks"], default=None)
    parser.add_argument("--models", default="", help="comma-separated registered names")
    parser.add_argument("--budget-minutes", type=float, default=10.0,
                        help="training budget per model (0: each YAML's own)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--table-only", action="store_true", help="regenerate the tables")
    parser.add_argument("--rescore", action="store_true",
                        help="no training: re-score the --models rows' runs on the test split "
                             "with the decoding their YAMLs name now")
    args = parser.parse_args(argv)
    if args.one:
        train_one(args.one, args.budget_minutes, args.set, args.row)
        return 0
    if args.rescore:
        rows = [rescore(model) for model in args.models.split(",") if model]
        print(write_tables(merge(rows)))
        return 0
    if args.table_only:
        print(write_tables(merge([])))
        return 0
    models = [m for m in args.models.split(",") if m]
    if args.suite == "translators":
        models += translator_models()
    elif args.suite == "tasks":
        models += list(TASK_MODELS)
    if not models:
        parser.error("name --models or a --suite")
    rows, failed = [], []
    for model in models:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            row_path = handle.name
        command = [sys.executable, __file__, "--one", model, "--row", row_path,
                   "--budget-minutes", str(args.budget_minutes)]
        for item in args.set:
            command += ["--set", item]
        print(f"== {model}", flush=True)
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append(model)
            continue
        rows.append(json.loads(Path(row_path).read_text()))
        write_tables(merge(rows[-1:]))  # keep what finished, whatever happens next
    print(write_tables(merge([])))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
