"""SQuAD v1.1 Exact Match and F1, exactly as the official `evaluate-v1.1.py`.

Definition (Rajpurkar et al., 2016; official script of the SQuAD-explorer repository):

* `normalize_answer`: lower-case, drop every ASCII punctuation character
  (`string.punctuation`), replace the articles `a|an|the` (whole words) by a space, and
  collapse whitespace;
* EM of one prediction = 1 if its normalised text equals that of a ground truth;
  F1 = bag-of-tokens F1 between the normalised, whitespace-split texts (0 if no token overlaps);
* each question takes the MAX over its ground-truth answers; scores are averaged over ALL
  questions of the dataset and multiplied by 100. A question without a prediction scores 0
  (and still counts in the denominator); predictions for unknown ids are ignored.

This reproduces the published dev-set numbers of the official leaderboard prediction files in
`$ZOO_DATA_DIR/qa/reference_predictions/` (see `tests/zoo/metrics/test_metrics.py`).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping

__all__ = ["exact_match_score", "f1_score", "normalize_answer", "squad_em_f1"]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-overlap F1 (0..1) between one prediction and one ground truth."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    """1.0 if the normalised texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def _ground_truths(question: Mapping) -> list[str]:
    answers = question["answers"]
    texts = [a["text"] if isinstance(a, Mapping) else a for a in answers]
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError(
            f"question {question.get('id')!r}: 'answers' must be a non-empty list of "
            "{'text': str, ...} dicts or strings"
        )
    return texts


def squad_em_f1(predictions: Mapping[str, str], questions: Iterable[Mapping]) -> dict[str, float]:
    """Official SQuAD v1.1 EM / F1 (both 0..100) of `predictions` over `questions`.

    Args:
        predictions: `{question_id: answer_text}` (the official prediction-file format).
        questions: the dataset as flat questions, each a mapping with `"id"` and `"answers"`
            (a list of `{"text": ...}` dicts, as returned by `zoo.data.squad.load_squad`,
            or of plain strings).

    Returns:
        `{"exact_match": float, "f1": float}`. Unanswered questions score 0 but count.

    Raises:
        ValueError: no questions, or a question without ground-truth answers.
        TypeError: a prediction that is not a string.
    """
    exact_match = f1 = 0.0
    total = 0
    for question in questions:
        total += 1
        ground_truths = _ground_truths(question)
        qid = question["id"]
        if qid not in predictions:
            continue  # the official script prints "Unanswered question ... will receive score 0."
        prediction = predictions[qid]
        if not isinstance(prediction, str):
            raise TypeError(
                f"prediction for {qid!r} must be a string, got {type(prediction).__name__}"
            )
        exact_match += max(exact_match_score(prediction, gt) for gt in ground_truths)
        f1 += max(f1_score(prediction, gt) for gt in ground_truths)
    if total == 0:
        raise ValueError("no questions to score")
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}
