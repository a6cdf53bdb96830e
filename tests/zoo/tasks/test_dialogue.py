"""The dialogue task: pairs cut from DialogSum's dialogues, the speaker tags kept whole, the
retrieval baseline, a tiny responder trained, scored, exported, served and talked to with
`zoo chat`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from export import export_model
from serving import Client, start_server
from tests.support import REPO, zoo_command
from zoo.data import DataError
from zoo.data.dialogue_pairs import SPEAKER_TAGS, read_dialogue_pairs, split_turns
from zoo.tasks import get_task
from zoo.tasks.dialogue import turn_attention
from zoo.tasks.dialogue_retrieval import TfidfRetriever

# Tiny sizes: the point is the path, not the score.
TINY_RESPONDER = {
    "train_limit": 2000, "eval_limit": 24, "valid_dialogues": 20, "vocab_size": 500,
    "embedding_dim": 16, "encoder_units": 16, "decoder_units": 32, "encoder_layers": 1,
    "max_history_subwords": 48, "max_response_subwords": 16, "batch_size": 32, "epochs": 2,
    "learning_rate": 0.01, "warmup_steps": 5, "heatmaps": 2, "samples": 4, "dropout": 0.0,
    "beam_width": 2, "val_response_limit": 8,
}
DIALOGUE = ("#Person1#: Hi, Tom. How are you?\n#Person2#: Fine, thanks.\n"
            "#PErson2#: And you?\n #Person1#: Not bad. \n#Person2#:  \n#Person1#: Bye.")


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_pairs_are_cut_from_the_last_turns(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [
        {"id": "a", "dialogue": DIALOGUE, "summary": "s", "topic": "t"},
        {"id": "b", "dialogue": "#Person1#: Alone.", "summary": "s", "topic": "t"}])
    dialogues = read_dialogue_pairs(path, history_turns=2)
    assert [len(pairs) for pairs in dialogues] == [4, 0]  # the empty turn is dropped
    pairs = dialogues[0]
    assert pairs[0].history == "#Person1#: Hi, Tom. How are you?"
    assert (pairs[0].response, pairs[0].speaker, pairs[0].turn) == ("Fine, thanks.",
                                                                    "#Person2#:", 1)
    assert pairs[1].history == "#Person1#: Hi, Tom. How are you?\n#Person2#: Fine, thanks."
    assert (pairs[1].response, pairs[1].speaker) == ("And you?", "#Person2#:")  # case fixed
    assert pairs[3].history == "#Person2#: And you?\n#Person1#: Not bad."  # the last 2 turns
    assert (pairs[3].response, pairs[3].dialogue_id) == ("Bye.", "a")
    assert len(read_dialogue_pairs(path, history_turns=1, limit=1)) == 1


def test_a_turn_without_a_speaker_tag_names_the_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", [
        {"id": "a", "dialogue": "#Person1#: Hi.\n#Person2#: Hello.", "summary": "s",
         "topic": "t"},
        {"id": "b", "dialogue": "#Person1#: Hi.\nHello there.", "summary": "s", "topic": "t"}])
    with pytest.raises(DataError, match=r"test\.jsonl:2: dialogue 'b': turn 2 has no speaker "
                                        r"tag '#PersonN#:' \('Hello there\.'\)"):
        read_dialogue_pairs(path, history_turns=3)
    with pytest.raises(ValueError, match="turn 1"):
        split_turns("no tag")


def test_the_real_splits_and_the_speaker_tags_in_one_piece():
    import zoo
    from zoo.text import SubwordTokenizer

    config = zoo.resolve_config("responder", TINY_RESPONDER)
    task = get_task("dialogue")
    train, valid = task.read_split(config, "train"), task.read_split(config, "valid")
    assert len(train[0]) == len(train[1]) == 2000 and len(valid[0]) == 24
    assert not set(train[0]) & set(valid[0])  # held out by dialogue
    assert all(len(history.split("\n")) <= 3 for history in train[0])
    assert all(history.startswith("#Person") for history in train[0])
    texts = task.tokenizer_texts(config, train)
    assert texts.user_defined_symbols == SPEAKER_TAGS
    tokenizer = SubwordTokenizer.train(texts, vocab_size=400)
    pieces = tokenizer.id_to_string(tokenizer.tokenize(["#Person1#: Hi.\n#Person2#: Oh?"]))
    pieces = [p.decode() for p in pieces.to_list()[0]]
    assert pieces[:2] == ["▁", "#Person1#:"] and pieces.count("#Person2#:") == 1


def test_retrieval_baseline_answers_with_the_nearest_history():
    retriever = TfidfRetriever(
        ["#Person1#: Where is the train station?", "#Person1#: What would you like to eat?",
         "#Person1#: How is the weather today?"],
        ["Turn left at the bank.", "A pizza, please.", "Sunny and warm."])
    assert retriever.respond(["#Person2#: Excuse me, where is the station?",
                              "#Person1#: Is the weather nice?",
                              "#Person1#: Would you like something to eat?"]) == [
        "Turn left at the bank.", "Sunny and warm.", "A pizza, please."]
    indices, cosines = retriever.nearest(["#Person1#: nothing in common"])
    assert cosines[0] == 0.0 and indices[0] == 0  # no shared word: the first pair
    with pytest.raises(ValueError, match="2 histories but 1 responses"):
        TfidfRetriever(["a", "b"], ["c"])


def test_turn_attention_sums_each_turns_subwords():
    tokens = ["ago", ".", "▁", "#Person1#:", "▁Hi", "▁", "#Person2#:", "▁Oh", "</s>", ""]
    weights = np.zeros((2, len(tokens)), np.float32)
    weights[0, [0, 4]] = 0.5  # step 1: the cut turn and turn 1
    weights[1, [6, 8]] = 0.5  # step 2: turn 2 and EOS
    assert turn_attention(tokens, weights) == [0.25, 0.25, 0.25]


@pytest.fixture(scope="module")
def trained_responder(tracking_dir, tmp_path_factory):
    from zoo.training import train

    output = tmp_path_factory.mktemp("responder_runs")
    old_cwd = os.getcwd()
    os.chdir(tracking_dir)  # MLflow's default artifact root is relative to the working dir
    try:
        return train("responder", TINY_RESPONDER, output_dir=output, verbose=0)
    finally:
        os.chdir(old_cwd)


def test_tiny_training_scores_the_test_pairs(trained_responder):
    import mlflow

    metrics = trained_responder.metrics
    for key in ("test_bleu", "test_rougeL", "test_distinct1", "test_distinct2"):
        assert 0.0 <= metrics[key] <= 100.0, key
    assert 1.0 < metrics["test_perplexity"] < TINY_RESPONDER["vocab_size"] * 2
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(trained_responder.run_id, "attention")}
    assert artifacts == {"attention/response_00.png", "attention/response_01.png"}
    assert client.get_metric_history(trained_responder.run_id, "val_bleu")
    model = trained_responder.model
    assert model.task == "dialogue" and model.decoding == "beam"


def test_exported_responder_serves_zoo_predict_and_zoo_chat(trained_responder, tmp_path):
    model = trained_responder.model
    export_model(model, tmp_path, name="responder", warmup_lengths=())
    handle = start_server(tmp_path, port=0, poll_interval=0)
    environment = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        first = "#Person1#: Hi, how can I help you?"
        with Client(handle.target, timeout=120.0, retries=0) as client:
            assert client.respond("responder", [first]) == model.respond([first])
            outputs = client.predict("responder", {"text": [first]})
        assert {"response", "attention", "history_tokens"} <= set(outputs)

        predicted = subprocess.run(
            zoo_command("predict", "--server", handle.target, "--model", "responder", first),
            env=environment, capture_output=True, text=True, timeout=120, check=True)
        assert predicted.stdout == f"{first}\t{model.respond([first])[0]}\n"

        chat = subprocess.run(
            [sys.executable, "-m", "zoo.cli", "chat", "--server", handle.target, "--model",
             "responder", "--turns", "2", "--attention"],
            input="Hi, how are you?\nWhat about tomorrow?\n\nnot read\n", env=environment,
            capture_output=True, text=True, timeout=120)
        assert chat.returncode == 0, chat.stderr
    finally:
        handle.stop()
    user = ["#Person1#: Hi, how are you?", "#Person1#: What about tomorrow?"]
    reply = model.respond([user[0]])[0]
    second = model.respond([f"#Person2#: {reply}\n{user[1]}"])[0]
    lines = chat.stdout.splitlines()
    replies = [line for line in lines if line.startswith("#Person2#:")]
    assert replies == [f"#Person2#: {reply}", f"#Person2#: {second}"]
    attended = [line.split("  ", 3)[-1] for line in lines if line.startswith("    attention ")]
    assert attended[:1] == [user[0]]  # one turn sent first
    assert sorted(attended[1:]) == sorted([f"#Person2#: {reply}", user[1]])
