"""The quality table: train each task's default config within one fixed budget and score it.

    python benchmarks/quality.py --suite translators --budget-minutes 10   # the leaderboard
    python benchmarks/quality.py --suite tasks                             # their own budgets
    python benchmarks/quality.py --models sentiment,qa
    python benchmarks/quality.py --models luong_translator --rescore     # new decoding keys
    python benchmarks/quality.py --models sentiment --seeds 3 --budget-minutes 0  # a mean row
    python benchmarks/quality.py --add-row benchmarks/results/dialogue.json --models responder

Each model trains in its own process (`zoo train` with `time_budget_minutes` set to the budget,
or the YAML's own budget with `--budget-minutes 0`), one after the other: never two trainings at
once on a small machine. Rows are merged into `benchmarks/results/quality.json` by model and
dataset (a partial run keeps the other rows), and `benchmarks/results/quality.md` plus the
README's quality table are regenerated from it.

With `--seeds N` (seeds 1..N) or `--seed-list 0,1,2` a model trains once per seed (`--set
seed=S`), one run after the other, and its row is a *mean row*: `test` holds each metric's mean
over the runs, `test_std` its sample standard deviation (n − 1), `seeds` one record per run
(seed, test, run_id, train_minutes, epochs, commit, ...). Each run is also appended to
`benchmarks/results/quality_experiments.json` (`"kind": "seed_repeat"`, `group` naming the
set). `--add-row FILE` copies the `--models` rows of another results file in this row format
(`{"rows": [...]}`, e.g. `benchmarks/dialogue_baselines.py`'s) into the table: no training.
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
EXPERIMENTS = RESULTS / "quality_experiments.json"
README = ROOT / "README.md"
START, END = "<!-- quality-table:start -->", "<!-- quality-table:end -->"
TASK_MODELS = ("luong_translator", "sentiment", "qa", "summarizer", "summarizer_dialogsum",
               "responder")
METRIC_LABELS = {"bleu": "BLEU", "chrf": "chrF", "accuracy": "accuracy %", "f1": "F1",
                 "exact_match": "EM", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2",
                 "rougeL": "ROUGE-L", "f1_first_n": "F1 first 2,000",
                 "exact_match_first_n": "EM first 2,000", "distinct1": "distinct-1",
                 "distinct2": "distinct-2", "perplexity": "perplexity"}
# Decimals of a task's scores in the table (default 1): dialogue BLEU sits at a few points.
TASK_DECIMALS = {"dialogue": 2}
# The keys a row needs to be a table row (`--add-row` checks them).
ROW_KEYS = ("model", "task", "dataset", "headline", "test", "train_minutes", "budget_minutes",
            "epochs", "parameters", "machine", "date")
# Overrides that make a row something other than the default config on the full data.
CAPPING_KEYS = ("train_limit", "eval_limit")


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
    if row.get("seeds"):
        raise SystemExit(f"{model}: a mean row over {len(row['seeds'])} runs has no single "
                         f"run to re-score; retrain it with --seeds")
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
        "decoding": decoding_label(config), "seed": config.get("seed"),
        "overrides": overrides, "date": datetime.date.today().isoformat(),
        "machine": machine_line(), "commit": _commit(),
    }
    Path(output).write_text(json.dumps(row, indent=2))


def _commit():
    """The code a row was trained with: its speed (epochs in the budget) depends on it."""
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or None


def seed_record(row):
    """What a mean row keeps of one of its runs."""
    seed = row.get("seed", row.get("overrides", {}).get("seed"))
    record = {"seed": seed, "test": row["test"], "run_id": row.get("run_id"),
              "train_minutes": row["train_minutes"], "epochs": row["epochs"],
              "commit": row.get("commit")}
    for key in ("best_epoch", "tokens_per_second", "date", "overrides"):
        if key in row:
            record[key] = row[key]
    return record


def mean_row(runs, group=None):
    """One row for `runs` of one model and dataset (a run's quality row each): `test` holds each
    metric's mean, `test_std` its sample standard deviation (n − 1), `seeds` a record per run.
    `mean_over` is "seeds" when every run had its own seed, "runs" when seeds repeat (the
    spread is then run-to-run nondeterminism)."""
    if len(runs) < 2:
        raise ValueError(f"a mean row needs at least 2 runs, got {len(runs)}")
    if len({(run["model"], run["dataset"]) for run in runs}) != 1:
        raise ValueError("a mean row's runs must share model and dataset")
    records = [seed_record(run) for run in runs]
    metrics = [key for key in runs[0]["test"]
               if all(run["test"].get(key) is not None for run in runs)]
    values = {key: [run["test"][key] for run in runs] for key in metrics}
    speeds = [run["tokens_per_second"] for run in runs if run.get("tokens_per_second")]
    commits = list(dict.fromkeys(run.get("commit") for run in runs if run.get("commit")))
    seeds = [record["seed"] for record in records]
    first = runs[0]
    row = {key: first[key] for key in ("model", "task", "dataset", "attention", "headline")
           if key in first}
    overrides = [{k: v for k, v in run.get("overrides", {}).items() if k != "seed"}
                 for run in runs]
    row |= {
        "test": {key: statistics.mean(v) for key, v in values.items()},
        "test_std": {key: statistics.stdev(v) for key, v in values.items()},
        "mean_over": "seeds" if None not in seeds and len(set(seeds)) == len(seeds) else "runs",
        "train_minutes": statistics.mean(run["train_minutes"] for run in runs),
        "budget_minutes": first["budget_minutes"],
        "epochs": statistics.mean(run["epochs"] for run in runs),
        "tokens_per_second": statistics.mean(speeds) if speeds else None,
        "parameters": first["parameters"], "run_id": None,
        "decoding": first.get("decoding", "–"),
        "overrides": {k: v for k, v in overrides[0].items()
                      if all(o.get(k) == v for o in overrides)},
        "date": max(run["date"] for run in runs), "machine": first["machine"],
        "commit": ", ".join(commits) or None, "seeds": records,
    }
    if group:
        row["group"] = group
    return row


def record_experiment(row, group):
    """Append one run of a mean row to quality_experiments.json (kind "seed_repeat")."""
    data = (json.loads(EXPERIMENTS.read_text()) if EXPERIMENTS.exists()
            else {"note": "", "experiments": []})
    data["experiments"].append(row | {"kind": "seed_repeat", "group": group})
    EXPERIMENTS.write_text(json.dumps(data, indent=2) + "\n")


def read_rows(path, models):
    """The `models` rows of a results file in this script's row format (`{"rows": [...]}` or a
    list of rows), checked to be table rows of a default config on the full data."""
    data = json.loads(Path(path).read_text())
    rows = data["rows"] if isinstance(data, dict) else data
    by_model = {row.get("model"): row for row in rows}
    picked = []
    for model in models:
        if model not in by_model:
            raise SystemExit(f"{path}: no row of {model!r} (it has: "
                             f"{', '.join(str(m) for m in by_model)})")
        row = dict(by_model[model])
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise SystemExit(f"{path}: the {model} row lacks {', '.join(missing)}: not a "
                             f"quality.py row")
        capped = [key for key in CAPPING_KEYS if key in row.get("overrides", {})]
        if capped:
            raise SystemExit(f"{path}: the {model} row ran with {', '.join(capped)} "
                             f"(a capped smoke run), not the full data")
        path = Path(path).resolve()
        row["copied_from"] = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) \
            else str(path)
        picked.append(row)
    return picked


def merge(rows):
    existing = json.loads(QUALITY.read_text())["rows"] if QUALITY.exists() else []
    keyed = {(r["model"], r["dataset"]): r for r in existing}
    for row in rows:
        keyed[(row["model"], row["dataset"])] = row
    QUALITY.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(keyed.values(),
                     key=lambda r: (r["task"], -(r["test"].get(r["headline"]) or 0)))
    QUALITY.write_text(json.dumps({"rows": ordered}, indent=2) + "\n")
    return ordered


def _number(value, decimals):
    return "–" if value is None else f"{value:.{decimals}f}"


def score_cell(row):
    """The score column: the headline in bold, then the other metrics; a mean row's values are
    mean ± sample std, with the runs' own headline scores in brackets (in run order)."""
    test, headline = row["test"], row["headline"]
    decimals = TASK_DECIMALS.get(row.get("task"), 1)
    std = row.get("test_std", {})

    def value(key):
        text = f"{METRIC_LABELS.get(key, key)} {_number(test.get(key), decimals)}"
        if key in std:
            text += f" ± {_number(std[key], decimals)}"
        return text

    score = f"**{value(headline)}**"
    if row.get("seeds"):
        runs = ", ".join(_number(record["test"].get(headline), decimals)
                         for record in row["seeds"])
        score += f" (mean of {len(row['seeds'])} {row.get('mean_over', 'seeds')}: {runs})"
    others = [value(key) for key in test if key != headline]
    if others:
        score += " / " + " / ".join(others)
    if row.get("greedy_test") and row.get("decoding") != "greedy":  # re-scored rows
        score += f" (greedy: {METRIC_LABELS.get(headline, headline)} " \
                 f"{_number(row['greedy_test'][headline], decimals)})"
    return score


def time_cell(row):
    if row.get("seeds"):
        epochs = [record["epochs"] for record in row["seeds"]]
        span = f"{min(epochs)}" if min(epochs) == max(epochs) else f"{min(epochs)}–{max(epochs)}"
        return f"{row['train_minutes']:.1f} min mean ({row['budget_minutes']:g}), {span} ep"
    return f"{row['train_minutes']:.1f} min ({row['budget_minutes']:g}), {row['epochs']} ep"


def mean_note(rows):
    """The note on the mean rows (None when there are none)."""
    means = [row for row in rows if row.get("seeds")]
    if not means:
        return None
    parts = []
    for row in means:
        seeds = [record["seed"] for record in row["seeds"]]
        if row.get("mean_over", "seeds") == "seeds":
            parts.append(f"{row['model']} over {len(seeds)} seeds "
                         f"({', '.join(str(seed) for seed in seeds)})")
        else:
            same = sorted({str(seed) for seed in seeds})
            parts.append(f"{row['model']} over {len(seeds)} runs of the same config with seed "
                         f"{', '.join(same)} (their spread is run-to-run nondeterminism, not "
                         f"the seed)")
    return (f"Mean rows: {'; '.join(parts)}. In them a score is the mean ± the sample standard "
            "deviation (n − 1) of the runs' test scores, the runs' own headline scores in "
            "brackets in run order; train time and tokens/s are means, `code` lists the runs' "
            "commits. The other rows are single runs.")


def table(rows):
    header = ("| model | dataset (test) | score | decoding | train time (budget) | tokens/s | "
              "params | code |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        speed = f"{row['tokens_per_second']:,.0f}" if row.get("tokens_per_second") else "–"
        lines.append(
            f"| {row['model']} | {row['dataset']} | {score_cell(row)} | "
            f"{row.get('decoding', '–')} | {time_cell(row)} | {speed} | "
            f"{row['parameters'] / 1e6:.1f} M | {row.get('commit') or '–'} |")
    machines = sorted({row["machine"] for row in rows})
    lines.append("")
    note = mean_note(rows)
    if note:
        lines.append(note)
        lines.append("")
    dates = {row["date"] for row in rows}
    dates |= {record["date"] for row in rows for record in row.get("seeds", [])
              if record.get("date")}
    lines.append(f"Machine: {'; '.join(machines)}. Dates: {', '.join(sorted(dates))}.")
    return "\n".join(lines)


def write_tables(rows):
    text = table(rows)
    (QUALITY.parent / "quality.md").write_text(text + "\n")
    if README.exists():
        content = README.read_text()
        if START in content:
            start, end = content.index(START), content.index(END) + len(END)
            content = content[:start] + f"{START}\n{text}\n{END}" + content[end:]
            README.write_text(content)
    return text


def child_command(model, budget, sets, row_path):
    """The command that trains `model` in its own process and writes its row to `row_path`."""
    command = [sys.executable, __file__, "--one", model, "--row", str(row_path),
               "--budget-minutes", str(budget)]
    for item in sets:
        command += ["--set", item]
    return command


def run_child(model, budget, sets):
    """`model` trained in a child process: its row, or None when the child failed."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        row_path = Path(handle.name)
    try:
        if subprocess.run(child_command(model, budget, sets, row_path), cwd=ROOT,
                          check=False).returncode != 0:
            return None
        return json.loads(row_path.read_text())
    finally:
        row_path.unlink(missing_ok=True)


def seed_list(args, parser):
    """The seeds of --seeds N (1..N) or --seed-list, or None for single runs."""
    if args.seed_list:
        seeds = [int(item) for item in args.seed_list.split(",") if item.strip()]
    elif args.seeds:
        seeds = list(range(1, args.seeds + 1))
    else:
        return None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        parser.error("a mean row needs at least 2 distinct seeds")
    if any(item.split("=", 1)[0].strip() == "seed" for item in args.set):
        parser.error("--set seed=... and --seeds/--seed-list exclude each other")
    return seeds


def train_seeds(model, seeds, budget, sets):
    """`model` trained once per seed, one run after the other; each run is appended to
    quality_experiments.json as it finishes. The mean row, or None if a run failed."""
    group = (f"{model}: seeds {', '.join(str(seed) for seed in seeds)}, started "
             f"{datetime.datetime.now().isoformat(timespec='minutes')}")
    runs = []
    for seed in seeds:
        print(f"== {model}, seed {seed}", flush=True)
        row = run_child(model, budget, [*sets, f"seed={seed}"])
        if row is None:
            return None
        record_experiment(row, group)
        runs.append(row)
    return mean_row(runs, group)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=["translators", "tasks"], default=None)
    parser.add_argument("--models", default="", help="comma-separated registered names")
    parser.add_argument("--budget-minutes", type=float, default=10.0,
                        help="training budget per model (0: each YAML's own)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    repeats = parser.add_mutually_exclusive_group()
    repeats.add_argument("--seeds", type=int, default=None, metavar="N",
                         help="train each model with seeds 1..N, one run after the other; its "
                              "row is the mean ± sample std over them")
    repeats.add_argument("--seed-list", default=None, metavar="S,S,...",
                         help="as --seeds, with these seeds")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--table-only", action="store_true", help="regenerate the tables")
    parser.add_argument("--rescore", action="store_true",
                        help="no training: re-score the --models rows' runs on the test split "
                             "with the decoding their YAMLs name now")
    parser.add_argument("--add-row", default=None, metavar="FILE.json",
                        help="no training: copy the --models rows of FILE ({\"rows\": [...]} "
                             "in this script's row format, e.g. benchmarks/results/"
                             "dialogue.json) into the table")
    args = parser.parse_args(argv)
    if args.one:
        train_one(args.one, args.budget_minutes, args.set, args.row)
        return 0
    if args.rescore:
        rows = [rescore(model) for model in args.models.split(",") if model]
        print(write_tables(merge(rows)))
        return 0
    if args.add_row:
        models = [m for m in args.models.split(",") if m]
        if not models:
            parser.error("--add-row needs --models (the rows to copy)")
        print(write_tables(merge(read_rows(args.add_row, models))))
        return 0
    if args.table_only:
        print(write_tables(merge([])))
        return 0
    seeds = seed_list(args, parser)
    models = [m for m in args.models.split(",") if m]
    if args.suite == "translators":
        models += translator_models()
    elif args.suite == "tasks":
        models += list(TASK_MODELS)
    if not models:
        parser.error("name --models or a --suite")
    failed = []
    for model in models:
        if seeds:
            row = train_seeds(model, seeds, args.budget_minutes, args.set)
        else:
            print(f"== {model}", flush=True)
            row = run_child(model, args.budget_minutes, args.set)
        if row is None:
            failed.append(model)
            continue
        write_tables(merge([row]))  # keep what finished, whatever happens next
    print(write_tables(merge([])))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
