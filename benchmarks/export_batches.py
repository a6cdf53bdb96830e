"""Export the zoo's own Multi30k batches once, for framework-neutral comparisons.

    python benchmarks/export_batches.py [--set key=value ...] [--train-batches 400]

Runs what `zoo train` runs before `fit` — the config, the seed, the SentencePiece tokenizer
trained on the training texts, `TranslationTask.prepare` (length buckets padded to multiples
of 8, shuffled with the config's seed) — and writes to an `.npz` (under the git-ignored
`.cache/bench/`, derived from `$ZOO_DATA_DIR`, never committed):
the first N training batches in the order `fit` sees them, every validation batch, the test
sources as EOS-terminated id lists, the tokenizer and the model sizes. `torch_luong.py` and
`per_step_diagnosis.py` read it, so both frameworks see identical padded batches in the same
order.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / ".cache" / "bench" / "multi30k_luong_batches.npz"
SIZE_KEYS = ("vocab_size", "embedding_dim", "encoder_units", "encoder_layers", "bidirectional",
             "decoder_units", "dropout")


def export(overrides=None, train_batches=400, path=DEFAULT_PATH):
    import keras
    import tensorflow as tf

    import zoo.training  # noqa: F401  (first: zoo.tasks.translation ↔ zoo.training import cycle)
    from zoo.models import catalog
    from zoo.tasks import get_task
    from zoo.text import EOS_ID, SubwordTokenizer

    config = catalog.resolve_config("luong_translator", overrides or {})
    keras.utils.set_random_seed(config["seed"])  # as the trainer does, before the data
    task = get_task(config["task"])
    train = task.read_split(config, "train")
    valid = task.read_split(config, "valid")
    test = task.read_split(config, "test")
    tokenizer = SubwordTokenizer.train(task.tokenizer_texts(config, train),
                                       vocab_size=config["vocab_size"])
    prepared = task.prepare(config, tokenizer, train, valid)
    arrays = {}

    def put(split, index, inputs, target_out):
        arrays[f"{split}_source_{index}"] = inputs["source_ids"].numpy().astype(np.int32)
        arrays[f"{split}_target_in_{index}"] = inputs["target_in"].numpy().astype(np.int32)
        arrays[f"{split}_target_out_{index}"] = target_out.numpy().astype(np.int32)

    for index, (inputs, target_out) in enumerate(prepared.train.take(train_batches)):
        put("train", index, inputs, target_out)
    arrays["train_count"] = np.array(train_batches)
    count = 0
    for count, (inputs, target_out) in enumerate(prepared.valid, 1):
        put("valid", count - 1, inputs, target_out)
    arrays["valid_count"] = np.array(count)
    test_ids = tokenizer.tokenize(tf.constant(test[0])).to_list()
    for index, ids in enumerate(test_ids):
        arrays[f"test_source_{index}"] = np.array([*ids, EOS_ID], np.int32)
    arrays["test_count"] = np.array(len(test_ids))
    arrays["tokenizer"] = np.frombuffer(tokenizer.model_proto, np.uint8)
    meta = {key: config[key] for key in SIZE_KEYS} | {
        "vocab_size": tokenizer.vocab_size, "config": config,
        "steps_per_epoch": prepared.steps_per_epoch, "train_examples": prepared.examples}
    arrays["meta"] = np.array(json.dumps(meta))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez_compressed(temporary, **arrays)
    temporary.replace(path)
    return path, meta


def keras_model_for(path=DEFAULT_PATH, **overrides):
    """The Keras `luong_translator` of an export (its config and tokenizer), freshly built."""
    from zoo.models import catalog
    from zoo.text import SubwordTokenizer

    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    builder = catalog.get_builder(meta["config"]["model"])
    # Keys the builder gained since the export get their defaults.
    config = builder.defaults() | meta["config"] | overrides
    tokenizer = SubwordTokenizer(data["tokenizer"].tobytes())
    return builder.build(config, tokenizer=tokenizer)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--train-batches", type=int, default=400)
    parser.add_argument("--output", default=str(DEFAULT_PATH))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from zoo.config import parse_assignment

    overrides = dict(parse_assignment(item) for item in args.set)
    path, meta = export(overrides, args.train_batches, args.output)
    print(f"wrote {path}: {args.train_batches} train batches, vocab {meta['vocab_size']}, "
          f"{meta['train_examples']} training pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
