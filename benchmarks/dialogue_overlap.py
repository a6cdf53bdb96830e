"""How much of the TF-IDF retrieval baseline's BLEU is recall of dialogues seen in training.

    python benchmarks/dialogue_overlap.py

DialogSum's test dialogues overlap its training dialogues (its sources, DailyDialog, DREAM and
MuTual, repeat conversations). The test pairs of `configs/responder.yaml` are split by the
cosine of their nearest training history (`zoo.tasks.dialogue_retrieval.TfidfRetriever`, the
baseline itself) and the baseline's corpus BLEU is scored per band, with two reference points:
echoing the history's last turn, and the most frequent training response for every pair.
Writes `benchmarks/results/dialogue_overlap.json`.
"""

import collections
import datetime
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line

RESULTS = Path(__file__).resolve().parent / "results" / "dialogue_overlap.json"
BANDS = ((0.9, 1.01), (0.7, 0.9), (0.5, 0.7), (0.0, 0.5))


def main():
    import zoo
    from zoo.metrics import corpus_bleu
    from zoo.tasks import get_task
    from zoo.tasks.dialogue import response_scores
    from zoo.tasks.dialogue_retrieval import TfidfRetriever

    config = zoo.resolve_config("responder")
    task = get_task("dialogue")
    train_histories, train_responses = task.read_split(config, "train")
    histories, references = task.read_split(config, "test")
    indices, cosines = TfidfRetriever(train_histories, train_responses).nearest(histories)
    retrieved = [train_responses[i] for i in indices]

    def band(low, high):
        chosen = [k for k, cosine in enumerate(cosines) if low <= cosine < high]
        return {"cosine": [low, min(high, 1.0)], "pairs": len(chosen),
                "bleu": corpus_bleu([retrieved[k] for k in chosen],
                                    [references[k] for k in chosen])["bleu"] if chosen else None,
                "retrieved_equals_reference": sum(retrieved[k] == references[k] for k in chosen)}

    below = [k for k, cosine in enumerate(cosines) if cosine < BANDS[0][0]]
    last_turns = [history.split("\n")[-1].split(":", 1)[-1].strip() for history in histories]
    most_common = collections.Counter(train_responses).most_common(1)[0][0]
    train_set_histories, train_set_responses = set(train_histories), set(train_responses)
    record = {
        "benchmark": "dialogue_overlap", "date": datetime.date.today().isoformat(),
        "machine": machine_line(), "train_pairs": len(train_histories),
        "test_pairs": len(histories),
        "test_histories_in_train": sum(h in train_set_histories for h in histories),
        "test_responses_in_train": sum(r in train_set_responses for r in references),
        "retrieval_bleu": corpus_bleu(retrieved, references)["bleu"],
        "bands": [band(low, high) for low, high in BANDS],
        f"retrieval_bleu_below_{BANDS[0][0]}": corpus_bleu(
            [retrieved[k] for k in below], [references[k] for k in below])["bleu"],
        "echo_last_turn": response_scores(last_turns, references),
        "most_common_response": {"response": most_common} | response_scores(
            [most_common] * len(references), references),
    }
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
