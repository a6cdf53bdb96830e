"""The dialogue task's retrieval baseline: answer with the training response whose history is
nearest to the given one by TF-IDF cosine (scikit-learn's `TfidfVectorizer`).

It learns nothing but the index, so it shows what a trained responder adds beyond recalling a
fitting reply from the training conversations (`benchmarks/dialogue_baselines.py`).

Example:

```python
retriever = TfidfRetriever(train_histories, train_responses)
retriever.respond(["#Person1#: Hi, how can I help you?"])
```
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

_SPEAKER_TAG = re.compile(r"#person\w+#:", re.IGNORECASE)


def _without_tags(text: str) -> str:
    """Lower-cased text without the speaker tags (in every history: no evidence)."""
    return _SPEAKER_TAG.sub(" ", text).lower()


class TfidfRetriever:
    """Nearest-history retrieval.

    Args:
        histories: the training histories (the index).
        responses: the response of each history.
        ngram_range: word n-grams of the TF-IDF vectors (unigrams and bigrams by default).
        batch_size: queries scored at once (each against the whole index, densely).

    The vectors are l2-normalised, sublinear-TF (1 + log tf) TF-IDF of words (scikit-learn's
    default token pattern: runs of 2+ word characters), speaker tags removed; the cosine is
    their dot product. Ties go to the first training pair.
    """

    def __init__(self, histories: Sequence[str], responses: Sequence[str],
                 ngram_range: tuple[int, int] = (1, 2), batch_size: int = 256):
        if len(histories) != len(responses):
            raise ValueError(f"{len(histories)} histories but {len(responses)} responses")
        if not histories:
            raise ValueError("no training pairs to retrieve from")
        self.responses = list(responses)
        self.batch_size = batch_size
        self.vectorizer = TfidfVectorizer(preprocessor=_without_tags, sublinear_tf=True,
                                          ngram_range=ngram_range)
        self.index = self.vectorizer.fit_transform(list(histories))

    def nearest(self, histories: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`(indices, cosines)`: the nearest training history of each query."""
        indices, cosines = [], []
        for start in range(0, len(histories), self.batch_size):
            queries = self.vectorizer.transform(list(histories[start:start + self.batch_size]))
            similarity = (queries @ self.index.T).toarray()
            best = similarity.argmax(axis=1)
            indices.append(best)
            cosines.append(similarity[np.arange(len(best)), best])
        if not indices:
            return np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(indices), np.concatenate(cosines)

    def respond(self, histories: Sequence[str]) -> list[str]:
        """The training response of each query's nearest history."""
        indices, _ = self.nearest(histories)
        return [self.responses[i] for i in indices]
