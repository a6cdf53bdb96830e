"""tf.data pipelines for summarization: in-graph tokenization, long sources cut, batches grouped by
source and summary length.

Unlike translation (`translation_data.make_dataset`, which pads both sides of an XLA batch to
one bucket boundary), sources and summaries have very different lengths (AESLC: ~110 subwords
→ ~6), so each side is padded on its own: the decoder loop runs for the summary's length, not
the e-mail's.
"""

import tensorflow as tf

from zoo.tasks.translation_data import marked_pairs


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
