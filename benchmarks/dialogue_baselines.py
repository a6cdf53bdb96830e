"""The dialogue baselines: does attention over the history help a responder, and does a trained
responder beat recalling a training reply?

    python benchmarks/dialogue_baselines.py --budget-minutes 30          # the benchmark
    python benchmarks/dialogue_baselines.py --budget-minutes 0.5 --limit 2000 --eval-limit 100 \\
        --output /tmp/dialogue.json --set embedding_dim=16 ...           # a smoke run

`responder` (Luong attention over the last 3 turns) and `responder_no_attention` (the same
encoder-decoder without attention) are trained one after the other, each in its own process
(`benchmarks/quality.py --one`: `zoo train` with `time_budget_minutes` set to the same
budget; 0 keeps the YAMLs' own, 25 minutes), on the same pairs with the same recipe, and scored
on the test pairs: BLEU, ROUGE-L, distinct-1/2 of their responses (beam search with trigram
blocking, as configs/responder.yaml says) and the perplexity of the reference responses. The
retrieval baseline (`zoo.tasks.dialogue_retrieval.TfidfRetriever`: the training response whose
history is nearest by TF-IDF cosine) is scored on the same pairs (no perplexity: it has no
probabilities). Rows go to `benchmarks/results/dialogue.json`; a table is printed.

Run it on an otherwise idle machine: the budget is wall time, so a busy machine trains fewer
epochs.
"""

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "dialogue.json"
MODELS = ("responder", "responder_no_attention")
METRICS = ("bleu", "rougeL", "distinct1", "distinct2", "perplexity")
MAX_BUDGET_MINUTES = 30.0


def data_overrides(limit, eval_limit):
    """The `--set`s that cap the pairs (the same for every row)."""
    overrides = []
    if limit:
        overrides.append(f"train_limit={limit}")
    if eval_limit:
        overrides.append(f"eval_limit={eval_limit}")
    return overrides


def train_row(model, budget, overrides):
    """`model` trained and scored in a child process (`quality.py --one`): its row."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        row_path = Path(handle.name)
    command = [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--one", model,
               "--row", str(row_path), "--budget-minutes", str(budget)]
    for item in overrides:
        command += ["--set", item]
    print(f"== {model}", flush=True)
    subprocess.run(command, cwd=ROOT, check=True)
    row = json.loads(row_path.read_text())
    row_path.unlink()
    return row


def retrieval_row(overrides):
    """The TF-IDF retrieval baseline on the pairs the responders train and test on."""
    import zoo
    from zoo.config import parse_assignment
    from zoo.tasks import get_task
    from zoo.tasks.dialogue import response_scores
    from zoo.tasks.dialogue_retrieval import TfidfRetriever

    print("== retrieval (TF-IDF nearest history)", flush=True)
    config = zoo.resolve_config("responder", dict(parse_assignment(item) for item in overrides))
    task = get_task("dialogue")
    started = time.monotonic()
    train_histories, train_responses = task.read_split(config, "train")
    test_histories, references = task.read_split(config, "test")
    retriever = TfidfRetriever(train_histories, train_responses)
    responses = retriever.respond(test_histories)
    return {
        "model": "retrieval_tfidf", "task": "dialogue", "dataset": "dialogsum",
        "attention": "none", "test": response_scores(responses, references) | {
            "perplexity": None},
        "train_pairs": len(train_histories), "test_pairs": len(test_histories),
        "seconds": time.monotonic() - started, "overrides": overrides,
        "date": datetime.date.today().isoformat(), "machine": machine_line(),
    }


def table(rows):
    lines = ["| model | " + " | ".join(METRICS) + " | train time | params |",
             "|---|" + "---|" * (len(METRICS) + 2)]
    for row in rows:
        cells = []
        for key in METRICS:
            value = row["test"].get(key)
            cells.append("–" if value is None else f"{value:.2f}")
        minutes = row.get("train_minutes")
        time_cell = "–" if minutes is None else f"{minutes:.1f} min, {row['epochs']} ep"
        parameters = row.get("parameters")
        params_cell = "–" if parameters is None else f"{parameters / 1e6:.1f} M"
        lines.append(f"| {row['model']} | " + " | ".join(cells) + f" | {time_cell} | "
                     f"{params_cell} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=MAX_BUDGET_MINUTES,
                        help="training time of each responder (at most 30; 0: the YAMLs' "
                             "own)")
    parser.add_argument("--limit", type=int, default=None,
                        help="training pairs at most (train_limit; default all)")
    parser.add_argument("--eval-limit", type=int, default=None,
                        help="validation and test pairs at most (eval_limit; default all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="another config key of both responders (a smoke run's sizes)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="the responders to train (comma-separated)")
    parser.add_argument("--no-retrieval", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not 0 <= args.budget_minutes <= MAX_BUDGET_MINUTES:
        parser.error(f"--budget-minutes must be in [0, {MAX_BUDGET_MINUTES:g}]")
    data = data_overrides(args.limit, args.eval_limit)
    rows = [train_row(model, args.budget_minutes, data + args.set)
            for model in args.models.split(",") if model]
    if not args.no_retrieval:
        rows.append(retrieval_row(data))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "budget_minutes": args.budget_minutes, "data": data, "sizes": args.set,
        "rows": rows}, indent=2) + "\n")
    print(table(rows))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
