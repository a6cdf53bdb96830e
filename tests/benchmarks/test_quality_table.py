"""benchmarks/quality.py without training: mean rows over seeds (the mean, the sample std, the
per-seed records and quality_experiments.json), their table cells and note, and `--add-row`
(a row copied from another results file, such as the dialogue benchmark's). The child process
that trains is replaced by a stub: nothing here imports TensorFlow."""

import json
import statistics
import sys

import pytest

from tests.support import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import quality  # benchmarks/ is not a package: imported from its folder

README_TEXT = f"# Zoo\n\n{quality.START}\nold table\n{quality.END}\n\nrest\n"


def run_row(model="sentiment", seed=1, accuracy=82.0, **extra):
    """A row as `quality.py --one` writes it (the fields the table reads)."""
    row = {
        "model": model, "task": "sentiment", "dataset": "sst2", "attention": "structured",
        "headline": "accuracy", "test": {"accuracy": accuracy}, "train_minutes": 12.0,
        "budget_minutes": 15.0, "epochs": 10, "tokens_per_second": 10000.0,
        "parameters": 4656898, "run_id": f"run{seed}", "decoding": "–", "seed": seed,
        "overrides": {"seed": seed}, "date": "2026-12-08",
        "machine": "AMD EPYC, 2 cores, Linux x86_64", "commit": "abc1234",
    }
    return row | extra


def dialogue_row(model="responder", **extra):
    row = {
        "model": model, "task": "dialogue", "dataset": "dialogsum", "attention": "luong_general",
        "headline": "bleu",
        "test": {"bleu": 1.234, "rougeL": 14.56, "distinct1": 3.21, "distinct2": 12.5,
                 "perplexity": 45.6},
        "train_minutes": 25.1, "budget_minutes": 25.0, "epochs": 4, "tokens_per_second": 900.0,
        "parameters": 6100000, "run_id": "dialoguerun", "decoding": "beam 4, lp 1",
        "seed": 0, "overrides": {"time_budget_minutes": 25.0}, "date": "2026-12-08",
        "machine": "AMD EPYC, 2 cores, Linux x86_64", "commit": "def5678",
    }
    return row | extra


@pytest.fixture
def results(tmp_path, monkeypatch):
    """quality.json, quality_experiments.json, quality.md and a README in a temporary folder."""
    folder = tmp_path / "results"
    folder.mkdir()
    monkeypatch.setattr(quality, "QUALITY", folder / "quality.json")
    monkeypatch.setattr(quality, "EXPERIMENTS", folder / "quality_experiments.json")
    monkeypatch.setattr(quality, "README", tmp_path / "README.md")
    (tmp_path / "README.md").write_text(README_TEXT)
    (folder / "quality_experiments.json").write_text(
        json.dumps({"note": "tries", "experiments": [{"model": "qa", "kind": "older"}]}))
    return folder


def test_mean_row_holds_the_mean_the_sample_std_and_a_record_per_seed():
    runs = [run_row(seed=seed, accuracy=accuracy, train_minutes=minutes, epochs=epochs)
            for seed, accuracy, minutes, epochs in
            ((1, 81.9, 11.0, 10), (2, 82.2, 12.0, 9), (3, 82.8, 13.0, 10))]
    row = quality.mean_row(runs, group="sentiment: seeds 1, 2, 3")
    assert row["test"]["accuracy"] == pytest.approx(82.3)
    # Sample standard deviation (n − 1), not the population one.
    deviations = [(a - 82.3) ** 2 for a in (81.9, 82.2, 82.8)]
    assert row["test_std"]["accuracy"] == pytest.approx((sum(deviations) / 2) ** 0.5)
    assert row["test_std"]["accuracy"] != pytest.approx(statistics.pstdev([81.9, 82.2, 82.8]))
    assert row["train_minutes"] == pytest.approx(12.0)
    assert row["mean_over"] == "seeds" and row["group"] == "sentiment: seeds 1, 2, 3"
    assert row["run_id"] is None and row["commit"] == "abc1234"
    assert row["overrides"] == {}  # the seed is per run, not the row's
    assert [record["seed"] for record in row["seeds"]] == [1, 2, 3]
    for record, run in zip(row["seeds"], runs, strict=True):
        assert {"seed", "test", "run_id", "train_minutes", "epochs", "commit"} <= set(record)
        assert record["test"] == run["test"] and record["run_id"] == run["run_id"]
        assert record["epochs"] == run["epochs"]


def test_runs_with_one_seed_make_a_mean_over_runs_not_seeds():
    runs = [run_row(seed=0, accuracy=a, commit=c, overrides={})
            for a, c in ((26.8, "1702b1e"), (26.0, "b075073"), (25.4, "bf8a210"))]
    row = quality.mean_row(runs)
    assert row["mean_over"] == "runs"
    assert row["commit"] == "1702b1e, b075073, bf8a210"
    text = quality.table([row])
    assert "(mean of 3 runs: 26.8, 26.0, 25.4)" in text
    assert "3 runs of the same config with seed 0" in text and "3 seeds" not in text


def test_a_mean_row_needs_two_runs_of_one_model():
    with pytest.raises(ValueError, match="at least 2"):
        quality.mean_row([run_row()])
    with pytest.raises(ValueError, match="share model"):
        quality.mean_row([run_row(), run_row(model="qa", seed=2)])


def test_the_table_shows_mean_plus_minus_std_and_every_seed_never_the_best():
    runs = [run_row(seed=seed, accuracy=a, epochs=e)
            for seed, a, e in ((1, 81.9, 10), (2, 82.2, 8), (3, 82.8, 10))]
    text = quality.table([quality.mean_row(runs)])
    std = statistics.stdev([81.9, 82.2, 82.8])
    assert f"**accuracy % 82.3 ± {std:.1f}** (mean of 3 seeds: 81.9, 82.2, 82.8)" in text
    assert "**accuracy % 82.8" not in text
    assert "12.0 min mean (15), 8–10 ep" in text
    assert "sentiment over 3 seeds (1, 2, 3)" in text
    assert "sample standard deviation (n − 1)" in text


def test_single_rows_keep_their_format():
    """The committed quality.md is what `table` makes of the committed quality.json."""
    rows = json.loads((REPO / "benchmarks" / "results" / "quality.json").read_text())["rows"]
    expected = (REPO / "benchmarks" / "results" / "quality.md").read_text()
    assert quality.table(rows) + "\n" == expected
    single = quality.table([run_row(accuracy=82.68)])
    assert "**accuracy % 82.7** | – | 12.0 min (15), 10 ep |" in single
    assert "Mean rows" not in single


def test_seeds_train_one_child_per_seed_and_write_one_mean_row(results, monkeypatch):
    calls = []

    def fake_child(model, budget, sets):
        calls.append((model, budget, sets))
        seed = int(sets[-1].split("=")[1])
        return run_row(model, seed=seed, accuracy=80.0 + seed, run_id=f"r{seed}")

    monkeypatch.setattr(quality, "run_child", fake_child)
    assert quality.main(["--models", "sentiment", "--seeds", "3", "--budget-minutes", "0",
                         "--set", "epochs=10"]) == 0
    assert calls == [("sentiment", 0.0, ["epochs=10", f"seed={seed}"]) for seed in (1, 2, 3)]
    rows = json.loads(quality.QUALITY.read_text())["rows"]
    assert len(rows) == 1
    row = rows[0]
    assert row["test"]["accuracy"] == pytest.approx(82.0)
    assert row["test_std"]["accuracy"] == pytest.approx(1.0)
    assert [(r["seed"], r["run_id"]) for r in row["seeds"]] == [(1, "r1"), (2, "r2"), (3, "r3")]
    experiments = json.loads(quality.EXPERIMENTS.read_text())
    assert experiments["note"] == "tries" and experiments["experiments"][0]["kind"] == "older"
    repeats = [e for e in experiments["experiments"] if e.get("kind") == "seed_repeat"]
    assert [e["run_id"] for e in repeats] == ["r1", "r2", "r3"]
    assert {e["group"] for e in repeats} == {row["group"]}
    assert "(mean of 3 seeds: 81.0, 82.0, 83.0)" in (results / "quality.md").read_text()
    assert "mean of 3 seeds" in quality.README.read_text()


def test_seed_list_and_a_failed_seed(results, monkeypatch):
    calls = []

    def failing_child(model, budget, sets):
        calls.append(sets[-1])
        return None if sets[-1] == "seed=1" else run_row(seed=int(sets[-1][5:]))

    monkeypatch.setattr(quality, "run_child", failing_child)
    assert quality.main(["--models", "sentiment", "--seed-list", "0,1,2"]) == 1
    assert calls == ["seed=0", "seed=1"]  # stops at the failed run
    assert json.loads(quality.QUALITY.read_text())["rows"] == []  # no mean of fewer seeds
    kept = json.loads(quality.EXPERIMENTS.read_text())["experiments"]
    assert [e["seed"] for e in kept if e.get("kind") == "seed_repeat"] == [0]


@pytest.mark.parametrize("argv", [["--seeds", "1"], ["--seed-list", "2,2"],
                                  ["--seeds", "3", "--set", "seed=4"],
                                  ["--seeds", "3", "--seed-list", "1,2"]])
def test_bad_seed_options_are_refused(results, monkeypatch, argv):
    monkeypatch.setattr(quality, "run_child", lambda *a: pytest.fail("must not train"))
    with pytest.raises(SystemExit):
        quality.main(["--models", "sentiment", *argv])


def test_without_seeds_each_model_trains_once(results, monkeypatch):
    calls = []
    monkeypatch.setattr(quality, "run_child",
                        lambda model, budget, sets: calls.append(sets) or run_row(model))
    assert quality.main(["--models", "sentiment", "--set", "epochs=3"]) == 0
    assert calls == [["epochs=3"]]
    row = json.loads(quality.QUALITY.read_text())["rows"][0]
    assert "seeds" not in row and "test_std" not in row


def test_the_child_command_passes_the_seed(tmp_path):
    command = quality.child_command("sentiment", 0.0, ["seed=2"], tmp_path / "row.json")
    assert command[1:] == [quality.__file__, "--one", "sentiment", "--row",
                           str(tmp_path / "row.json"), "--budget-minutes", "0.0",
                           "--set", "seed=2"]


def test_add_row_copies_a_row_from_another_results_file(results, tmp_path):
    quality.QUALITY.write_text(json.dumps({"rows": [run_row(seed=0)]}))
    source = tmp_path / "dialogue.json"
    retrieval = {"model": "retrieval_tfidf", "task": "dialogue", "dataset": "dialogsum",
                 "test": {"bleu": 0.8, "perplexity": None}}
    source.write_text(json.dumps({"budget_minutes": 25.0, "rows": [
        dialogue_row(), dialogue_row("responder_no_attention"), retrieval]}))
    assert quality.main(["--add-row", str(source), "--models", "responder"]) == 0
    rows = {row["model"]: row for row in json.loads(quality.QUALITY.read_text())["rows"]}
    assert set(rows) == {"sentiment", "responder"}
    assert rows["responder"]["test"] == dialogue_row()["test"]
    assert rows["responder"]["copied_from"] == str(source.resolve())
    text = (results / "quality.md").read_text()
    assert ("| responder | dialogsum | **BLEU 1.23** / ROUGE-L 14.56 / distinct-1 3.21 / "
            "distinct-2 12.50 / perplexity 45.60 | beam 4, lp 1 | 25.1 min (25), 4 ep |") in text
    assert "| responder | dialogsum" in quality.README.read_text()
    # Added again (a newer run): the row is replaced, not duplicated.
    source.write_text(json.dumps({"rows": [dialogue_row(test={"bleu": 2.0})]}))
    quality.main(["--add-row", str(source), "--models", "responder"])
    rows = json.loads(quality.QUALITY.read_text())["rows"]
    assert [row["test"] for row in rows if row["model"] == "responder"] == [{"bleu": 2.0}]


@pytest.mark.parametrize(("rows", "models", "message"), [
    ([dialogue_row()], "responder_no_attention", "no row of 'responder_no_attention'"),
    ([{"model": "retrieval_tfidf", "test": {}}], "retrieval_tfidf", "not a quality.py row"),
    ([dialogue_row(overrides={"train_limit": 2000})], "responder", "smoke run"),
])
def test_add_row_refuses_what_is_not_a_table_row(results, tmp_path, rows, models, message):
    source = tmp_path / "dialogue.json"
    source.write_text(json.dumps({"rows": rows}))
    with pytest.raises(SystemExit, match=message):
        quality.main(["--add-row", str(source), "--models", models])
    assert not quality.QUALITY.exists()


def test_add_row_needs_models(results, tmp_path):
    with pytest.raises(SystemExit):
        quality.main(["--add-row", str(tmp_path / "dialogue.json")])
