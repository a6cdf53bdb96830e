"""Dialogue: the next turn of a conversation from its last turns (DialogSum's dialogues cut
into pairs, `zoo.data.dialogue_pairs`). Scored on the test split with sacreBLEU, ROUGE-L,
distinct-1/2 and the per-token perplexity of the reference responses."""

import itertools
import math

import mlflow
import numpy as np
import tensorflow as tf

from zoo import metrics
from zoo.data.dialogue_pairs import SPEAKER_TAGS, load_dialogue_pairs
from zoo.losses import SmoothedSequenceLoss
from zoo.tasks import TASKS
from zoo.tasks.base import (
    Task,
    log_sample_table,
    served_in_length_order,
    text_hash,
)
from zoo.tasks.sequence_outputs import apply_decoding_config, batched_translate, token_strings
from zoo.tasks.summarization_data import make_summary_dataset, prepare_pairs
from zoo.text import PAD_ID, TokenizerTexts
from zoo.viz import plot_attention

DATASETS = ("dialogsum",)
VALID_SEED = 20160603  # fixed, not the run's seed: every run validates on the same dialogues
HEATMAP_COLUMNS = 100  # history columns drawn at most (the most attended ones)


@TASKS.register("dialogue")
class DialogueTask(Task):
    """Examples are `(histories, responses)` lists of strings: the last `history_turns`
    tagged turns joined by `\\n`, and the next turn's text (`zoo.data.dialogue_pairs`).

    Train pairs come from DialogSum's train dialogues less `valid_dialogues` of them held out
    (every pair of a held-out dialogue, so no validation history is also a training one);
    the test pairs from the test dialogues. `train_limit` caps the training pairs,
    `eval_limit` the validation and test pairs.
    """

    name = "dialogue"
    headline = "bleu"
    output_name = "response"

    def read_split(self, config, split):
        if config["dataset"] not in DATASETS:
            raise ValueError(f"key 'dataset': unknown dialogue dataset {config['dataset']!r} "
                             f"({', '.join(DATASETS)})")
        history_turns = config["history_turns"]
        if split == "test":
            dialogues = load_dialogue_pairs("test", history_turns)
        else:
            dialogues = load_dialogue_pairs("train", history_turns)
            held_out = held_out_indices(len(dialogues), config["valid_dialogues"])
            dialogues = [pairs for index, pairs in enumerate(dialogues)
                         if (index in held_out) == (split == "valid")]
        pairs = [pair for pairs in dialogues for pair in pairs]
        limit = config["train_limit"] if split == "train" else config["eval_limit"]
        pairs = pairs[:limit] if limit else pairs
        return [pair.history for pair in pairs], [pair.response for pair in pairs]

    def data_hash(self, examples):
        histories, responses = examples
        return text_hash([*histories, *responses])

    def tokenizer_texts(self, config, examples):
        """Each training turn once (a history repeats its turns in the next pairs), tagged,
        and the responses; the speaker tags are kept whole (user-defined symbols)."""
        histories, responses = examples
        turns = dict.fromkeys(line for history in histories for line in history.split("\n"))
        return TokenizerTexts([*turns, *responses], user_defined_symbols=SPEAKER_TAGS)

    def prepare(self, config, tokenizer, train_examples, valid_examples):
        return prepare_pairs(config, tokenize_pairs(tokenizer, *train_examples, config),
                             tokenize_pairs(tokenizer, *valid_examples, config), "pairs")

    def loss(self, config):
        return SmoothedSequenceLoss(config["label_smoothing"])

    def evaluate(self, model, config, examples, limit=None):
        """BLEU, ROUGE-L and distinct-1/2 of the decoded responses (the first `limit` pairs;
        0: none) and the perplexity of every reference response."""
        apply_decoding_config(model, config)  # e.g. `zoo evaluate --set decoding=greedy`
        histories, references = examples
        scores = {"perplexity": perplexity(model, config, histories, references)}
        if limit is not None:
            histories, references = histories[:limit], references[:limit]
        if histories:
            scores.update(response_scores(batched_translate(model, histories), references))
        return scores

    def evaluate_during_training(self, model, config, examples):
        return self.evaluate(model, config, examples, limit=config["val_response_limit"])

    def evaluate_served(self, signature, config, examples, batch_size=32):
        """The scores of an export's `response` output (no perplexity: it serves no
        probabilities of given responses)."""
        histories, references = examples
        responses = served_in_length_order(signature, {"text": histories},
                                           [len(h) for h in histories], self.output_name,
                                           batch_size)
        return response_scores(responses, references)

    def log_artifacts(self, model, config, examples, directory):
        """Heatmaps of the attention over the history of a few validation pairs (titled with
        the response and the attention each turn got); a table of history, reference and
        response."""
        histories, references = examples
        count = max(config["heatmaps"], config["samples"])
        histories, references = histories[:count], references[:count]
        if not histories:
            return
        responses, result, source_ids = model.translate(histories, return_attention=True)
        if model.has_attention and config["heatmaps"]:
            heatmap_dir = directory / "attention"
            heatmap_dir.mkdir()
            for index in range(min(config["heatmaps"], len(histories))):
                history_tokens = token_strings(model.tokenizer, source_ids[index])
                response_tokens = token_strings(model.tokenizer, result["ids"][index])
                weights = result["attention"][index].numpy()
                weights = weights[: len(response_tokens), : len(history_tokens)]
                shares = turn_attention(history_tokens, weights)
                title = (f"{responses[index]}\nattention per turn, oldest first: "
                         + " / ".join(f"{share:.2f}" for share in shares))
                columns = np.arange(len(history_tokens))
                if len(columns) > HEATMAP_COLUMNS:
                    columns = np.sort(np.argsort(-weights.sum(0),
                                                 kind="stable")[:HEATMAP_COLUMNS])
                    title += (f"\nthe {HEATMAP_COLUMNS} most attended of "
                              f"{len(history_tokens)} history subwords")
                plot_attention(weights[:, columns], [history_tokens[i] for i in columns],
                               response_tokens, path=heatmap_dir / f"response_{index:02d}.png",
                               title=title)
            mlflow.log_artifacts(str(heatmap_dir), "attention")
        n = config["samples"]
        log_sample_table({"history": histories[:n], "reference": references[:n],
                          self.output_name: responses[:n]}, directory, "responses")


def held_out_indices(count, size):
    """The `size` dialogue indices (of `count`) held out of train for validation."""
    if size >= count:
        raise ValueError(f"key 'valid_dialogues' ({size}) must be smaller than the {count} "
                         "training dialogues")
    return set(np.random.default_rng(VALID_SEED).permutation(count)[:size].tolist())


def tokenize_pairs(tokenizer, histories, responses, config):
    """Ragged `(history_ids, response_ids)` (no BOS/EOS): each history's last
    `max_history_subwords` subwords (its most recent turns, as `Responder.encode_texts`
    keeps them), each response's first `max_response_subwords`."""
    history_ids = tokenizer.tokenize(tf.constant(list(histories)))
    lengths = history_ids.row_lengths()
    starts = tf.maximum(lengths - config["max_history_subwords"], 0)
    history_ids = tf.gather(history_ids, tf.ragged.range(starts, lengths), batch_dims=1)
    response_ids = tokenizer.tokenize(tf.constant(list(responses)))
    return history_ids, response_ids[:, : config["max_response_subwords"]]


def perplexity(model, config, histories, responses, batch_size=64):
    """Per-token perplexity of the reference `responses` (EOS included, cut to
    `max_response_subwords` as in training): exp of their mean token NLL under the model,
    teacher-forced on its `histories`."""
    if not histories:
        return float("nan")
    history_ids, response_ids = tokenize_pairs(model.tokenizer, histories, responses, config)
    batches = make_summary_dataset(history_ids, response_ids, batch_size, drop_remainder=False)
    total, tokens = 0.0, 0
    for inputs, target_out in batches:
        logits = tf.cast(model(inputs, training=False), tf.float32)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target_out, logits=logits)
        real = tf.cast(tf.not_equal(target_out, PAD_ID), tf.float32)
        total += float(tf.reduce_sum(nll * real))
        tokens += int(tf.reduce_sum(real))
    return math.exp(total / max(tokens, 1))


def response_scores(responses, references):
    """BLEU (sacreBLEU, cased), ROUGE-L F1 and distinct-1/2 of `responses` (0..100)."""
    return {"bleu": metrics.corpus_bleu(responses, references)["bleu"],
            "rougeL": metrics.rouge(responses, references)["rougeL"],
            **metrics.distinct_scores(responses)}


def turn_starts(history_tokens):
    """Indices into `history_tokens` (subword strings of one history) where a turn starts:
    at each speaker tag, or at the "▁" just before it. Tokens before the first start belong
    to a turn whose beginning was cut off."""
    starts = []
    for index, token in enumerate(history_tokens):
        if token.lstrip("▁") in SPEAKER_TAGS or token.lstrip("▁").lower().startswith("#person"):
            start = index - 1 if index and history_tokens[index - 1] == "▁" else index
            starts.append(start)
    return starts


def turn_attention(history_tokens, weights):
    """The attention each turn of a history got, oldest first: `weights` `[response steps,
    history tokens]` summed over the turn's tokens and averaged over the steps (so the
    shares sum to at most 1; the rest went to EOS). A turn cut at its beginning (history
    longer than the model keeps) comes first."""
    weights = np.asarray(weights, np.float32)
    real = [i for i, token in enumerate(history_tokens) if token and token != "</s>"]
    if not real or not len(weights):
        return []
    starts = turn_starts(history_tokens)
    bounds = ([0] if not starts or starts[0] > 0 else []) + starts + [max(real) + 1]
    per_token = weights.mean(axis=0)
    return [float(per_token[start:end].sum()) for start, end in itertools.pairwise(bounds)
            if end > start]
