"""Dataset readers: real-data counts (SOURCE.md) and line-numbered errors on bad files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.support import REPO
from zoo.data.aeslc import load_aeslc, read_aeslc
from zoo.data.dialogsum import load_dialogsum, read_dialogsum
from zoo.data.errors import DataDirError, DataError
from zoo.data.paths import data_dir
from zoo.data.squad import load_squad, read_squad
from zoo.data.sst2 import load_sst2, read_sst2

SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture
def real_data(monkeypatch):
    """Point ZOO_DATA_DIR at the shared data (unless already set), skip if it is absent."""
    import os

    root = Path(os.environ.get("ZOO_DATA_DIR") or SHARED_DATA)
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root} (set ZOO_DATA_DIR)")
    monkeypatch.setenv("ZOO_DATA_DIR", str(root))
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_data_error(excinfo, path: Path, line: int, *fragments: str) -> None:
    err = excinfo.value
    message = str(err)
    assert message.startswith(f"{path}:{line}: "), message
    assert err.path == path and err.line == line
    for fragment in fragments:
        assert fragment in message, message


# --------------------------------------------------------------------------- data_dir / errors


def test_data_dir_unset(monkeypatch):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    with pytest.raises(DataDirError) as excinfo:
        data_dir()
    assert "ZOO_DATA_DIR" in str(excinfo.value)
    assert "../shared/data" in str(excinfo.value)


def test_data_dir_missing_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(DataDirError, match="ZOO_DATA_DIR"):
        data_dir()


def test_missing_split_file(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    with pytest.raises(DataDirError, match="sentiment"):
        load_sst2("train")


def test_unknown_split_and_bad_limit(real_data):
    with pytest.raises(ValueError, match="split"):
        load_sst2("dev")
    with pytest.raises(ValueError, match="limit"):
        load_sst2("test", limit=-1)


def test_data_error_is_value_error_and_picklable(tmp_path):
    err = DataError(tmp_path / "x.tsv", 3, "boom")
    assert isinstance(err, ValueError)
    assert str(err) == f"{tmp_path / 'x.tsv'}:3: boom"
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.line, again.reason) == (str(err), 3, "boom")


# --------------------------------------------------------------------------- real data


def test_sst2_real(real_data):
    test = load_sst2("test")
    assert len(test) == 872
    assert sum(ex["label"] for ex in test) == 444  # 428 negative, 444 positive
    assert test[0] == {"sentence": "it 's a charming and often affecting journey .", "label": 1}
    train = load_sst2("train")
    assert len(train) == 67349
    assert sum(ex["label"] == 0 for ex in train) == 29780
    assert len(load_sst2("train", limit=5)) == 5


def test_squad_real(real_data):
    test = load_squad("test")
    assert len(test) == 10570
    assert len({q["context"] for q in test}) == 2067
    assert sum(len(q["answers"]) for q in test) == 34726
    first = test[0]
    assert first["id"] == "5725b33f6a3fe71400b8952d"
    assert first["answers"][0] == {"text": "October 1973", "answer_start": 29}
    assert set(first) == {"id", "title", "question", "context", "answers"}
    train = load_squad("train")
    assert len(train) == 20018
    assert all(len(q["answers"]) == 1 for q in train)
    assert len(load_squad("train_extra")) == 65815
    assert [q["id"] for q in load_squad("test", limit=7)] == [q["id"] for q in test[:7]]


def test_aeslc_real(real_data):
    train = load_aeslc("train")
    assert len(train) == 14421
    assert all(ex["annotations"] == [] for ex in train)
    test = load_aeslc("test")
    assert len(test) == 1906
    assert all(len(ex["annotations"]) == 3 for ex in test)
    assert test[0]["id"] == "allen-p_inbox_24"
    assert test[0]["target"] == "Huntley/question"


def test_dialogsum_real(real_data):
    train = load_dialogsum("train")
    assert len(train) == 12426
    assert all(len(ex["summaries"]) == 1 and ex["summary"] == ex["summaries"][0] for ex in train)
    test = load_dialogsum("test")
    assert len(test) == 500
    assert all(len(ex["summaries"]) == 3 and len(ex["topics"]) == 3 for ex in test)
    assert test[0]["id"] == "test_0"
    assert test[0]["dialogue"].startswith("#Person1#: ")
    assert "\n#Person2#: " in test[0]["dialogue"]


# --------------------------------------------------------------------------- SST-2 errors

SST2_OK = "sentence\tlabel\ngood film\t1\n"


@pytest.mark.parametrize(
    "body, line, fragments",
    [
        (
            SST2_OK + "bad\tfilm\t0\n",
            3,
            ["expected 2 tab-separated fields (sentence, label), got 3"],
        ),
        (SST2_OK + "no label here\n", 3, ["got 1"]),
        (SST2_OK + "meh\tpositive\n", 3, ["label must be 0 or 1", "'positive'"]),
        (SST2_OK + "\t0\n", 3, ["empty sentence"]),
        ("text\tlabel\nx\t1\n", 1, ["expected header"]),
        (SST2_OK + "\n", 3, ["got 1"]),
    ],
)
def test_sst2_errors(tmp_path, body, line, fragments):
    path = write(tmp_path / "sst2.tsv", body)
    with pytest.raises(DataError) as excinfo:
        read_sst2(path)
    assert_data_error(excinfo, path, line, *fragments)


def test_sst2_error_through_load(monkeypatch, tmp_path):
    path = write(tmp_path / "sentiment" / "test.tsv", SST2_OK + "a\tb\tc\n")
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as excinfo:
        load_sst2("test")
    assert_data_error(excinfo, path, 3, "(sentence, label), got 3")


def test_sst2_invalid_utf8(tmp_path):
    path = tmp_path / "sst2.tsv"
    path.write_bytes(b"sentence\tlabel\ncaf\xe9\t1\n")
    with pytest.raises(DataError) as excinfo:
        read_sst2(path)
    assert_data_error(excinfo, path, 2, "UTF-8")


def test_sst2_limit_and_crlf(tmp_path):
    path = write(tmp_path / "sst2.tsv", "sentence\tlabel\r\na\t0\r\nb\t1\r\nc\t0\r\n")
    assert read_sst2(path) == [
        {"sentence": "a", "label": 0},
        {"sentence": "b", "label": 1},
        {"sentence": "c", "label": 0},
    ]
    assert read_sst2(path, limit=2) == read_sst2(path)[:2]


# --------------------------------------------------------------------------- SQuAD errors


def squad_line(context="Paris is in France.", answers=None, qid="q1", **overrides) -> str:
    answers = answers if answers is not None else [{"text": "France", "answer_start": 12}]
    par = {
        "title": "T",
        "context": context,
        "qas": [{"id": qid, "question": "Where?", "answers": answers}],
    }
    par.update(overrides)
    return json.dumps(par) + "\n"


def test_squad_flattens(tmp_path):
    path = write(tmp_path / "q.jsonl", squad_line() + squad_line(qid="q2"))
    questions = read_squad(path)
    assert [q["id"] for q in questions] == ["q1", "q2"]
    assert questions[0] == {
        "id": "q1",
        "title": "T",
        "question": "Where?",
        "context": "Paris is in France.",
        "answers": [{"text": "France", "answer_start": 12}],
    }
    assert len(read_squad(path, limit=1)) == 1


@pytest.mark.parametrize(
    "second_line, fragments",
    [
        ('{"title": "T", "context": \n', ["invalid JSON"]),
        ("[1, 2]\n", ["expected a JSON object"]),
        (squad_line(answers=[{"text": "France", "answer_start": 3}]), ["answer_start=3", "match"]),
        (squad_line(answers=[{"text": "France", "answer_start": "12"}]), ["must be an int"]),
        (squad_line(answers=[]), ["non-empty list"]),
        (squad_line(qid="q0"), ["duplicate", "line 1"]),
        (json.dumps({"title": "T", "context": "c"}) + "\n", ["missing key(s) ['qas']"]),
        (squad_line(context=""), ["context is empty"]),
    ],
)
def test_squad_errors(tmp_path, second_line, fragments):
    path = write(tmp_path / "q.jsonl", squad_line(qid="q0") + second_line)
    with pytest.raises(DataError) as excinfo:
        read_squad(path)
    assert_data_error(excinfo, path, 2, *fragments)


# --------------------------------------------------------------------------- AESLC errors

AESLC_TRAIN = "id\tsource\ttarget\ne1\tHello there, meeting at 3.\tMeeting\n"
AESLC_TEST = "id\tsource\ttarget\tann0\tann1\tann2\ne1\tbody\tsubj\ta\tb\tc\n"


def test_aeslc_layouts(tmp_path):
    train = read_aeslc(write(tmp_path / "train.tsv", AESLC_TRAIN))
    assert train == [
        {"id": "e1", "source": "Hello there, meeting at 3.", "target": "Meeting", "annotations": []}
    ]
    test = read_aeslc(write(tmp_path / "test.tsv", AESLC_TEST))
    assert test[0]["annotations"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "body, line, fragments",
    [
        (AESLC_TRAIN + "e2\tbody\tsubj\textra\n", 3, ["expected 3 tab-separated fields", "got 4"]),
        (AESLC_TEST + "e2\tbody\tsubj\n", 3, ["expected 6 tab-separated fields", "got 3"]),
        (AESLC_TRAIN + "e2\tbody\t \n", 3, ["empty 'target'"]),
        (AESLC_TRAIN + "e1\tother\tsubj\n", 3, ["duplicate id 'e1'", "line 2"]),
        ("id\tbody\tsubject\n", 1, ["expected header"]),
    ],
)
def test_aeslc_errors(tmp_path, body, line, fragments):
    path = write(tmp_path / "a.tsv", body)
    with pytest.raises(DataError) as excinfo:
        read_aeslc(path)
    assert_data_error(excinfo, path, line, *fragments)


def test_empty_tsv_file(tmp_path):
    path = write(tmp_path / "a.tsv", "")
    with pytest.raises(DataError, match="empty"):
        read_aeslc(path)


# --------------------------------------------------------------------------- DialogSum errors

DS_TRAIN = {
    "id": "train_0",
    "dialogue": "#Person1#: Hi.\n#Person2#: Hello.",
    "summary": "S",
    "topic": "t",
}
DS_TEST = {
    "id": "test_0",
    "dialogue": "#Person1#: Hi.",
    "summaries": ["s1", "s2", "s3"],
    "topics": ["a", "b", "c"],
}


def jsonl(*objs) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def test_dialogsum_layouts(tmp_path):
    train = read_dialogsum(write(tmp_path / "train.jsonl", jsonl(DS_TRAIN)))
    assert train[0]["summaries"] == ["S"] and train[0]["topic"] == "t"
    test = read_dialogsum(write(tmp_path / "test.jsonl", jsonl(DS_TEST)))
    assert test[0]["summary"] == "s1" and test[0]["summaries"] == ["s1", "s2", "s3"]


@pytest.mark.parametrize(
    "bad, fragments",
    [
        ({**DS_TRAIN, "id": "x", "summary": 3}, ["summary must be a string"]),
        ({**DS_TRAIN, "id": "x", "extra": 1}, ["unexpected key(s) ['extra']"]),
        ({"id": "x", "dialogue": "d", "summary": "s"}, ["missing key(s) ['topic']"]),
        ({**DS_TEST, "id": "x", "topics": ["a"]}, ["3 summaries but 1 topics"]),
        ({**DS_TEST, "id": "x", "summaries": []}, ["non-empty list"]),
        (DS_TRAIN, ["duplicate id 'train_0'"]),
    ],
)
def test_dialogsum_errors(tmp_path, bad, fragments):
    path = write(tmp_path / "d.jsonl", jsonl(DS_TRAIN, bad))
    with pytest.raises(DataError) as excinfo:
        read_dialogsum(path)
    assert_data_error(excinfo, path, 2, *fragments)


def test_dialogsum_blank_line(tmp_path):
    path = write(tmp_path / "d.jsonl", jsonl(DS_TRAIN) + "\n" + jsonl({**DS_TRAIN, "id": "y"}))
    with pytest.raises(DataError) as excinfo:
        read_dialogsum(path)
    assert_data_error(excinfo, path, 2, "empty line")
