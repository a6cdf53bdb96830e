"""distinct-n (Li et al. 2016) on known strings."""

import pytest

from zoo.metrics import distinct_n, distinct_scores


def test_distinct_counts_unique_ngrams_over_all_responses():
    responses = ["I don't know.", "I don't know.", "Sure, see you!"]
    # words: i don't know . | i don't know . | sure , see you !
    assert distinct_n(responses, 1) == pytest.approx(100 * 9 / 13)
    # bigrams: 3 + 3 + 4 = 10, unique 3 + 4 = 7
    assert distinct_n(responses, 2) == pytest.approx(100 * 7 / 10)
    assert distinct_scores(responses) == {"distinct1": pytest.approx(100 * 9 / 13),
                                          "distinct2": pytest.approx(70.0)}


def test_case_and_punctuation_and_short_responses():
    assert distinct_n(["Fine.", "fine"], 1) == pytest.approx(100 * 2 / 3)  # fine . fine
    assert distinct_n(["ok"], 2) == 0.0  # shorter than n: no bigram
    assert distinct_n([], 1) == 0.0
    assert distinct_n(["a b", "b a"], 2) == 100.0  # n-grams never cross responses
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)
    with pytest.raises(TypeError):
        distinct_n([None], 1)
