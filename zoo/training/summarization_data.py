"""tf.data pipelines for summarization: in-graph tokenization, long sources cut, batches grouped by
source length and padded to multiples of 8.

Unlike translation (`translation_data.make_dataset`, which pads both sides of a batch to one
bucket boundary), sources and summaries have very different lengths (AESLC: ~150 subwords →
~6), so each side is padded to its own multiple of 8: the decoder loop runs for the summary's
length, not the e-mail's.
"""

import tensorflow as tf

from zoo.text import BOS_ID, EOS_ID
from zoo.training.translation_data import BUCKET_WIDTH


def tokenize_documents(tokenizer, sources, targets, max_source, max_target, lowercase=True):
    """Tokenize in-graph, lower-casing first if asked; cut sources to `max_source` and
    targets to `max_target` subwords. Returns ragged `(source_ids, target_ids)` (no BOS/EOS)."""
    sources, targets = tf.constant(sources), tf.constant(targets)
    if lowercase:
        sources = tf.strings.lower(sources, encoding="utf-8")
        targets = tf.strings.lower(targets, encoding="utf-8")
    return (tokenizer.tokenize(sources)[:, :max_source],
            tokenizer.tokenize(targets)[:, :max_target])


def _pad_to_multiple(ids):
    length = tf.shape(ids)[1]
    padded = (length + BUCKET_WIDTH - 1) // BUCKET_WIDTH * BUCKET_WIDTH
    return tf.pad(ids, [[0, 0], [0, padded - length]])


def make_summary_dataset(source_ids, target_ids, batch_size, shuffle=False, seed=0,
                         drop_remainder=True):
    """Batches of `({"source_ids", "target_in"}, target_out)`: `source_ids` EOS-ended,
    `target_in` = BOS + summary, `target_out` = summary + EOS; a batch holds sources of one
    8-wide length bucket, each side 0-padded to a multiple of 8."""
    dataset = tf.data.Dataset.from_tensor_slices((source_ids, target_ids))
    if shuffle:
        dataset = dataset.shuffle(int(source_ids.nrows()), seed=seed,
                                  reshuffle_each_iteration=True)

    def add_markers(source, target):
        eos = tf.constant([EOS_ID], tf.int32)
        bos = tf.constant([BOS_ID], tf.int32)
        return (tf.concat([source, eos], 0), tf.concat([bos, target], 0),
                tf.concat([target, eos], 0))

    dataset = dataset.map(add_markers, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.group_by_window(
        key_func=lambda source, *_: tf.cast((tf.shape(source)[0] - 1) // BUCKET_WIDTH,
                                            tf.int64),
        reduce_func=lambda key, window: window.padded_batch(batch_size,
                                                            drop_remainder=drop_remainder),
        window_size=batch_size)
    dataset = dataset.map(
        lambda source, target_in, target_out: (
            {"source_ids": _pad_to_multiple(source), "target_in": _pad_to_multiple(target_in)},
            _pad_to_multiple(target_out)),
        num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
