"""SQuAD v1.1 (extractive QA) reader.

Files (under `$ZOO_DATA_DIR/qa/`, see its `SOURCE.md`): UTF-8 JSON Lines, ONE PARAGRAPH PER
LINE:

    {"title": str, "context": str,
     "qas": [{"id": str, "question": str,
              "answers": [{"text": str, "answer_start": int}, ...]}, ...]}

| split | file | paragraphs | questions |
|---|---|---|---|
| `train` | `train.jsonl` | 4,247 | 20,018 (1 answer each) |
| `train_extra` | `train_extra.jsonl` | 14,229 | 65,815 (1 answer each) |
| `test` | `test.jsonl` (= official dev v1.1, official ids) | 2,067 | 10,570 (1-6 answers) |

The reader flattens paragraphs into questions:

    {"id": str, "title": str, "question": str, "context": str,
     "answers": [{"text": str, "answer_start": int}, ...]}

(questions of one paragraph share the same `context` string object). Every answer is checked
to be the span `context[answer_start : answer_start + len(text)]`; ids must be unique per file.
Score predictions with `zoo.metrics.squad_em_f1`.
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo.data.errors import DataError
from zoo.data.lines import check_limit, iter_jsonl, require_keys, require_text
from zoo.data.paths import split_file

__all__ = ["SPLITS", "load_squad", "read_squad"]

SPLITS = {"train": "train.jsonl", "train_extra": "train_extra.jsonl", "test": "test.jsonl"}

_PARAGRAPH_KEYS = ("title", "context", "qas")
_QUESTION_KEYS = ("id", "question", "answers")
_ANSWER_KEYS = ("text", "answer_start")


def _preview(text: str, width: int = 60) -> str:
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def read_squad(path: str | os.PathLike[str], limit: int | None = None) -> list[dict]:
    """Read a SQuAD JSONL file (one paragraph per line) as a flat list of questions.

    Args:
        path: the JSONL file.
        limit: return at most this many questions (the first ones; reading stops there).

    Raises:
        DataError: bad JSON, missing/unexpected keys, wrong types, empty text, no answers, an
            `answer_start` whose span is not the answer text, or a duplicate question id.
    """
    limit = check_limit(limit)
    path = Path(path)
    questions: list[dict] = []
    if limit == 0:
        return questions
    seen: dict[str, int] = {}
    for number, par in iter_jsonl(path):
        require_keys(path, number, par, _PARAGRAPH_KEYS, "paragraph")
        title = require_text(path, number, par["title"], "title")
        context = require_text(path, number, par["context"], "context")
        qas = par["qas"]
        if not isinstance(qas, list) or not qas:
            raise DataError(path, number, "'qas' must be a non-empty list of questions")
        for qi, qa in enumerate(qas):
            where = f"qas[{qi}]"
            if not isinstance(qa, dict):
                raise DataError(path, number, f"{where} must be an object")
            require_keys(path, number, qa, _QUESTION_KEYS, where)
            qid = require_text(path, number, qa["id"], f"{where}.id")
            where = f"question {qid!r}"
            if qid in seen:
                raise DataError(path, number, f"duplicate {where} (first on line {seen[qid]})")
            seen[qid] = number
            question = require_text(path, number, qa["question"], f"{where} text")
            answers = qa["answers"]
            if not isinstance(answers, list) or not answers:
                raise DataError(path, number, f"{where}: 'answers' must be a non-empty list")
            checked = []
            for ai, ans in enumerate(answers):
                awhere = f"{where} answers[{ai}]"
                if not isinstance(ans, dict):
                    raise DataError(path, number, f"{awhere} must be an object")
                require_keys(path, number, ans, _ANSWER_KEYS, awhere)
                text = require_text(path, number, ans["text"], f"{awhere}.text")
                start = ans["answer_start"]
                if isinstance(start, bool) or not isinstance(start, int):
                    raise DataError(
                        path, number, f"{awhere}.answer_start must be an int, got {start!r}"
                    )
                span = context[start : start + len(text)] if start >= 0 else ""
                if span != text:
                    raise DataError(
                        path,
                        number,
                        f"{awhere}: answer_start={start} does not match the context: expected "
                        f"{_preview(text)}, context has {_preview(span)} there",
                    )
                checked.append({"text": text, "answer_start": start})
            questions.append(
                {
                    "id": qid,
                    "title": title,
                    "question": question,
                    "context": context,
                    "answers": checked,
                }
            )
            if limit is not None and len(questions) >= limit:
                return questions
    return questions


def load_squad(split: str = "train", limit: int | None = None) -> list[dict]:
    """Load a SQuAD split (`"train"`, `"train_extra"` or `"test"`) from `$ZOO_DATA_DIR/qa/`.

    `"test"` is the official v1.1 dev set (10,570 questions with the official ids).
    """
    return read_squad(split_file("SQuAD", "qa", SPLITS, split), limit=limit)
