"""Greedy search: the most probable next token at every step."""

import tensorflow as tf

from zoo.decoding.strategy import (
    STRATEGIES,
    DecodingResult,
    DecodingStrategy,
    restrict_logits,
    write_step,
)
from zoo.text import BOS_ID, EOS_ID, PAD_ID


@STRATEGIES.register("greedy")
class GreedySearch(DecodingStrategy):
    """Greedy decoding in an XLA-compilable `tf.while_loop`.

    Each step feeds back the argmax token; a row is finished at its first EOS, after which
    it emits padding (0) and zero attention. The loop stops when every row has finished or
    after `max_length` steps. Returns one hypothesis per sentence (`n_best = 1`); its score
    is its log-probability.

    Example:

    ```python
    result = GreedySearch().decode(step_fn, state, batch_size, max_length, source_mask)
    result.ids[:, 0]  # [batch, max_length]
    ```
    """

    def decode(self, step_fn, initial_state, batch_size, max_length, source_mask,
               start_id=BOS_ID, end_id=EOS_ID):
        source_length = tf.shape(source_mask)[1]
        tokens = tf.fill([batch_size], tf.constant(start_id, tf.int32))
        finished = tf.zeros([batch_size], tf.bool)
        lengths = tf.zeros([batch_size], tf.int32)
        log_probs = tf.zeros([batch_size], tf.float32)
        ids = tf.zeros([batch_size, max_length], tf.int32)
        attention = tf.zeros([batch_size, max_length, source_length], tf.float32)

        def cond(t, tokens, finished, *_):
            return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

        def body(t, tokens, finished, lengths, log_probs, ids, attention, state):
            logits, weights, state = step_fn(tokens, t, state)
            step_log_probs = tf.nn.log_softmax(restrict_logits(logits, start_id))
            next_tokens = tf.argmax(step_log_probs, axis=-1, output_type=tf.int32)
            chosen = tf.gather(step_log_probs, next_tokens, axis=1, batch_dims=1)
            alive = tf.logical_not(finished)
            next_tokens = tf.where(alive, next_tokens, PAD_ID)
            weights = tf.where(alive[:, None], tf.cast(weights, tf.float32), 0.0)
            log_probs += tf.where(alive, chosen, 0.0)
            lengths += tf.cast(alive, tf.int32)
            ids = write_step(ids, t, next_tokens, axis=1)
            attention = write_step(attention, t, weights, axis=1)
            finished = tf.logical_or(finished, tf.equal(next_tokens, end_id))
            return t + 1, next_tokens, finished, lengths, log_probs, ids, attention, state

        _, _, _, lengths, log_probs, ids, attention, _ = tf.while_loop(
            cond, body,
            (tf.constant(0), tokens, finished, lengths, log_probs, ids, attention,
             initial_state),
            maximum_iterations=max_length)
        return DecodingResult(ids=ids[:, None], lengths=lengths[:, None],
                              log_probs=log_probs[:, None], scores=log_probs[:, None],
                              attention=attention[:, None])
