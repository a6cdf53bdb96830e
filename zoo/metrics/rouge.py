"""ROUGE-1 / ROUGE-2 / ROUGE-L F1 with Google's `rouge_score` package (v0.1.2).

Settings (document them next to any reported number):

* `RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)` — Porter stemming ON, as in
  the PEGASUS paper/README and the Hugging Face `rouge` metric (the sources of the published
  AESLC and DialogSum numbers in `$ZOO_DATA_DIR`);
* the package's default tokeniser: lower-cases and keeps only `[a-z0-9]` tokens (other
  characters act as separators, so non-ASCII letters are dropped — fine for these English sets);
* `rougeL` is sentence-level LCS over the whole text (not the newline-split `rougeLsum`);
* per-example F-measure, AVERAGED over examples (no bootstrap aggregation), times 100;
* with several references for one example, each ROUGE type takes the reference with the best
  F-measure (`RougeScorer.score_multi`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rouge_score import rouge_scorer

__all__ = ["ROUGE_TYPES", "rouge"]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

_SCORER = None


def _scorer() -> rouge_scorer.RougeScorer:
    global _SCORER
    if _SCORER is None:
        _SCORER = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return _SCORER


def rouge(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> dict[str, float]:
    """Average ROUGE-1/2/L F1 (0..100) of `hyps` against `refs`.

    Args:
        hyps: one generated summary per example.
        refs: one reference string per example, or a non-empty sequence of reference strings
            per example (best-matching reference per ROUGE type).

    Returns:
        `{"rouge1": float, "rouge2": float, "rougeL": float}`.
    """
    hyps = list(hyps)
    if not hyps:
        raise ValueError("no hypotheses to score")
    if len(refs) != len(hyps):
        raise ValueError(f"got {len(hyps)} hypotheses but {len(refs)} references")
    scorer = _scorer()
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for i, (hyp, ref) in enumerate(zip(hyps, refs, strict=True)):
        if not isinstance(hyp, str):
            raise TypeError(f"hypotheses[{i}] must be a string, got {type(hyp).__name__}")
        if isinstance(ref, str):
            scores = scorer.score(ref, hyp)
        else:
            ref = list(ref)
            if not ref or not all(isinstance(r, str) for r in ref):
                raise TypeError(
                    f"references[{i}] must be a string or a non-empty sequence of strings"
                )
            scores = scorer.score_multi(ref, hyp)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    return {key: 100.0 * totals[key] / len(hyps) for key in ROUGE_TYPES}
