"""Unlabeled English text of the corpora in `$ZOO_DATA_DIR`, for learning word vectors.

Only training files are read (never a test split): SQuAD's Wikipedia paragraphs, AESLC's
e-mails and subject lines, DialogSum's dialogues and summaries, Multi30k's English captions.
"""

from zoo.data.aeslc import load_aeslc
from zoo.data.dialogsum import load_dialogsum
from zoo.data.multi30k import read_multi30k
from zoo.data.squad import load_squad


def _squad():
    contexts = {}
    for split in ("train", "train_extra"):
        for question in load_squad(split):
            contexts.setdefault(question["context"], None)
    return list(contexts)


def _aeslc():
    return [text for e in load_aeslc("train") for text in (e["source"], e["target"])]


def _dialogsum():
    return [text for e in load_dialogsum("train") for text in (e["dialogue"], e["summary"])]


def _multi30k():
    return read_multi30k("train", "de", "en")[1]


CORPORA = {"qa": _squad, "summarization": _aeslc, "dialogsum": _dialogsum, "mt": _multi30k}


def unlabeled_english(corpora, limit=None):
    """The English training texts of `corpora` (names from `CORPORA`), in that order; at most
    `limit` texts of each (None: all)."""
    unknown = sorted(set(corpora) - set(CORPORA))
    if unknown:
        raise ValueError(f"unknown corpora {unknown}; choose from {sorted(CORPORA)}")
    return [text for name in corpora for text in CORPORA[name]()[:limit]]
