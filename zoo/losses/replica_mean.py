"""A loss's share of the global batch mean under `tf.distribute`."""

import tensorflow as tf


def replica_mean(total, count, rows):
    """`total / count` of the global batch, as one replica's share of a Keras loss.

    `total` is this replica's summed loss, `count` what the loss is divided by (e.g. its real
    tokens), `rows` its examples. With one replica: `total / max(count, 1)`. Under
    tf.distribute each replica holds part of the batch, the replicas' gradients are summed,
    and Keras reports the loss as Σ (loss × replicas × rows) / Σ rows over replicas. Returning
    `total / global_count × global_rows / (replicas × rows)` makes the summed gradient that of
    the global mean and the reported loss the single-device one, also when a partial
    (validation) batch splits unevenly (training batches split evenly: the factor is 1).
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return total / tf.maximum(count, 1.0)
    rows = tf.cast(rows, total.dtype)
    global_count, global_rows = tf.unstack(
        context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stack([count, rows])))
    share = global_rows / (context.num_replicas_in_sync * tf.maximum(rows, 1.0))
    return total / tf.maximum(global_count, 1.0) * share
