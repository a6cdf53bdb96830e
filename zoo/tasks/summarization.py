"""Abstractive summarization (AESLC subject lines, DialogSum dialogues): ROUGE-1/2/L F1."""

import mlflow
import numpy as np
import tensorflow as tf

from zoo import metrics
from zoo.data.aeslc import load_aeslc
from zoo.data.dialogsum import load_dialogsum
from zoo.losses import SmoothedSequenceLoss
from zoo.tasks import TASKS
from zoo.tasks.base import (
    Task,
    log_sample_table,
    served_in_length_order,
    text_hash,
)
from zoo.tasks.sequence_outputs import apply_decoding_config, batched_translate, token_strings
from zoo.tasks.summarization_data import prepare_pairs, tokenize_documents
from zoo.text import BOS_ID, PAD_ID
from zoo.text.word_vectors import initialize_embeddings
from zoo.viz import plot_attention

# dataset → (reader, source field, reference of an example). Train and test come from the
# files; neither set ships a validation split, so `valid_size` examples are held out of train.
DATASETS = {
    "aeslc": (load_aeslc, "source", lambda example: example["target"]),
    "dialogsum": (load_dialogsum, "dialogue", lambda example: example["summaries"][0]),
}
VALID_SEED = 20170414  # fixed, not the run's seed: every run validates on the same examples
HEATMAP_COLUMNS = 100  # source columns drawn at most (the most attended ones)
EXCERPT_CHARS = 300


@TASKS.register("summarization")
class SummarizationTask(Task):
    """Examples are `(sources, references)` lists of strings: the e-mail body and its original
    subject line (AESLC, `target`), or the dialogue and its first summary (DialogSum,
    `summaries[0]`, the reference the published BART baseline is scored against)."""

    name = "summarization"
    headline = "rouge1"
    output_name = "summary"

    def read_split(self, config, split):
        if config["dataset"] not in DATASETS:
            raise ValueError(f"key 'dataset': unknown summarization dataset "
                             f"{config['dataset']!r} ({', '.join(DATASETS)})")
        reader, source_field, reference = DATASETS[config["dataset"]]
        if split == "test":
            examples = reader("test")
        else:
            examples = reader("train")
            held_out = held_out_indices(len(examples), config["valid_size"])
            if split == "valid":
                examples = [examples[i] for i in sorted(held_out)]
            else:
                # Held out by source, every copy: AESLC's train file repeats 934 bodies (mass
                # mails, forwards), so 45 of the 500 validation e-mails would otherwise have a
                # copy in training, recalled rather than summarised. The test file shares no
                # body with train.
                held_out_sources = {examples[i][source_field] for i in held_out}
                examples = [e for e in examples if e[source_field] not in held_out_sources]
        limit = config["train_limit"] if split == "train" else config["eval_limit"]
        examples = examples[:limit] if limit else examples
        return [e[source_field] for e in examples], [reference(e) for e in examples]

    def data_hash(self, examples):
        sources, references = examples
        return text_hash([*sources, *references])

    def tokenizer_texts(self, config, examples):
        texts = [*examples[0], *examples[1]]
        return [text.lower() for text in texts] if config["lowercase"] else texts

    def prepare(self, config, tokenizer, train_examples, valid_examples):
        lengths = (config["max_source_subwords"], config["max_target_subwords"],
                   config["lowercase"])
        return prepare_pairs(config, tokenize_documents(tokenizer, *train_examples, *lengths),
                             tokenize_documents(tokenizer, *valid_examples, *lengths))

    def initialize(self, model, config, tokenizer, train_examples):
        """`word_vectors`: the shared source/summary embedding of every member starts from
        skip-gram vectors of the pieces, learned from the training e-mails or dialogues and
        their summaries (never the held-out validation ones) plus the unlabeled English of
        `word_vector_corpora`."""
        lowercase = config["lowercase"]
        return initialize_embeddings(
            [encoder.embedding.embeddings for encoder, _, _ in model.member_layers()],
            tokenizer, [*train_examples[0], *train_examples[1]], config,
            normalize=lambda t: tf.strings.lower(t, encoding="utf-8") if lowercase else t)

    def loss(self, config):
        # The model outputs normalised log-probabilities of the copy/generate mixture; the
        # loss's log-softmax leaves them unchanged, so it is the mixture's NLL (smoothed).
        return SmoothedSequenceLoss(config["label_smoothing"])

    def evaluate(self, model, config, examples, limit=None):
        apply_decoding_config(model, config)  # e.g. `zoo evaluate --set decoding=beam`
        sources, references = examples
        if limit:
            sources, references = sources[:limit], references[:limit]
        return metrics.rouge(batched_translate(model, sources), references)

    def evaluate_served(self, signature, config, examples, batch_size=32):
        """ROUGE of an export (`zoo evaluate EXPORT_DIR`): its `summary` output, batched by
        source length like `evaluate`."""
        sources, references = examples
        summaries = served_in_length_order(signature, {"text": sources},
                                           [len(s) for s in sources], self.output_name,
                                           batch_size)
        return metrics.rouge(summaries, references)

    def evaluate_during_training(self, model, config, examples):
        return self.evaluate(model, config, examples, limit=config["val_rouge_limit"] or None)

    def log_artifacts(self, model, config, examples, directory):
        """Attention heatmaps of a few validation examples; a sample table with a source
        excerpt, the reference, the summary and its mean copy switch `p_gen`."""
        sources, references = examples
        count = max(config["heatmaps"], config["samples"])
        sources, references = sources[:count], references[:count]
        summaries, result, source_ids = model.translate(sources, return_attention=True)
        p_gen = mean_p_gen(model, source_ids, result["ids"])
        heatmap_dir = directory / "attention"
        heatmap_dir.mkdir()
        for index in range(min(config["heatmaps"], len(sources))):
            weights = result["attention"][index].numpy()
            source_tokens = token_strings(model.tokenizer, source_ids[index])
            summary_tokens = token_strings(model.tokenizer, result["ids"][index])
            weights = weights[: len(summary_tokens), : len(source_tokens)]
            columns = np.arange(len(source_tokens))
            title = f"{summaries[index]}  (mean p_gen {p_gen[index]:.2f})"
            if len(columns) > HEATMAP_COLUMNS:
                columns = np.sort(np.argsort(-weights.sum(0), kind="stable")[:HEATMAP_COLUMNS])
                title += (f"\nthe {HEATMAP_COLUMNS} most attended of {len(source_tokens)} "
                          "source subwords")
            plot_attention(weights[:, columns], [source_tokens[i] for i in columns],
                           summary_tokens, path=heatmap_dir / f"summary_{index:02d}.png",
                           title=title)
        mlflow.log_artifacts(str(heatmap_dir), "attention")
        n = config["samples"]
        samples = {"source": [excerpt(text) for text in sources[:n]],
                   "reference": references[:n], self.output_name: summaries[:n],
                   "p_gen": [round(float(value), 3) for value in p_gen[:n]]}
        log_sample_table(samples, directory, "summaries")


def held_out_indices(count, size):
    """The `size` example indices (of `count`) held out of train for validation."""
    if size >= count:
        raise ValueError(f"key 'valid_size' ({size}) must be smaller than the {count} "
                         "training examples")
    return set(np.random.default_rng(VALID_SEED).permutation(count)[:size].tolist())


def mean_p_gen(model, source_ids, summary_ids):
    """Mean generation probability `p_gen` over each summary's tokens (teacher-forcing the
    model on its own output); 1 − p_gen is the weight on copying."""
    summary_ids = tf.cast(summary_ids, tf.int32)
    target_in = tf.concat([tf.fill([tf.shape(summary_ids)[0], 1], BOS_ID),
                           summary_ids[:, :-1]], axis=1)
    p_gen = model.teacher_forced(source_ids, target_in, training=False)["p_gen"].numpy()
    real = (summary_ids.numpy() != PAD_ID).astype(np.float32)
    return (p_gen * real).sum(1) / np.maximum(real.sum(1), 1.0)


def excerpt(text, chars=EXCERPT_CHARS):
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " …"
