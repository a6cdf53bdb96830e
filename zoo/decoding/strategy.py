"""What every decoding strategy shares: the step-function contract, the result, helpers."""

import collections

import tensorflow as tf

from zoo.registry import Registry
from zoo.text import BOS_ID, EOS_ID, PAD_ID

# The strategies by the name a config's `decoding` key gives; each registers itself with
# `@STRATEGIES.register("name")` in its module, imported on the first lookup.
STRATEGIES = Registry("decoding strategy", builtins=("zoo.decoding.greedy_search",
                                                     "zoo.decoding.beam_search"))

# A log-probability no real hypothesis reaches; finite, so sums and divisions stay finite.
NEG_INF = -1e9


class DecodingResult(collections.namedtuple(
        "DecodingResult", ("ids", "lengths", "log_probs", "scores", "attention"))):
    """The hypotheses a strategy returns, best first.

    Args:
        ids: int32 `[batch, n_best, T]`, EOS-terminated, 0 (padding) after EOS; T is the
            maximum length (fixed-size buffer; decoding may stop earlier).
        lengths: int32 `[batch, n_best]`, tokens up to and including EOS.
        log_probs: float32 `[batch, n_best]`, the summed log-probabilities of the tokens.
        scores: float32 `[batch, n_best]`, what the hypotheses are ranked by (`log_probs`
            for greedy search; length- and coverage-penalised for beam search).
        attention: float32 `[batch, n_best, T, S]`, the attention weights of each step of
            each hypothesis (zeros after EOS).
    """


class DecodingStrategy:
    """Base class of decoding strategies (in the style of OpenNMT-tf's `DecodingStrategy`).

    A strategy runs a model's one-step function in a `tf.while_loop` that compiles under XLA
    (`tf.function(jit_compile=True)`): fixed-size buffers, `maximum_iterations`, no dynamic
    shapes. The model provides

        step_fn(tokens int32 [N], step int32 scalar, state) -> (logits [N, V],
                                                               attention [N, S], next_state)

    with `state` any nest of tensors whose first axis is N. For beam search N is
    `batch × beam_width` (rows `b * beam_width + k`): the model passes its per-sentence
    tensors (encoder memory, mask, initial state) through `tile` first.
    """

    beam_width = 1
    n_best = 1

    @staticmethod
    def from_config(config):
        """The strategy a flat model config asks for.

        Args:
            config: a mapping with `decoding` (a name of `STRATEGIES`: "greedy", "beam") and
                that strategy's keys (`beam_width`, `length_penalty`, `coverage_penalty`,
                `n_best` for beam search).

        Returns:
            A `DecodingStrategy`.

        Example:

        ```python
        DecodingStrategy.from_config({"decoding": "beam", "beam_width": 4})  # BeamSearch
        ```
        """
        decoding = config.get("decoding", "greedy")
        if decoding not in STRATEGIES:
            raise ValueError(f"decoding must be one of {', '.join(STRATEGIES.names())}, got "
                             f"{decoding!r}")
        return STRATEGIES.get(decoding).from_strategy_config(config)

    @classmethod
    def from_strategy_config(cls, config):
        """This strategy with the options `config` gives (none by default)."""
        return cls()

    def tile(self, structure):
        """Repeat every batch row `beam_width` times (row b → rows b*K ... b*K + K - 1)."""
        return tile_batch(structure, self.beam_width)

    def decode(self, step_fn, initial_state, batch_size, max_length, source_mask,
               start_id=BOS_ID, end_id=EOS_ID):
        """Run the search.

        Args:
            step_fn: the model's one-step function (see the class docstring).
            initial_state: the decoder state for N = `batch_size × beam_width` rows
                (already tiled).
            batch_size: int or scalar tensor, the number of sentences.
            max_length: int or scalar int32 tensor, decoding steps at most (the size of the
                output buffers; a compile-time constant under XLA).
            source_mask: bool `[N, S]`, True on real source positions (tiled).
            start_id, end_id: the BOS and EOS ids.

        Returns:
            `DecodingResult`.
        """
        raise NotImplementedError


def tile_batch(structure, multiplier):
    """Repeat each row of every tensor in `structure` `multiplier` times along axis 0."""
    if multiplier == 1:
        return structure
    return tf.nest.map_structure(lambda x: tf.repeat(x, multiplier, axis=0), structure)


def restrict_logits(logits, start_id=BOS_ID):
    """float32 logits with padding and BOS ruled out: a decoder never emits them (they are
    never targets), so padding after EOS is unambiguous."""
    logits = tf.cast(logits, tf.float32)
    vocab = tf.range(tf.shape(logits)[-1])
    banned = tf.logical_or(tf.equal(vocab, PAD_ID), tf.equal(vocab, start_id))
    return tf.where(banned[None, :], tf.constant(NEG_INF, tf.float32), logits)


def write_step(buffer, step, values, axis):
    """`buffer` with `values` written at index `step` of its time `axis` (`values` has that
    axis removed), as a scatter of that one slice. Inside the decoding loop XLA updates the
    loop-carried buffer in place, O(slice) per step; the former `where` over a one-hot time
    mask rewrote the whole `[batch, T, S]` attention buffer at every step, O(T·S).
    `TensorScatterUpdate` is a core op, so the non-XLA export runs it too."""
    leading = tf.shape(buffer)[:axis]
    grids = tf.meshgrid(*[tf.range(leading[i]) for i in range(axis)], indexing="ij")
    index = tf.stack([*grids, tf.fill(leading, tf.cast(step, tf.int32))], axis=-1)
    return tf.tensor_scatter_nd_update(buffer, index, tf.cast(values, buffer.dtype))
