"""Reading and writing zoo runs: metrics logged once per (key, step), and the comparison table of
`zoo runs compare`."""

import statistics
import time

import mlflow
from mlflow.entities import Metric


class MetricLog:
    """Logs metrics to one run at most once per (key, step).

    A resumed training replays what its checkpoint knows; whatever MLflow already holds is
    skipped, so no step of a metric is lost or written twice.
    """

    def __init__(self, run_id, client=None, logged=None):
        self.run_id = run_id
        self.client = client or mlflow.MlflowClient()
        self.logged = {key: set(steps) for key, steps in (logged or {}).items()}

    @classmethod
    def for_run(cls, run_id, client=None):
        """A log that knows every (key, step) the run already has."""
        client = client or mlflow.MlflowClient()
        logged = {}
        for key in client.get_run(run_id).data.metrics:
            logged[key] = {m.step for m in client.get_metric_history(run_id, key)}
        return cls(run_id, client, logged)

    def has(self, key, step=0):
        return step in self.logged.get(key, ())

    def log(self, metrics, step=0, timestamp_ms=None):
        """Log the `metrics` not yet logged at `step`; return those it logged."""
        fresh = {key: float(value) for key, value in metrics.items() if not self.has(key, step)}
        if not fresh:
            return {}
        timestamp = int(timestamp_ms if timestamp_ms is not None else time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            Metric(key, value, timestamp, step) for key, value in fresh.items()])
        for key in fresh:
            self.logged.setdefault(key, set()).add(step)
        return fresh


COLUMNS = ("run", "model", "attention", "status", "epochs", "BLEU", "chrF", "wall time",
           "tokens/s", "started")
SORT_KEYS = {"bleu": "BLEU", "time": "wall time", "tokens": "tokens/s", "started": "started"}


def compare_runs(experiment, max_runs=100, client=None):
    """One row (dict over `COLUMNS`, numbers unformatted) per run of `experiment`, newest first.

    BLEU/chrF are the test scores (the best epoch's validation scores for a run that has no test
    score yet), wall time is `train_seconds` (the run's duration while it has none), tokens/s
    the median over epochs of target tokens per second.
    """
    client = client or mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"no experiment {experiment!r} in {mlflow.get_tracking_uri()}; "
                         f"experiments: {', '.join(names) or '(none)'}")
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"],
                              max_results=max_runs)
    return [_row(client, run) for run in runs]


def _row(client, run):
    metrics, tags, info = run.data.metrics, run.data.tags, run.info
    bleu, chrf = metrics.get("test_bleu"), metrics.get("test_chrf")
    if bleu is None and "val_bleu" in metrics:
        history = client.get_metric_history(info.run_id, "val_bleu")
        bleu = max(m.value for m in history) if history else None
        chrf = metrics.get("val_chrf")
    wall = metrics.get("train_seconds")
    if wall is None and info.start_time:
        end = info.end_time or int(time.time() * 1000)
        wall = (end - info.start_time) / 1000.0
    throughput = [m.value for m in client.get_metric_history(info.run_id,
                                                              "target_tokens_per_second")]
    epochs = len({m.step for m in client.get_metric_history(info.run_id, "loss")})
    return {
        "run": info.run_name or info.run_id[:8], "run_id": info.run_id,
        "model": tags.get("zoo.model", ""), "attention": tags.get("zoo.attention", ""),
        "status": info.status, "epochs": epochs, "BLEU": bleu, "chrF": chrf, "wall time": wall,
        "tokens/s": statistics.median(throughput) if throughput else None,
        "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(info.start_time / 1000))
        if info.start_time else "",
    }


def sort_rows(rows, key):
    """Sort by a `SORT_KEYS` name; numbers descending (missing last), `started` newest first."""
    column = SORT_KEYS[key]
    present = [row for row in rows if row[column] is not None]
    missing = [row for row in rows if row[column] is None]
    reverse = column != "wall time"
    return sorted(present, key=lambda row: row[column], reverse=reverse) + missing


def _format(column, value):
    if value is None or value == "":
        return "-"
    if column in ("BLEU", "chrF"):
        return f"{value:.2f}"
    if column == "wall time":
        minutes, seconds = divmod(round(value), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
    if column == "tokens/s":
        return f"{value:,.0f}"
    return str(value)


def format_table(rows, columns=COLUMNS):
    """A plain-text table (numbers right-aligned)."""
    cells = [[_format(column, row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells])
              for i, column in enumerate(columns)]
    numeric = {"epochs", "BLEU", "chrF", "wall time", "tokens/s"}

    def line(values):
        triples = zip(columns, values, widths, strict=True)
        return "  ".join(value.rjust(width) if column in numeric else value.ljust(width)
                         for column, value, width in triples).rstrip()

    return "\n".join([line(columns), line(["-" * width for width in widths])]
                     + [line(values) for values in cells])
