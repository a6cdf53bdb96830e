"""Task metrics, all on a 0..100 scale.

    from zoo.metrics import accuracy, corpus_bleu, rouge, squad_em_f1

    corpus_bleu(hyps, refs)            # {"bleu": ..., "chrf": ...}
    rouge(hyps, refs)                  # {"rouge1": ..., "rouge2": ..., "rougeL": ...}
    squad_em_f1({qid: text}, questions)  # {"exact_match": ..., "f1": ...}
    accuracy(predictions, labels)      # percent correct
    distinct_scores(responses)         # {"distinct1": ..., "distinct2": ...}

* `corpus_bleu` — corpus sacreBLEU (13a, cased) and chrF via `sacrebleu`;
* `rouge` — ROUGE-1/2/L F1 via `rouge_score` (Porter stemming on), averaged over examples;
* `squad_em_f1` — the official SQuAD v1.1 Exact Match / F1;
* `accuracy` — percent correct;
* `distinct_n` / `distinct_scores` — distinct-1/2 (Li et al. 2016): unique n-grams over all
  n-grams of the generated responses.
"""

from zoo.metrics.accuracy import accuracy
from zoo.metrics.bleu import corpus_bleu
from zoo.metrics.distinct import distinct_n, distinct_scores
from zoo.metrics.rouge import rouge
from zoo.metrics.squad import exact_match_score, f1_score, normalize_answer, squad_em_f1

__all__ = [
    "accuracy",
    "corpus_bleu",
    "distinct_n",
    "distinct_scores",
    "exact_match_score",
    "f1_score",
    "normalize_answer",
    "rouge",
    "squad_em_f1",
]
