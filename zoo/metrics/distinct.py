"""distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
Conversation Models"): the distinct n-grams over all generated responses, divided by the total
number of n-grams in them, times 100.

Tokens are whitespace-separated words, lower-cased, with the punctuation split off (`"Hi,
Tom!"` → `hi , tom !`), so that "fine." and "fine" count as one word; n-grams never cross
responses. A response shorter than `n` adds no n-gram; no n-gram at all scores 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["distinct_n", "distinct_scores"]

_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def distinct_n(responses: Sequence[str], n: int) -> float:
    """distinct-`n` (0..100) of `responses`: unique n-grams / all n-grams, over them all."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    total, unique = 0, set()
    for index, response in enumerate(responses):
        if not isinstance(response, str):
            raise TypeError(f"responses[{index}] must be a string, got "
                            f"{type(response).__name__}")
        tokens = _tokens(response)
        grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return 100.0 * len(unique) / total if total else 0.0


def distinct_scores(responses: Sequence[str]) -> dict[str, float]:
    """`{"distinct1": ..., "distinct2": ...}` of `responses`."""
    return {"distinct1": distinct_n(responses, 1), "distinct2": distinct_n(responses, 2)}
