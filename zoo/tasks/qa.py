"""Extractive QA on SQuAD v1.1: answer spans as subword spans, official EM / F1."""

import mlflow
import numpy as np
import tensorflow as tf

from zoo import metrics
from zoo.data.squad import load_squad
from zoo.losses import SpanLoss
from zoo.tasks import TASKS
from zoo.tasks.base import (
    PreparedData,
    Task,
    log_sample_table,
    served_in_length_order,
    text_hash,
)
from zoo.tasks.translation_data import BUCKET_WIDTH, bucket_boundaries
from zoo.viz import plot_attention

HEATMAP_WINDOW = 40  # context subwords shown around the predicted answer


def byte_span(context, answer):
    """`(start, end)` UTF-8 byte offsets of a SQuAD answer (`text`, character
    `answer_start`) in `context`, end exclusive."""
    start = len(context[:answer["answer_start"]].encode("utf-8"))
    return start, start + len(answer["text"].encode("utf-8"))


def token_span(starts, ends, byte_start, byte_end):
    """The subwords `(first, last)` (inclusive) covering bytes `[byte_start, byte_end)`, given
    each subword's byte `starts` / `ends` (ascending): the first subword ending after the
    answer's start, the last one starting before its end."""
    first = int(np.searchsorted(ends, byte_start, side="right"))
    last = int(np.searchsorted(starts, byte_end, side="left")) - 1
    return first, last


def tokenize_examples(tokenizer, examples, max_context_tokens, max_question_tokens):
    """Tokenize questions and (once per paragraph) contexts in-graph and map every first answer
    to its subword span.

    Returns `(context_ids, question_ids, spans, kept)`: ragged int32 ids of the kept questions
    (contexts cut to `max_context_tokens`, questions to `max_question_tokens`), int32 spans
    `[kept, 2]` (first, last subword) and the indices of the kept examples: those whose answer
    lies within the kept context subwords.
    """
    index_of, contexts = {}, []
    for example in examples:
        if example["context"] not in index_of:
            index_of[example["context"]] = len(contexts)
            contexts.append(example["context"])
    ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(contexts))
    splits = ids.row_splits.numpy()
    flat_starts, flat_ends = starts.flat_values.numpy(), ends.flat_values.numpy()
    spans, kept, context_rows = [], [], []
    for position, example in enumerate(examples):
        row = index_of[example["context"]]
        lo, hi = splits[row], min(splits[row + 1], splits[row] + max_context_tokens)
        first, last = token_span(flat_starts[lo:hi], flat_ends[lo:hi],
                                 *byte_span(example["context"], example["answers"][0]))
        if first <= last < hi - lo:
            spans.append((first, last))
            kept.append(position)
            context_rows.append(row)
    context_ids = tf.gather(ids[:, :max_context_tokens], context_rows)
    questions = tf.constant([examples[i]["question"] for i in kept])
    question_ids = tokenizer.tokenize(questions)[:, :max_question_tokens]
    return context_ids, question_ids, np.asarray(spans, np.int32).reshape(-1, 2), kept


def make_dataset(context_ids, question_ids, spans, batch_size, shuffle=False, seed=0,
                 drop_remainder=True, bucket_width=BUCKET_WIDTH, repeat=False):
    """Batches of `({"context_ids", "question_ids"}, spans)`, bucketed by context length.

    With `bucket_width=8` (for an XLA train step) both id tensors are padded to multiples of 8,
    so only a few shapes get compiled; with a smaller width (graph mode, where shapes cost
    nothing) each is padded to its batch's longest, so fewer recurrent steps run on padding.
    `repeat` repeats the shuffled stream *before* bucketing, so a bucket's leftover questions
    start the next pass instead of being dropped.
    """
    count = int(context_ids.nrows())
    longest = int(tf.reduce_max(context_ids.row_lengths()))
    dataset = tf.data.Dataset.from_tensor_slices((context_ids, question_ids, spans))
    if shuffle:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    # Rows of a ragged tensor come out as ragged-rank-0 values, which `padded_batch` refuses.
    dataset = dataset.map(lambda context, question, span: (
        tf.identity(context), tf.identity(question), span))
    boundaries = bucket_boundaries(longest, bucket_width)
    dataset = dataset.bucket_by_sequence_length(
        lambda context, question, span: tf.shape(context)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        drop_remainder=drop_remainder)
    multiple = bucket_width if bucket_width == BUCKET_WIDTH else 1

    def pad(ids):
        length = tf.shape(ids)[1]
        target = tf.maximum((length + multiple - 1) // multiple, 1) * multiple
        return tf.pad(ids, [[0, 0], [0, target - length]])

    dataset = dataset.map(
        lambda context, question, span: (
            {"context_ids": pad(context), "question_ids": pad(question)}, span),
        num_parallel_calls=tf.data.AUTOTUNE)
    if not repeat and not drop_remainder:
        # Bucketing hides the batch count; Keras warns "ran out of data" at the end of a
        # dataset of unknown length, so state it.
        buckets = np.searchsorted(boundaries, context_ids.row_lengths().numpy(), side="right")
        batches = int(sum(-(-n // batch_size) for n in np.bincount(buckets)))
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


@TASKS.register("qa")
class QATask(Task):
    """Examples are SQuAD questions as `zoo.data.squad.load_squad` returns them."""

    name = "qa"
    headline = "f1"

    def read_split(self, config, split):
        if split == "train":
            limit = config["train_limit"]
            examples = load_squad("train", limit=limit)
            if config["train_extra"] and (limit is None or len(examples) < limit):
                examples += load_squad("train_extra",
                                       limit=None if limit is None else limit - len(examples))
            return examples
        limit = config["eval_limit"] if split == "valid" else config["test_limit"]
        return load_squad("test", limit=limit or None)

    def data_hash(self, examples):
        contexts = {id(e["context"]): e["context"] for e in examples}
        return text_hash([*contexts.values(),
                          *(f"{e['id']}\t{e['question']}\t{e['answers']}" for e in examples)])

    def tokenizer_texts(self, config, examples):
        contexts = list({e["context"]: None for e in examples})
        return contexts + [e["question"] for e in examples]

    def prepare(self, config, tokenizer, train_examples, valid_examples):
        limits = config["max_context_tokens"], config["max_question_tokens"]
        train_context, train_question, train_spans, kept = tokenize_examples(
            tokenizer, train_examples, *limits)
        if len(kept) < 2 * config["batch_size"]:
            raise ValueError(
                f"only {len(kept)} training questions have their answer within "
                f"max_context_tokens={config['max_context_tokens']} subwords: too few for "
                f"batch_size={config['batch_size']}; raise max_context_tokens or train_limit")
        valid = tokenize_examples(tokenizer, valid_examples, *limits)[:3]
        if not len(valid[2]):
            raise ValueError(f"no validation question has its answer within "
                             f"max_context_tokens={config['max_context_tokens']} subwords")
        # XLA compiles one program per shape: pad to multiples of 8 then; graph mode pads to
        # each batch's longest (see make_dataset).
        width = BUCKET_WIDTH if config["jit_compile"] else 2
        train = make_dataset(train_context, train_question, train_spans, config["batch_size"],
                             shuffle=True, seed=config["seed"], bucket_width=width,
                             repeat=True)
        valid = make_dataset(*valid, config["eval_batch_size"], drop_remainder=False,
                             bucket_width=width)
        tokens = int(tf.reduce_sum(train_context.row_lengths())
                     + tf.reduce_sum(train_question.row_lengths()))
        return PreparedData(train, valid, max(1, len(kept) // config["batch_size"]), tokens,
                            len(kept))

    def loss(self, config):
        return SpanLoss()

    def predict(self, model, config, examples):
        """`model.answer` results, one per example, batched by context length."""
        order = sorted(range(len(examples)), key=lambda i: len(examples[i]["context"]))
        answers = model.answer([examples[i]["question"] for i in order],
                               [examples[i]["context"] for i in order],
                               batch_size=config["eval_batch_size"])
        results = [None] * len(examples)
        for index, answer in zip(order, answers, strict=True):
            results[index] = answer
        return results

    def evaluate(self, model, config, examples):
        """Official SQuAD v1.1 `exact_match` and `f1` (0..100) on `examples`; when they are
        more than `eval_limit`, also `exact_match_first_n` / `f1_first_n` on their first
        `eval_limit` (the validation questions, the acceptance subset)."""
        answers = [r["answer"] for r in self.predict(model, config, examples)]
        return self._scores(config, examples, answers)

    def evaluate_served(self, signature, config, examples):
        """`evaluate` through an export's `serving_default` signature (`zoo evaluate`)."""
        contexts = [e["context"] for e in examples]
        answers = served_in_length_order(
            signature, {"question": [e["question"] for e in examples], "context": contexts},
            [len(c) for c in contexts], "answer", config["eval_batch_size"])
        return self._scores(config, examples, answers)

    def _scores(self, config, examples, answers):
        predictions = {e["id"]: answer for e, answer in zip(examples, answers, strict=True)}
        scores = metrics.squad_em_f1(predictions, examples)
        head = config["eval_limit"]
        if head and len(examples) > head:
            first = metrics.squad_em_f1(predictions, examples[:head])
            scores.update({f"{name}_first_n": value for name, value in first.items()})
        return scores

    def log_artifacts(self, model, config, examples, directory):
        """Context-to-query attention heatmaps of a few validation questions (the context
        around the predicted answer) and a table of question, gold and predicted answers."""
        count = min(max(config["heatmaps"], config["samples"]), len(examples))
        examples = examples[:count]
        results = model.answer([e["question"] for e in examples],
                               [e["context"] for e in examples], return_attention=True)
        heatmap_dir = directory / "attention"
        heatmap_dir.mkdir()
        for index in range(min(config["heatmaps"], count)):
            plot_c2q(examples[index], results[index],
                     heatmap_dir / f"question_{index:02d}.png")
        if config["heatmaps"]:
            mlflow.log_artifacts(str(heatmap_dir), "attention")
        if config["samples"]:
            samples = examples[: config["samples"]]
            golds = [" | ".join(dict.fromkeys(a["text"] for a in e["answers"]))
                     for e in samples]
            predicted = [r["answer"] for r in results[: config["samples"]]]
            f1 = [round(100 * max(metrics.f1_score(p, a["text"]) for a in e["answers"]), 1)
                  for p, e in zip(predicted, samples, strict=True)]
            log_sample_table({"id": [e["id"] for e in samples],
                              "question": [e["question"] for e in samples],
                              "gold": golds, "predicted": predicted, "f1": f1},
                             directory, "answers")


def plot_c2q(example, result, path):
    """The C2Q weights (question subwords × a window of context subwords centred on the
    predicted answer) of one `answer(..., return_attention=True)` result."""
    c2q, tokens = result["c2q"], result["context_tokens"]
    centre = (result["start_token"] + result["end_token"]) // 2
    low = max(0, min(centre - HEATMAP_WINDOW // 2, len(tokens) - HEATMAP_WINDOW))
    high = min(len(tokens), low + HEATMAP_WINDOW)
    title = (f"Q: {example['question']}\npredicted: {result['answer']!r} · gold: "
             f"{example['answers'][0]['text']!r}")
    plot_attention(c2q[low:high].T, tokens[low:high], result["question_tokens"], path=path,
                   title=title)
