"""Translation batches: bucket padding for XLA, batch-max padding for graph mode."""

import numpy as np
import tensorflow as tf

from zoo.tasks.translation_data import make_dataset
from zoo.text import BOS_ID, EOS_ID


def _pairs(count=300, seed=0):
    rng = np.random.default_rng(seed)
    sources = [rng.integers(4, 50, rng.integers(1, 30)).tolist() for _ in range(count)]
    targets = [rng.integers(4, 50, rng.integers(1, 30)).tolist() for _ in range(count)]
    return tf.ragged.constant(sources, tf.int32), tf.ragged.constant(targets, tf.int32)


def test_xla_buckets_pad_to_multiples_of_eight():
    sources, targets = _pairs()
    for inputs, target_out in make_dataset(sources, targets, 16, bucket_width=8):
        assert inputs["source_ids"].shape[1] % 8 == 0
        assert inputs["source_ids"].shape[1] == inputs["target_in"].shape[1]
        assert target_out.shape == inputs["target_in"].shape


def test_graph_mode_pads_each_side_to_its_batch_longest():
    sources, targets = _pairs()
    shapes = set()
    for inputs, target_out in make_dataset(sources, targets, 16, bucket_width=2,
                                           drop_remainder=False):
        source, target_in = inputs["source_ids"].numpy(), inputs["target_in"].numpy()
        # the longest row of each side has no padding at its end
        assert (source[:, -1] != 0).any() and (target_in[:, -1] != 0).any()
        assert (target_in[:, 0] == BOS_ID).all()
        lengths = (target_out.numpy() != 0).sum(1)
        assert (target_out.numpy()[np.arange(len(lengths)), lengths - 1] == EOS_ID).all()
        shapes.add(source.shape[1])
    assert len(shapes) > 4  # not one padded shape for all


def test_repeat_before_bucketing_drops_nothing():
    sources, targets = _pairs(count=203)
    stream = make_dataset(sources, targets, 16, shuffle=True, bucket_width=2, repeat=True)
    seen = 0
    for inputs, _ in stream.take(40):  # 640 examples: more than 3 passes
        assert inputs["source_ids"].shape[0] == 16
        seen += 16
    assert seen == 640
