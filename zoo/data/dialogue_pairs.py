"""DialogSum's dialogues cut into `(history → next turn)` pairs, for the dialogue task.

A dialogue (`$ZOO_DATA_DIR/dialogsum/`, see `zoo.data.dialogsum`) is turns separated by `\\n`,
each `#PersonN#: text`. Every turn but the first becomes the response of one pair whose
history is the (at most) `history_turns` turns before it, each kept with its speaker tag and
joined by `\\n`; the response is the turn's text without its tag:

    history:  "#Person1#: Hi, how are you?\\n#Person2#: Fine. And you?"
    response: "Not bad, thanks."

Turns are stripped; a tag's case is normalised (`#PErson2#:` → `#Person2#:`, one in train);
turns with no text after the tag (6 in train) are dropped. A turn without a speaker tag is a
`DataError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from zoo.data.dialogsum import SPLITS
from zoo.data.errors import DataError
from zoo.data.lines import check_limit, iter_jsonl, require_text
from zoo.data.paths import split_file

__all__ = ["SPEAKER_TAGS", "DialoguePair", "cut_pairs", "load_dialogue_pairs",
           "read_dialogue_pairs", "split_turns"]

# The speaker tags of DialogSum (#Person1# … #Person7# occur; 1 and 2 in 99.6 % of turns): the
# tokenizer keeps each one whole (SentencePiece user-defined symbols).
SPEAKER_TAGS = tuple(f"#Person{number}#:" for number in range(1, 10))
_TURN = re.compile(r"#person(\w+)#:(.*)", re.IGNORECASE | re.DOTALL)


@dataclasses.dataclass(frozen=True)
class DialoguePair:
    """One example: `history` (tagged turns joined by `\\n`) → `response` (untagged text) of
    `speaker` (its tag), turn `turn` (0-based) of dialogue `dialogue_id`."""

    history: str
    response: str
    speaker: str
    dialogue_id: str
    turn: int


def split_turns(dialogue: str) -> list[tuple[str, str]]:
    """`(speaker tag, text)` of each non-empty turn of a dialogue.

    Raises:
        ValueError: a turn has no `#PersonN#:` tag (the message says which turn).
    """
    turns = []
    for index, line in enumerate(dialogue.split("\n")):
        line = line.strip()
        if not line:
            continue
        match = _TURN.fullmatch(line)
        if match is None:
            shown = line if len(line) <= 40 else line[:40] + "…"
            raise ValueError(f"turn {index + 1} has no speaker tag '#PersonN#:' ({shown!r})")
        text = match.group(2).strip()
        if text:
            turns.append((f"#Person{match.group(1)}#:", text))
    return turns


def cut_pairs(turns: list[tuple[str, str]], history_turns: int, dialogue_id: str = ""
              ) -> list[DialoguePair]:
    """The pairs of one dialogue's `turns` (`split_turns`): one per turn after the first."""
    if history_turns < 1:
        raise ValueError(f"history_turns must be positive, got {history_turns}")
    pairs = []
    for index in range(1, len(turns)):
        history = "\n".join(f"{tag} {text}"
                            for tag, text in turns[max(0, index - history_turns):index])
        speaker, response = turns[index]
        pairs.append(DialoguePair(history, response, speaker, dialogue_id, index))
    return pairs


def read_dialogue_pairs(path: str | os.PathLike[str], history_turns: int,
                        limit: int | None = None) -> list[list[DialoguePair]]:
    """The pairs of each dialogue of a DialogSum JSONL file (either layout), in file order:
    one list per dialogue (empty for a dialogue of one turn).

    Args:
        path: the JSONL file.
        history_turns: turns of history per pair, at most.
        limit: read at most this many dialogues.

    Raises:
        DataError: bad JSON, a missing or empty `id` / `dialogue`, or a turn without a
            speaker tag, with the file and line.
    """
    limit = check_limit(limit)
    path = Path(path)
    dialogues: list[list[DialoguePair]] = []
    if limit == 0:
        return dialogues
    for number, obj in iter_jsonl(path):
        for key in ("id", "dialogue"):
            if key not in obj:
                raise DataError(path, number, f"dialogue record without {key!r}")
        dialogue_id = require_text(path, number, obj["id"], "id")
        dialogue = require_text(path, number, obj["dialogue"], "dialogue")
        try:
            turns = split_turns(dialogue)
        except ValueError as error:
            raise DataError(path, number, f"dialogue {dialogue_id!r}: {error}") from None
        dialogues.append(cut_pairs(turns, history_turns, dialogue_id))
        if limit is not None and len(dialogues) >= limit:
            break
    return dialogues


def load_dialogue_pairs(split: str, history_turns: int, limit: int | None = None
                        ) -> list[list[DialoguePair]]:
    """`read_dialogue_pairs` of DialogSum's `split` (`"train"` or `"test"`)."""
    return read_dialogue_pairs(split_file("DialogSum", "dialogsum", SPLITS, split),
                               history_turns, limit)
