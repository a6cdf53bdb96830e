"""Metrics: sanity values, known cases, and the official SQuAD EM/F1 of the reference files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sacrebleu

from tests.support import REPO
from zoo.metrics import (
    accuracy,
    corpus_bleu,
    exact_match_score,
    f1_score,
    normalize_answer,
    rouge,
    squad_em_f1,
)

SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

# Published EM / F1 of the official leaderboard prediction files on SQuAD v1.1 dev
# ($ZOO_DATA_DIR/qa/SOURCE.md; SQuAD paper 40.0/51.0 and Wang & Jiang 67.6/76.8 round these).
REFERENCE_EM_F1 = {
    "logistic_regression_baseline.dev.json": (40.14, 50.98),
    "match_lstm_boundary_ensemble.dev.json": (67.63, 76.76),
}


# --------------------------------------------------------------------------- BLEU / chrF


def test_bleu_identical_is_100():
    sents = ["A man is riding a bicycle down the street.", "Zwei Hunde spielen im Schnee."]
    scores = corpus_bleu(sents, sents)
    assert set(scores) == {"bleu", "chrf"}
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)


def test_bleu_matches_sacrebleu_defaults_and_is_cased():
    hyps = ["the cat sat on the mat .", "A dog runs in the park"]
    refs = ["The cat sat on the mat.", "A dog is running in the park."]
    scores = corpus_bleu(hyps, refs)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert 0 < scores["bleu"] < 100
    lowered = corpus_bleu([h.lower() for h in hyps], [r.lower() for r in refs])
    assert lowered["bleu"] > scores["bleu"]  # case matters


def test_bleu_multi_reference_variable_count():
    hyps = ["the cat sat on the mat", "a dog runs"]
    refs = [["a cat sat on a mat", "the cat sat on the mat"], ["a dog is running"]]
    expected = sacrebleu.corpus_bleu(hyps, [[refs[0][0], refs[1][0]], [refs[0][1], None]]).score
    assert corpus_bleu(hyps, refs)["bleu"] == pytest.approx(expected)


def test_bleu_input_errors():
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no hypotheses"):
        corpus_bleu([], [])


# --------------------------------------------------------------------------- ROUGE


def test_rouge_identical_is_100():
    texts = ["Meeting moved to Friday", "Person1 asks Person2 about the new policy."]
    assert rouge(texts, texts) == pytest.approx({"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0})


def test_rouge_known_values_and_stemming():
    # unigram P = 3/3, R = 3/6 -> F1 = 2/3; bigram P = 2/2, R = 2/5 -> F1 = 4/7
    scores = rouge(["the cat sat"], ["the cat sat on the mat"])
    assert scores["rouge1"] == pytest.approx(200 / 3)
    assert scores["rouge2"] == pytest.approx(400 / 7)
    assert scores["rougeL"] == pytest.approx(200 / 3)
    assert rouge(["cats running"], ["cat runs"])["rouge1"] == pytest.approx(100.0)  # stemmer on


def test_rouge_averages_and_multi_reference():
    scores = rouge(["a b", "x y"], ["a b", "q r"])
    assert scores["rouge1"] == pytest.approx(50.0)
    multi = rouge(["a b"], [["q r", "a b"]])
    assert multi["rouge1"] == pytest.approx(100.0)
    with pytest.raises(ValueError):
        rouge(["a"], ["a", "b"])


# --------------------------------------------------------------------------- accuracy


def test_accuracy():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == pytest.approx(50.0)
    assert accuracy((0, 1), (0, 1)) == 100.0
    with pytest.raises(ValueError):
        accuracy([1], [1, 0])
    with pytest.raises(ValueError):
        accuracy([], [])


# --------------------------------------------------------------------------- SQuAD


def test_squad_normalization_official():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("theater") == "theater"  # articles only as whole words
    assert exact_match_score("the Denver Broncos", "Denver Broncos.") == 1.0
    assert f1_score("Denver Broncos", "the Denver Broncos won") == pytest.approx(0.8)
    assert f1_score("", "x") == 0.0
    assert f1_score("the", "a") == 0.0  # both normalise to nothing: 0, as in v1.1


def test_squad_max_over_ground_truths_and_missing():
    questions = [
        {"id": "a", "answers": [{"text": "Paris"}, {"text": "in Paris, France"}]},
        {"id": "b", "answers": ["42"]},
    ]
    scores = squad_em_f1({"a": "Paris France", "zzz": "ignored"}, questions)
    # a: EM 0, F1 max(2/3, 0.8) = 0.8; b unanswered counts as 0
    assert scores == pytest.approx({"exact_match": 0.0, "f1": 40.0})


@pytest.fixture
def squad_dev(monkeypatch):
    root = Path(os.environ.get("ZOO_DATA_DIR") or SHARED_DATA)
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set ZOO_DATA_DIR)")
    monkeypatch.setenv("ZOO_DATA_DIR", str(root))
    from zoo.data.squad import load_squad

    return root, load_squad("test")


def test_every_reference_prediction_file_is_checked(squad_dev):
    root, _ = squad_dev
    files = sorted(p.name for p in (root / "qa" / "reference_predictions").glob("*.json"))
    assert files == sorted(REFERENCE_EM_F1)


@pytest.mark.parametrize("name", sorted(REFERENCE_EM_F1))
def test_squad_reproduces_published_scores(squad_dev, name):
    root, questions = squad_dev
    predictions = json.loads((root / "qa" / "reference_predictions" / name).read_text("utf-8"))
    scores = squad_em_f1(predictions, questions)
    em, f1 = REFERENCE_EM_F1[name]
    assert scores["exact_match"] == pytest.approx(em, abs=0.1)
    assert scores["f1"] == pytest.approx(f1, abs=0.1)
