"""Corpus BLEU and chrF with the `sacrebleu` library (the standard, comparable settings).

* BLEU: sacreBLEU defaults — `13a` tokenisation, CASED (`lowercase=False`), exponential
  smoothing, computed on detokenised (raw) text at the corpus level. This is the setting of the
  published Multi30k numbers in `$ZOO_DATA_DIR/mt/SOURCE.md` (e.g. en->de 36.3).
* chrF: sacreBLEU `CHRF()` defaults (chrF2: character 6-grams, beta=2, no word n-grams).

Both are returned on sacreBLEU's 0..100 scale. Pass the detokenised hypotheses and references;
do not pre-tokenise or lower-case them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF

__all__ = ["corpus_bleu"]


def _reference_streams(
    refs: Sequence[str] | Sequence[Sequence[str]], n: int
) -> list[list[str | None]]:
    """Turn per-hypothesis references into sacrebleu's list of reference *streams*."""
    if len(refs) != n:
        raise ValueError(f"got {n} hypotheses but {len(refs)} references")
    if all(isinstance(r, str) for r in refs):
        return [list(refs)]
    per_hyp: list[list[str]] = []
    for i, r in enumerate(refs):
        if isinstance(r, str) or not r or not all(isinstance(x, str) for x in r):
            raise TypeError(
                f"references[{i}]: give either one string per hypothesis or a non-empty "
                "sequence of strings per hypothesis (multi-reference), not a mix"
            )
        per_hyp.append(list(r))
    width = max(len(r) for r in per_hyp)
    # sacrebleu accepts None for a missing reference (variable number of references per segment).
    return [[r[k] if k < len(r) else None for r in per_hyp] for k in range(width)]


def _check_hyps(hyps: Sequence[str]) -> list[str]:
    hyps = list(hyps)
    if not hyps:
        raise ValueError("no hypotheses to score")
    for i, h in enumerate(hyps):
        if not isinstance(h, str):
            raise TypeError(f"hypotheses[{i}] must be a string, got {type(h).__name__}")
    return hyps


def corpus_bleu(
    hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]
) -> dict[str, float]:
    """Corpus-level sacreBLEU (13a, cased) and chrF of `hyps` against `refs`.

    Args:
        hyps: one detokenised hypothesis string per segment.
        refs: one reference string per segment, or one non-empty sequence of reference strings
            per segment (multi-reference; the counts may differ between segments).

    Returns:
        `{"bleu": float, "chrf": float}` on a 0..100 scale.
    """
    hyps = _check_hyps(hyps)
    streams = _reference_streams(refs, len(hyps))
    bleu = BLEU(tokenize="13a", lowercase=False).corpus_score(hyps, streams)
    chrf = CHRF().corpus_score(hyps, streams)
    return {"bleu": float(bleu.score), "chrf": float(chrf.score)}
