"""Translation (and any text → text task decoded by a `Translator`): sacreBLEU and chrF."""

import mlflow
import tensorflow as tf

from zoo import data as data_lib
from zoo import metrics
from zoo.losses import SmoothedSequenceLoss
from zoo.tasks import TASKS
from zoo.tasks.base import PreparedData, Task, log_sample_table, text_hash
from zoo.tasks.sequence_outputs import apply_decoding_config, batched_translate, token_strings
from zoo.tasks.translation_data import (
    BUCKET_WIDTH,
    make_dataset,
    target_token_count,
    tokenize_pairs,
)
from zoo.viz import plot_attention


@TASKS.register("translation")
class TranslationTask(Task):
    """Examples are `(sources, targets)` lists of strings."""

    name = "translation"
    headline = "bleu"
    output_name = "translation"  # the sample table's column

    def read_split(self, config, split):
        return data_lib.read_parallel(config, split)

    def data_hash(self, examples):
        sources, targets = examples
        return text_hash([*sources, *targets])

    def tokenizer_texts(self, config, examples):
        sources, targets = examples
        return sources + targets

    def prepare(self, config, tokenizer, train_examples, valid_examples):
        train_src, train_tgt, _ = tokenize_pairs(tokenizer, *train_examples,
                                                 config["max_subwords"])
        valid_src, valid_tgt, _ = tokenize_pairs(tokenizer, *valid_examples)
        kept = int(train_src.nrows())
        if kept < 2 * config["batch_size"]:
            raise ValueError(
                f"only {kept} training pairs have ≤ max_subwords={config['max_subwords']} "
                f"subwords on both sides (vocab_size={config['vocab_size']}): too few for "
                f"batch_size={config['batch_size']}; raise max_subwords, vocab_size or "
                "train_limit")
        # XLA compiles one program per shape: pad to multiples of 8 then; graph mode pads to
        # each batch's longest (less padding, see make_dataset).
        width = BUCKET_WIDTH if config["jit_compile"] else 2
        train = make_dataset(train_src, train_tgt, config["batch_size"], shuffle=True,
                             seed=config["seed"], bucket_width=width, repeat=True)
        valid = make_dataset(valid_src, valid_tgt, config["batch_size"], drop_remainder=False,
                             bucket_width=width)
        return PreparedData(train, valid, max(1, kept // config["batch_size"]),
                            target_token_count(train_tgt), kept)

    def loss(self, config):
        return SmoothedSequenceLoss(config["label_smoothing"])

    def evaluate(self, model, config, examples, limit=None):
        apply_decoding_config(model, config)
        sources, references = examples
        if limit:
            sources, references = sources[:limit], references[:limit]
        return metrics.corpus_bleu(batched_translate(model, sources), references)

    def evaluate_served(self, signature, config, examples, batch_size=32):
        sources, references = examples
        outputs = []
        for start in range(0, len(sources), batch_size):
            result = signature(text=tf.constant(sources[start:start + batch_size]))
            outputs += [t.decode("utf-8") for t in result[self.output_name].numpy()]
        return metrics.corpus_bleu(outputs, references)

    def evaluate_during_training(self, model, config, examples):
        """Validation BLEU decoded with `val_decoding` (the test split gets `decoding`)."""
        config = config | {"decoding": config.get("val_decoding", config["decoding"])}
        return self.evaluate(model, config, examples, limit=config["val_bleu_limit"] or None)

    def log_artifacts(self, model, config, examples, directory):
        """Attention heatmaps of a few validation sentences and a table of sample outputs."""
        sources, references = examples
        count = max(config["heatmaps"], config["samples"])
        sources, references = sources[:count], references[:count]
        outputs, result, source_ids = model.translate(sources, return_attention=True)
        heatmap_dir = directory / "attention"
        heatmap_dir.mkdir()
        tokenizer = model.tokenizer
        for index in range(min(config["heatmaps"], len(sources))):
            plot_attention(result["attention"][index].numpy(),
                           token_strings(tokenizer, source_ids[index]),
                           token_strings(tokenizer, result["ids"][index]),
                           path=heatmap_dir / f"sentence_{index:02d}.png",
                           title=outputs[index])
        mlflow.log_artifacts(str(heatmap_dir), "attention")
        samples = {"source": sources[: config["samples"]],
                   "reference": references[: config["samples"]],
                   self.output_name: outputs[: config["samples"]]}
        log_sample_table(samples, directory, f"{self.output_name}s")
