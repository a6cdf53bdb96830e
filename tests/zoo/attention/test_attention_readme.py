"""The README's attention table documents exactly the registered layers."""


import zoo
from tests.support import REPO

README = REPO / "README.md"
START, END = "<!-- attention-table:start -->", "<!-- attention-table:end -->"


def attention_table():
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, "README lacks the attention-table markers"
    region = text[text.index(START) + len(START):text.index(END)]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in region.splitlines() if line.strip().startswith("|")]
    return rows[0], rows[2:]  # header, body (rows[1] is the |---| separator)


def test_table_has_the_documented_columns():
    header, body = attention_table()
    assert header == ["name", "score formula", "paper", "when to use it"]
    assert all(len(row) == len(header) and all(row) for row in body), "empty or extra cells"


def test_table_lists_exactly_the_registered_names():
    _, body = attention_table()
    listed = [row[0].strip("`") for row in body]
    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert sorted(listed) == zoo.attention.names()
