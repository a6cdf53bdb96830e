"""Sentiment (SST-2): sentence → positive/negative, scored by accuracy.

Splits. `$ZOO_DATA_DIR/sentiment` has SST-2's 67,349 training phrases and, as `test.tsv`, the
872 GLUE dev sentences (the GLUE test labels are not public; "SST-2 dev accuracy" everywhere
means this file). The test file is used for the final score only. The validation split (the
per-epoch `val_loss` that picks the best epoch, and `val_accuracy`) is held out of the training
file: `valid_sentences` full sentences (≥ 8 words, not part of a longer example, picked with the
config's seed), and every training phrase of ≥ 3 words inside one of them is dropped from
training, since SST labels each sentence's phrases too and a held-out sentence whose phrases
stay in training would measure memorisation. Shorter phrases (words, word pairs) recur across
reviews and stay.

With `valid_rows > 0` the validation split is instead that many training rows drawn at random
(phrases and sentences alike, as the PyTorch anchor holds out 2,000): the rest of the training
file stays whole, at the price of a validation score that sees phrases of training sentences.
"""

import functools
import random

import mlflow
import numpy as np
import tensorflow as tf

from zoo import metrics
from zoo.data.sst2 import load_sst2
from zoo.tasks import TASKS
from zoo.tasks.base import PreparedData, Task, log_sample_table, text_hash
from zoo.tasks.translation_data import BUCKET_WIDTH, bucket_boundaries
from zoo.text.sst_normalization import normalize_sst
from zoo.text.word_vectors import initialize_embeddings
from zoo.viz import plot_attention

SENTENCE_WORDS = 8  # a held-out sentence has at least this many words
PHRASE_WORDS = 3    # training phrases of at least this many words inside one are dropped


def _ngrams(words, shortest):
    for start in range(len(words)):
        for end in range(start + shortest, len(words) + 1):
            yield " ".join(words[start:end])


@functools.lru_cache(maxsize=4)
def split_train_valid(train_limit, valid_sentences, seed, valid_rows=0):
    """`(train, valid)` tuples of examples: see the module docstring."""
    examples = load_sst2("train", limit=train_limit)
    if valid_rows:
        if 2 * valid_rows > len(examples):
            raise ValueError(f"key 'valid_rows' ({valid_rows}): the training data has only "
                             f"{len(examples)} rows (train_limit={train_limit}); lower "
                             "valid_rows or raise train_limit")
        held_out = set(random.Random(seed).sample(range(len(examples)), valid_rows))
        return (tuple(e for i, e in enumerate(examples) if i not in held_out),
                tuple(examples[i] for i in sorted(held_out)))
    texts = {example["sentence"] for example in examples}
    inside_longer = set()
    for text in texts:
        words = text.split()
        if len(words) > SENTENCE_WORDS:
            inside_longer.update(phrase for phrase in _ngrams(words, SENTENCE_WORDS)
                                 if phrase != text and phrase in texts)
    candidates = sorted(text for text in texts
                        if len(text.split()) >= SENTENCE_WORDS and text not in inside_longer)
    if len(candidates) < 2 * valid_sentences:
        raise ValueError(
            f"key 'valid_sentences' ({valid_sentences}): the training data has only "
            f"{len(candidates)} full sentences of ≥ {SENTENCE_WORDS} words (train_limit="
            f"{train_limit}); lower valid_sentences or raise train_limit")
    held_out = set(random.Random(seed).sample(candidates, valid_sentences))
    dropped = {phrase for sentence in held_out
               for phrase in _ngrams(sentence.split(), PHRASE_WORDS)}
    valid, seen = [], set()
    for example in examples:
        if example["sentence"] in held_out and example["sentence"] not in seen:
            seen.add(example["sentence"])
            valid.append(example)
    train = [example for example in examples if example["sentence"] not in dropped]
    return tuple(train), tuple(valid)


def encode(config, tokenizer, examples):
    """Examples → (ragged subword ids cut to `max_tokens`, int labels)."""
    texts = normalize_sst([e["sentence"] for e in examples],
                                          config["lowercase"])
    ids = tokenizer.tokenize(texts)[:, : config["max_tokens"]]
    return ids, np.array([e["label"] for e in examples], np.int32)


def length_weights(ids):
    """Per-example loss weights proportional to the subword count, with mean 1."""
    lengths = ids.row_lengths().numpy().astype(np.float32)
    return lengths / max(float(lengths.mean()), 1.0)


def make_dataset(ids, labels, batch_size, num_classes=2, shuffle=False, seed=0,
                 bucket_width=BUCKET_WIDTH, repeat=False, weights=None):
    """Batches `(ids [batch, S], one-hot labels)` of similar lengths, with `weights`
    (one per example) as Keras sample weights when given.

    With `bucket_width=8` (an XLA train step) S is padded to a multiple of 8, a handful of
    compiled shapes; a smaller width (graph mode) pads each batch to its longest row.
    `repeat` repeats the shuffled stream before bucketing, so no example is left out.
    """
    columns = (ids, tf.one_hot(labels, num_classes))
    if weights is not None:
        columns += (tf.constant(weights, tf.float32),)
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    # Rows of a RaggedTensor are specified as ragged elements, which padded batching refuses;
    # inside `map` they are plain tensors, and so they come out.
    dataset = dataset.map(lambda row, *rest: (tf.identity(row), *rest))
    boundaries = bucket_boundaries(max(int(tf.reduce_max(ids.row_lengths())), 1), bucket_width)
    dataset = dataset.bucket_by_sequence_length(
        lambda ids, *rest: tf.shape(ids)[0], bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=bucket_width == BUCKET_WIDTH)
    return dataset.prefetch(tf.data.AUTOTUNE)


@TASKS.register("sentiment")
class SentimentTask(Task):
    """Examples are dicts `{"sentence": str, "label": 0 | 1}` (1 = positive)."""

    name = "sentiment"
    headline = "accuracy"

    def read_split(self, config, split):
        if split == "test":
            return load_sst2("test", limit=config["eval_limit"])
        train, valid = split_train_valid(config["train_limit"], config["valid_sentences"],
                                         config["seed"], config["valid_rows"])
        if split == "train":
            return list(train)
        if split == "valid":
            return list(valid[: config["eval_limit"] or None])
        raise ValueError(f"unknown split {split!r} (train, valid, test)")

    def data_hash(self, examples):
        return text_hash(f"{e['label']}\t{e['sentence']}" for e in examples)

    def tokenizer_texts(self, config, examples):
        # The form the model tokenizes (SST's text is already in it; raw text is not).
        texts = normalize_sst([e["sentence"] for e in examples],
                                              config["lowercase"])
        return [text.decode("utf-8") for text in texts.numpy()]

    def prepare(self, config, tokenizer, train_examples, valid_examples):
        train_ids, train_labels = encode(config, tokenizer, train_examples)
        valid_ids, valid_labels = encode(config, tokenizer, valid_examples)
        if len(train_labels) < 2 * config["batch_size"]:
            raise ValueError(f"only {len(train_labels)} training examples: too few for "
                             f"batch_size={config['batch_size']}; raise train_limit")
        width = BUCKET_WIDTH if config["jit_compile"] else 2  # see make_dataset
        # SST-2's training rows are mostly phrases (median 7 words) and its test rows whole
        # sentences (mean 20 words): `weight_by_length` makes each row count by its length.
        weights = length_weights(train_ids) if config["weight_by_length"] else None
        train = make_dataset(train_ids, train_labels, config["batch_size"], shuffle=True,
                             seed=config["seed"], bucket_width=width, repeat=True,
                             weights=weights)
        valid = make_dataset(valid_ids, valid_labels, config["batch_size"], bucket_width=width)
        return PreparedData(train, valid, max(1, len(train_labels) // config["batch_size"]),
                            int(tf.reduce_sum(train_ids.row_lengths())), len(train_labels))

    def initialize(self, model, config, tokenizer, train_examples):
        """`word_vectors`: every member's embedding starts from skip-gram vectors of the
        subword pieces, learned from the training sentences and the unlabeled English of
        `word_vector_corpora` (pieces never seen keep their random init)."""
        return initialize_embeddings(
            [tower.encoder.embedding.embeddings for tower in model.towers], tokenizer,
            [e["sentence"] for e in train_examples], config,
            normalize=lambda t: normalize_sst(t, config["lowercase"]))

    def loss(self, config):
        import keras

        return keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config["label_smoothing"])

    def compile_metrics(self, config):
        import keras

        return [keras.metrics.CategoricalAccuracy(name="accuracy")]

    def evaluate(self, model, config, examples):
        result = model.predict_texts([e["sentence"] for e in examples])
        predicted = np.argmax(result["probabilities"], axis=-1)
        return {"accuracy": metrics.accuracy(predicted, [e["label"] for e in examples])}

    def evaluate_served(self, signature, config, examples, batch_size=32):
        """Accuracy of an export, through its `serving_default` signature (`zoo evaluate`)."""
        predicted = []
        for start in range(0, len(examples), batch_size):
            texts = [e["sentence"] for e in examples[start:start + batch_size]]
            probabilities = signature(text=tf.constant(texts))["probabilities"].numpy()
            predicted += list(np.argmax(probabilities, axis=-1))
        return {"accuracy": metrics.accuracy(predicted, [e["label"] for e in examples])}

    def log_artifacts(self, model, config, examples, directory):
        """Per-token attention heatmaps (hops × tokens) of a few validation sentences and a
        sample table (text, label, prediction, probability)."""
        count = max(config["heatmaps"], config["samples"])
        examples = examples[:count]
        result = model.predict_texts([e["sentence"] for e in examples])
        heatmap_dir = directory / "attention"
        heatmap_dir.mkdir()
        hops = [f"hop {i + 1}" for i in range(model.hops)]
        for index in range(min(config["heatmaps"], len(examples))):
            label = model.labels[examples[index]["label"]]
            predicted = result["labels"][index]
            probability = float(result["probabilities"][index].max())
            plot_attention(result["attention"][index], result["tokens"][index], hops,
                           path=heatmap_dir / f"sentence_{index:02d}.png",
                           title=f"predicted {predicted} ({probability:.2f}), label {label}")
        mlflow.log_artifacts(str(heatmap_dir), "attention")
        samples = examples[: config["samples"]]
        columns = {
            "text": [e["sentence"] for e in samples],
            "label": [model.labels[e["label"]] for e in samples],
            "prediction": result["labels"][: len(samples)],
            "probability": [round(float(p.max()), 4)
                            for p in result["probabilities"][: len(samples)]],
        }
        log_sample_table(columns, directory, "predictions")
