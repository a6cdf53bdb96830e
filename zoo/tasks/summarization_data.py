"""tf.data pipelines for summarization: in-graph tokenization, long sources cut, batches grouped by
source and summary length.

Unlike translation (`translation_data.make_dataset`, which pads both sides of an XLA batch to
one bucket boundary), sources and summaries have very different lengths (AESLC: ~110 subwords
→ ~6), so each side is padded on its own: the decoder loop runs for the summary's length, not
the e-mail's.
"""

import tensorflow as tf

from zoo.tasks.base import PreparedData
from zoo.tasks.translation_data import BUCKET_WIDTH, marked_pairs


def tokenize_documents(tokenizer, sources, targets, max_source, max_target, lowercase=True):
    """Tokenize in-graph, lower-casing first if asked; cut sources to `max_source` and
    targets to `max_target` subwords. Returns ragged `(source_ids, target_ids)` (no BOS/EOS)."""
    sources, targets = tf.constant(sources), tf.constant(targets)
    if lowercase:
        sources = tf.strings.lower(sources, encoding="utf-8")
        targets = tf.strings.lower(targets, encoding="utf-8")
    return (tokenizer.tokenize(sources)[:, :max_source],
            tokenizer.tokenize(targets)[:, :max_target])


def _pad_to_multiple(ids, multiple):
    length = tf.shape(ids)[1]
    padded = (length + multiple - 1) // multiple * multiple
    return tf.pad(ids, [[0, 0], [0, padded - length]])


def make_summary_dataset(source_ids, target_ids, batch_size, shuffle=False, seed=0,
                         drop_remainder=True, bucket_widths=(16, 8), pad_to_multiple=1,
                         repeat=False):
    """Batches of `({"source_ids", "target_in"}, target_out)`: `source_ids` EOS-ended,
    `target_in` = BOS + summary, `target_out` = summary + EOS.

    A batch holds examples of one (source length, summary length) bucket, `bucket_widths`
    wide, each side 0-padded to the batch's longest, then up to a multiple of
    `pad_to_multiple` (8 for an XLA train step: few shapes to compile). Bucketing by the
    summary too matters: grouped by source alone, DialogSum batches ran the decoder for 81
    steps (one long reference per batch) where the mean summary has 34. `repeat` repeats the
    shuffled stream before grouping, so a bucket's leftovers start the next pass instead of
    being dropped.
    """
    dataset = marked_pairs(source_ids, target_ids, shuffle, seed, repeat)

    def bucket(source, target_in, target_out):
        source_width, target_width = bucket_widths
        row = (tf.shape(source)[0] - 1) // source_width
        return tf.cast(row * 1024 + (tf.shape(target_in)[0] - 1) // target_width, tf.int64)

    dataset = dataset.group_by_window(
        key_func=bucket,
        reduce_func=lambda key, window: window.padded_batch(batch_size,
                                                            drop_remainder=drop_remainder),
        window_size=batch_size)
    dataset = dataset.map(
        lambda source, target_in, target_out: (
            {"source_ids": _pad_to_multiple(source, pad_to_multiple),
             "target_in": _pad_to_multiple(target_in, pad_to_multiple)},
            _pad_to_multiple(target_out, pad_to_multiple)),
        num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def prepare_pairs(config, train, valid, what="examples"):
    """`PreparedData` of tokenized ragged `(source_ids, target_ids)` pairs, `train` and
    `valid`: shuffled, repeated training batches and the validation batches.

    With an XLA train step (`jit_compile`) both sides are padded to multiples of 8 (one
    program per shape); graph mode pads each batch to its longest source and target."""
    train_src, train_tgt = train
    kept = int(train_src.nrows())
    if kept < 2 * config["batch_size"]:
        raise ValueError(f"only {kept} training {what}: too few for batch_size="
                         f"{config['batch_size']}; raise train_limit or lower batch_size")
    multiple = BUCKET_WIDTH if config["jit_compile"] else 1
    train_batches = make_summary_dataset(train_src, train_tgt, config["batch_size"],
                                         shuffle=True, seed=config["seed"],
                                         pad_to_multiple=multiple, repeat=True)
    valid_batches = make_summary_dataset(*valid, config["batch_size"], drop_remainder=False,
                                         pad_to_multiple=multiple)
    tokens = int(tf.reduce_sum(train_tgt.row_lengths())) + kept  # + EOS each
    return PreparedData(train_batches, valid_batches, max(1, kept // config["batch_size"]),
                        tokens, kept)
