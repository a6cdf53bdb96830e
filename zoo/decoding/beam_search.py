"""Beam search with GNMT length and coverage penalties."""

import tensorflow as tf

from zoo.decoding.strategy import (
    NEG_INF,
    STRATEGIES,
    DecodingResult,
    DecodingStrategy,
    restrict_logits,
    write_step,
)
from zoo.text import BOS_ID, EOS_ID, PAD_ID

# Accumulated attention below this counts as this (log 0 would be -inf): a source position
# that hard, monotonic or local attention never looked at costs `log(1e-6) ≈ -13.8` × β.
COVERAGE_FLOOR = 1e-6


def length_penalty(lengths, alpha):
    """Wu et al. 2016 (GNMT): `lp(Y) = ((5 + |Y|) / 6) ** α`; α = 0 gives 1."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def coverage_penalty(coverage, source_mask, beta):
    """Wu et al. 2016: `cp = β · Σ_i log(min(Σ_j p_ij, 1))` over the real source positions
    (`coverage` is `Σ_j p_ij`, `[..., S]`; accumulated attention is floored at
    `COVERAGE_FLOOR`)."""
    covered = tf.clip_by_value(coverage, COVERAGE_FLOOR, 1.0)
    return beta * tf.reduce_sum(tf.math.log(covered) * source_mask, axis=-1)


@STRATEGIES.register("beam")
class BeamSearch(DecodingStrategy):
    """Beam search (as OpenNMT-tf's `BeamSearch`), in an XLA-compilable `tf.while_loop`.

    Keeps `beam_width` hypotheses per sentence. At each step every hypothesis is extended
    by every token and the `beam_width` best candidates survive, ranked by

        score = log P(Y | X) / lp(Y) + cp(X; Y)

    with the GNMT length penalty `lp(Y) = ((5 + |Y|) / 6) ** length_penalty` (|Y| counts
    EOS) and coverage penalty `cp = coverage_penalty · Σ_i log(min(Σ_j p_ij, 1))` over the
    real source positions, added to finished hypotheses only (those ending in EOS now or
    earlier). A finished hypothesis stays in the beam with its score frozen (its only
    continuation is padding at no cost) until better ones push it out; the loop stops when
    all hypotheses of all sentences have finished, or after `max_length` steps (unfinished
    hypotheses are then returned without EOS). With `beam_width=1` and no coverage penalty
    this is exactly greedy search.

    Args:
        beam_width: int ≥ 1, hypotheses kept per sentence (≤ vocabulary size − 2).
        length_penalty: float α ≥ 0; 0 ranks by plain log-probability (favouring short
            hypotheses), larger values favour longer ones.
        coverage_penalty: float β ≥ 0; penalises hypotheses that leave source positions
            unattended (needs a model with attention).
        n_best: int, 1 ≤ n_best ≤ beam_width, hypotheses returned per sentence.

    Example:

    ```python
    search = BeamSearch(beam_width=5, length_penalty=0.6, n_best=2)
    memory, mask, state = search.tile((memory, mask, state))
    result = search.decode(step_fn, state, batch_size, max_length, mask)
    result.ids  # [batch, 2, max_length], best first
    ```
    """

    def __init__(self, beam_width=5, length_penalty=0.0, coverage_penalty=0.0, n_best=1):
        beam_width, n_best = int(beam_width), int(n_best)
        if beam_width < 1:
            raise ValueError(f"beam_width must be >= 1, got {beam_width}")
        if not 1 <= n_best <= beam_width:
            raise ValueError(f"n_best must be in [1, beam_width={beam_width}], got {n_best}")
        if length_penalty < 0 or coverage_penalty < 0:
            raise ValueError("length_penalty and coverage_penalty must be >= 0, got "
                             f"{length_penalty} and {coverage_penalty}")
        self.beam_width = beam_width
        self.length_penalty = float(length_penalty)
        self.coverage_penalty = float(coverage_penalty)
        self.n_best = n_best

    @classmethod
    def from_strategy_config(cls, config):
        return cls(config.get("beam_width", 5),
                   length_penalty=config.get("length_penalty", 0.0),
                   coverage_penalty=config.get("coverage_penalty", 0.0),
                   n_best=config.get("n_best", 1))

    def __repr__(self):
        return (f"BeamSearch(beam_width={self.beam_width}, length_penalty="
                f"{self.length_penalty}, coverage_penalty={self.coverage_penalty}, "
                f"n_best={self.n_best})")

    def decode(self, step_fn, initial_state, batch_size, max_length, source_mask,
               start_id=BOS_ID, end_id=EOS_ID):
        beam = self.beam_width
        source_length = tf.shape(source_mask)[1]
        real = tf.reshape(tf.cast(source_mask, tf.float32), [batch_size, beam, source_length])
        tokens = tf.fill([batch_size * beam], tf.constant(start_id, tf.int32))
        # All hypotheses start as the same empty one: only the first may be extended.
        first = tf.constant([0.0] + [NEG_INF] * (beam - 1), tf.float32)
        log_probs = tf.tile(first[None, :], [batch_size, 1])
        scores = tf.zeros([batch_size, beam], tf.float32)
        finished = tf.zeros([batch_size, beam], tf.bool)
        lengths = tf.zeros([batch_size, beam], tf.int32)
        ids = tf.zeros([batch_size, beam, max_length], tf.int32)
        attention = tf.zeros([batch_size, beam, max_length, source_length], tf.float32)
        coverage = tf.zeros([batch_size, beam, source_length], tf.float32)
        row_offsets = tf.range(batch_size)[:, None] * beam  # [B, 1]

        def cond(t, tokens, log_probs, scores, finished, *_):
            return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

        def body(t, tokens, log_probs, scores, finished, lengths, ids, attention, coverage,
                 state):
            logits, weights, state = step_fn(tokens, t, state)
            vocab = tf.shape(logits)[-1]
            step_log_probs = tf.nn.log_softmax(restrict_logits(logits, start_id))
            step_log_probs = tf.reshape(step_log_probs, [batch_size, beam, vocab])
            alive = tf.logical_not(finished)
            weights = tf.reshape(tf.cast(weights, tf.float32), [batch_size, beam, -1])
            weights = tf.where(alive[..., None], weights, 0.0)
            # A finished hypothesis has one continuation, padding, at no cost.
            tokens_range = tf.range(vocab)
            pad_only = tf.where(tf.equal(tokens_range, PAD_ID), 0.0, NEG_INF)
            step_log_probs = tf.where(finished[..., None], pad_only, step_log_probs)

            total = log_probs[..., None] + step_log_probs                    # [B, K, V]
            new_lengths = lengths + tf.cast(alive, tf.int32)                 # [B, K]
            new_coverage = coverage + weights                                # [B, K, S]
            candidates = total
            if self.length_penalty:
                candidates = candidates / length_penalty(new_lengths,
                                                         self.length_penalty)[..., None]
            if self.coverage_penalty:
                complete = tf.logical_or(finished[..., None],
                                         tf.equal(tokens_range, end_id)[None, None, :])
                penalty = coverage_penalty(new_coverage, real, self.coverage_penalty)
                candidates += tf.where(complete, penalty[..., None], 0.0)

            scores, best = tf.math.top_k(tf.reshape(candidates, [batch_size, -1]), k=beam)
            parents = best // vocab                                          # [B, K]
            next_tokens = best % vocab
            log_probs = tf.gather(tf.reshape(total, [batch_size, -1]), best, batch_dims=1)
            finished = tf.logical_or(tf.gather(finished, parents, batch_dims=1),
                                     tf.equal(next_tokens, end_id))
            lengths = tf.gather(new_lengths, parents, batch_dims=1)
            coverage = tf.gather(new_coverage, parents, batch_dims=1)
            ids = write_step(tf.gather(ids, parents, batch_dims=1), t, next_tokens, axis=2)
            attention = write_step(tf.gather(attention, parents, batch_dims=1), t,
                                   tf.gather(weights, parents, batch_dims=1), axis=2)
            rows = tf.reshape(parents + row_offsets, [-1])
            state = tf.nest.map_structure(lambda x: tf.gather(x, rows), state)
            return (t + 1, tf.reshape(next_tokens, [-1]), log_probs, scores, finished,
                    lengths, ids, attention, coverage, state)

        _, _, log_probs, scores, _, lengths, ids, attention, _, _ = tf.while_loop(
            cond, body,
            (tf.constant(0), tokens, log_probs, scores, finished, lengths, ids, attention,
             coverage, initial_state),
            maximum_iterations=max_length)
        # `top_k` keeps the beam sorted by score, best first.
        n = self.n_best
        return DecodingResult(ids=ids[:, :n], lengths=lengths[:, :n],
                              log_probs=log_probs[:, :n], scores=scores[:, :n],
                              attention=attention[:, :n])
