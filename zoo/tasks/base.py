"""What `zoo train` needs to know about a task. The trainer (`zoo.training.trainer`) owns the
rest: the MLflow run, seeding, checkpoints, the time budget, `fit`, the registry."""

import dataclasses
import hashlib

import mlflow
import tensorflow as tf

from zoo.text.word_vectors import embedding_tables, initialize_embeddings


@dataclasses.dataclass
class PreparedData:
    """A task's tf.data input for `model.fit`.

    Attributes:
        train: batches `(inputs, targets)`, repeated forever (the trainer passes
            `steps_per_epoch`; bucketing makes the count of full batches vary per shuffle).
        valid: finite batches for the validation loss.
        steps_per_epoch: batches in one pass over the kept training examples.
        tokens_per_epoch: the unit of throughput (target tokens for generation tasks, input
            tokens for classification and QA), logged as `<unit>_per_second`.
        examples: training examples kept (after length filters).
    """

    train: tf.data.Dataset
    valid: tf.data.Dataset
    steps_per_epoch: int
    tokens_per_epoch: int
    examples: int


class Task:
    """One task (translation, summarization, qa, sentiment): data, loss, metrics, artifacts.

    Subclasses set `name` (the MLflow experiment and the `task` config key), `headline` (the
    metric printed at the end, e.g. "bleu") and implement the methods below. `split` is
    "train", "valid" or "test"; `examples` are whatever `read_split` returns (a list of
    pairs, dicts, ...), untokenized.
    """

    name = None
    headline = None

    def read_split(self, config, split):
        """The untokenized examples of `split` (errors name the data file and line)."""
        raise NotImplementedError

    def data_hash(self, examples):
        """A short content hash of the training examples (resume refuses changed data)."""
        return text_hash(repr(example) for example in examples)

    def tokenizer_texts(self, config, examples):
        """The training texts the SentencePiece vocabulary is learned from."""
        raise NotImplementedError

    def prepare(self, config, tokenizer, train_examples, valid_examples):
        """Tokenize in-graph and batch: a `PreparedData`."""
        raise NotImplementedError

    def initialize(self, model, config, tokenizer, train_examples):
        """Sets initial weights before the first epoch; returns a dict of metrics to log, or
        None when it left the layers' own init. The trainer counts its time in the run's time
        budget (logged as `initialize_seconds`); a resumed run restores its checkpoint instead.

        The default: with `word_vectors: <path>`, every embedding table starts from that
        file's word vectors (`zoo.text.word_vectors`), the pieces' words taken from the
        training texts."""
        return initialize_embeddings(embedding_tables(model, tokenizer.vocab_size), tokenizer,
                                     self.tokenizer_texts(config, train_examples), config)

    def loss(self, config):
        """The Keras loss (or dict of losses) `model.compile` gets."""
        raise NotImplementedError

    def compile_metrics(self, config):
        """Extra Keras metrics for `model.compile` (default none)."""
        return

    def evaluate(self, model, config, examples):
        """Task metrics of `model` on `examples`, unprefixed (e.g. `{"bleu": 35.1}`); the
        trainer logs them as `val_<name>` per epoch and `test_<name>` at the end."""
        raise NotImplementedError

    def evaluate_during_training(self, model, config, examples):
        """The per-epoch validation metrics (default `evaluate`; a task may score a subset to
        keep epochs short)."""
        return self.evaluate(model, config, examples)

    def evaluate_served(self, signature, config, examples):
        """Task metrics of an exported model: `signature` is its loaded `serving_default`
        (a concrete function of the SavedModel). Tasks that support `zoo evaluate EXPORT_DIR`
        implement it."""
        raise NotImplementedError(f"evaluating an export of a {self.name} model is not "
                                  "supported; evaluate its run instead")

    def log_artifacts(self, model, config, examples, directory):
        """Attention heatmaps and sample outputs of a few validation examples, logged with
        `mlflow.log_artifact(s)` / `mlflow.log_table` (`directory`: a fresh temp dir)."""


def served_in_length_order(signature, inputs, lengths, output, batch_size):
    """`signature`'s string `output` for every example, decoded, in the examples' order.

    `inputs` maps each input name to one string per example. Batches are formed in order of
    `lengths` (one per example) so that each batch pads little: fewer decoding / recurrent
    steps on padding."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    results = [None] * len(order)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        values = signature(**{name: tf.constant([column[i] for i in chunk])
                              for name, column in inputs.items()})[output].numpy()
        for index, value in zip(chunk, values, strict=True):
            results[index] = value.decode("utf-8")
    return results


def text_hash(texts):
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def log_sample_table(columns, directory, stem):
    """`columns` (name → list of strings) as an MLflow table and a TSV under `samples/`."""
    mlflow.log_table(columns, artifact_file=f"samples/{stem}.json")
    lines = ["\t".join(columns)] + [
        "\t".join(str(cell).replace("\t", " ").replace("\n", " ") for cell in row)
        for row in zip(*columns.values(), strict=True)]
    path = directory / f"{stem}.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mlflow.log_artifact(str(path), "samples")
