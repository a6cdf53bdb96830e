"""LSTM decoder with coverage attention and a copy switch (See et al. 2017)."""

import keras
import tensorflow as tf
from keras import ops

from zoo.attention.base_attention import ArgumentConfig, masked_softmax
from zoo.layers.lstm_loop import time_steps

# Added inside the log of the mixture: a vocabulary entry neither generated nor copied gets
# log(1e-12) ≈ -27.6 instead of -inf (whose gradient is NaN). Negligible mass over 8k entries.
LOG_EPSILON = 1e-12


@keras.saving.register_keras_serializable(package="zoo")
class PointerGeneratorDecoder(ArgumentConfig, keras.layers.Layer):
    """The pointer-generator decoder of See et al. 2017, "Get To The Point", with coverage.

    Each step, with `x_t` the embedded previous token and `h*_{t-1}` the previous context:

        s_t  = LSTM([x_t; h*_{t-1}])                                  (input feeding)
        e_ti = vᵀ tanh(W_h h_i + W_s s_t + w_c c_ti + b_attn)         (coverage c_t = Σ_{t'<t} a_t')
        a_t  = softmax(e_t) over the real source positions;  h*_t = Σ_i a_ti h_i
        P_vocab = softmax(V'(V [s_t; h*_t] + b) + b')
        p_gen   = σ(w_{h*}ᵀ h*_t + w_sᵀ s_t + w_xᵀ x_t + b_ptr)
        P(w) = p_gen · P_vocab(w) + (1 − p_gen) · Σ_{i: src_i = w} a_ti
        covloss_t = Σ_i min(a_ti, c_ti)

    Source and target share one subword vocabulary, so the copy distribution is scattered
    straight onto vocabulary ids: no per-example extended vocabulary of source OOVs is needed
    (an unseen name is copied subword by subword). This is the one simplification against the
    paper, whose word vocabulary had OOVs.

    The encoder's final state (forward and backward joined) is reduced to the decoder's size by
    one ReLU layer per `h` and `c`, as in See et al.'s code.

    Args:
        vocab_size: int, shared subword vocabulary size.
        embedding_dim: int, size of the embedded tokens the caller passes in.
        units: int, decoder LSTM units.
        attention_units: int or None, size of the attention MLP (None = `units`).
        coverage: bool, feed the coverage vector into the attention score (`w_c c_ti`).
        dropout: float, dropout on `[s_t; h*_t]` before the output layers.

    Call arguments:
        target_embedded: `[batch, T, embedding_dim]`, the embedded BOS-prefixed targets.
        memory: `[batch, S, memory_dim]` encoder outputs; `mask`: boolean `[batch, S]`.
        source_ids: int `[batch, S]`, the ids the copy distribution is scattered onto.
        encoder_state: `(h, c)`, `[batch, encoder state size]` each.

    Returns:
        dict of `log_probs` `[batch, T, vocab]` (the log of the final mixture), `attention`
        `[batch, T, S]`, `p_gen` `[batch, T]` and `coverage_loss` `[batch, T]` (per step).

    Example:

    ```python
    decoder = PointerGeneratorDecoder(vocab_size=100, embedding_dim=8, units=16)
    out = decoder(np.ones((2, 3, 8)), np.ones((2, 5, 32)), np.ones((2, 5), bool),
                  np.full((2, 5), 7), (np.ones((2, 32)), np.ones((2, 32))))
    out["log_probs"].shape   # (2, 3, 100)
    ```
    """

    def __init__(self, vocab_size, embedding_dim=128, units=256, attention_units=None,
                 coverage=True, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.keep_arguments(locals())
        size = attention_units or units
        self.reduce_h = keras.layers.Dense(units, activation="relu", name="reduce_h")
        self.reduce_c = keras.layers.Dense(units, activation="relu", name="reduce_c")
        self.cell = keras.layers.LSTMCell(units, name="lstm_cell")
        self.memory_projection = keras.layers.Dense(size, use_bias=False,
                                                    name="memory_projection")
        self.query_projection = keras.layers.Dense(size, name="query_projection")
        self.switch = keras.layers.Dense(1, name="switch")
        self.output_hidden = keras.layers.Dense(units, name="output_hidden")
        self.output_projection = keras.layers.Dense(vocab_size, name="output_projection")
        self.output_dropout = keras.layers.Dropout(dropout)

    def build(self, embedding_shape, memory_shape=None, *args, **kwargs):
        batch, memory_dim = embedding_shape[0], memory_shape[-1]
        size = self.attention_units or self.units
        self.reduce_h.build((batch, memory_dim))
        self.reduce_c.build((batch, memory_dim))
        self.cell.build((batch, self.embedding_dim + memory_dim))
        self.memory_projection.build(memory_shape)
        self.query_projection.build((batch, self.units))
        self.score_vector = self.add_weight(name="score_vector", shape=(size,),
                                            initializer="glorot_uniform")
        if self.coverage:
            self.coverage_vector = self.add_weight(name="coverage_vector", shape=(size,),
                                                   initializer="glorot_uniform")
        self.switch.build((batch, memory_dim + self.units + self.embedding_dim))
        self.output_hidden.build((batch, self.units + memory_dim))
        self.output_projection.build((batch, self.units))

    # -- pieces shared by teacher forcing and search --------------------------------------------
    def prepare_memory(self, memory):
        """`W_h h_i`, the loop-invariant half of the attention score."""
        return self.memory_projection(memory)

    def initial_state(self, memory, encoder_state):
        h, c = encoder_state
        batch, length = ops.shape(memory)[0], ops.shape(memory)[1]
        context = ops.zeros((batch, ops.shape(memory)[-1]), memory.dtype)
        return {"features": ops.concatenate([self.reduce_h(h), context], axis=-1),
                "c": self.reduce_c(c), "coverage": ops.zeros((batch, length), "float32")}

    def step(self, embedded, state, memory, projected_memory, mask, training=None):
        """One step → `(features [s_t; h*_t], a_t, c_{t+1}, next state)`.

        Written so that no tensor of the step feeds more than two differentiable consumers:
        grappler rewrites a gradient sum of three or more in a loop into an in-place
        accumulation that fails at run time ("AlreadyExistsError ... AddN/tmp_var", TF 2.21,
        graph mode). Hence `[s_t; h*_t]` is one state entry and `call` recovers `a_t` and the
        coverage loss from the stacked coverage after the loop."""
        previous = state["features"]
        inputs = ops.concatenate([embedded, previous[:, self.units:]], axis=-1)  # input feeding
        h, (_, c) = self.cell(inputs, [previous[:, : self.units], state["c"]],
                              training=training)
        hidden = projected_memory + self.query_projection(h)[:, None, :]
        if self.coverage:
            hidden = hidden + (ops.cast(state["coverage"][..., None], hidden.dtype)
                               * ops.cast(self.coverage_vector, hidden.dtype))
        # matvec, not a rank-3 × rank-2 matmul (a tensordot, whose gradient XLA rejects).
        scores = tf.linalg.matvec(ops.tanh(hidden), ops.cast(self.score_vector, hidden.dtype))
        weights = masked_softmax(ops.cast(scores, "float32"), mask)
        context = ops.matmul(ops.cast(weights, memory.dtype)[:, None, :], memory)[:, 0]
        coverage = state["coverage"] + weights
        features = ops.concatenate([h, context], axis=-1)
        return features, weights, coverage, {"features": features, "c": c, "coverage": coverage}

    def output_distribution(self, features, embedded, weights, source_ids, training=None):
        """`(log P(w) [..., vocab], p_gen [...])` from `features` `[s_t; h*_t]`, the embedded
        input and the attention, with any leading axes (`[batch]` in a search, `[batch, T]`
        after the teacher-forced loop)."""
        p_gen = ops.sigmoid(self.switch(ops.concatenate([features, embedded], axis=-1)))
        features = self.output_dropout(features, training=training)
        vocab_probs = ops.softmax(
            ops.cast(self.output_projection(self.output_hidden(features)), "float32"), axis=-1)
        p_gen = ops.cast(p_gen, "float32")
        copy_probs = scatter_onto_vocabulary(weights, source_ids, self.vocab_size)
        mixture = p_gen * vocab_probs + (1.0 - p_gen) * copy_probs
        return ops.log(mixture + LOG_EPSILON), p_gen[..., 0]

    # -- teacher forcing ------------------------------------------------------------------------
    def call(self, target_embedded, memory, mask, source_ids, encoder_state, training=None):
        steps = ops.shape(target_embedded)[1]
        time_major = time_steps(ops.transpose(target_embedded, (1, 0, 2)))
        projected_memory = self.prepare_memory(memory)
        state = self.initial_state(memory, encoder_state)
        features = tf.TensorArray(memory.dtype, size=steps)
        coverage = tf.TensorArray("float32", size=steps)

        def body(t, state, features, coverage):
            step_features, _, step_coverage, state = self.step(
                time_major.read(t), state, memory, projected_memory, mask, training=training)
            return t + 1, state, features.write(t, step_features), coverage.write(t, step_coverage)

        _, _, features, coverage = tf.while_loop(
            lambda t, *_: t < steps, body, (0, state, features, coverage),
            maximum_iterations=steps)  # XLA sizes the gradient's accumulators by it
        features = ops.transpose(features.stack(), (1, 0, 2))
        after = ops.transpose(coverage.stack(), (1, 0, 2))               # c_{t+1}: [B, T, S]
        before = ops.concatenate([ops.zeros_like(after[:, :1]), after[:, :-1]], axis=1)
        attention = after - before                                       # a_t
        log_probs, p_gen = self.output_distribution(features, target_embedded, attention,
                                                    source_ids, training=training)
        return {"log_probs": log_probs, "attention": attention, "p_gen": p_gen,
                "coverage_loss": ops.sum(ops.minimum(attention, before), axis=-1)}

    # -- one step of a search -------------------------------------------------------------------
    def decoding_step(self, embedded, state, memory, projected_memory, mask, source_ids):
        """`(log P(w) [N, vocab], attention [N, S], p_gen [N], next state)`."""
        features, weights, _, state = self.step(embedded, state, memory, projected_memory,
                                                mask)
        log_probs, p_gen = self.output_distribution(features, embedded, weights, source_ids)
        return log_probs, weights, p_gen, state

    def compute_mask(self, *args, **kwargs):
        return None


def scatter_onto_vocabulary(weights, source_ids, vocab_size):
    """Sum attention weights onto the vocabulary ids of their source positions.

    `weights` `[batch, S]` or `[batch, T, S]`, `source_ids` int `[batch, S]` →
    `[batch, vocab]` or `[batch, T, vocab]`: entry `w` is `Σ_{i: source_ids_i = w} weights_i`.
    One `unsorted_segment_sum` over `(row, step, id)` segments: no `[batch, S, vocab]` one-hot,
    no transpose, and its gradient is a gather (XLA-compilable: num_segments is static there).
    """
    weights = tf.convert_to_tensor(weights)
    squeeze = len(weights.shape) == 2
    if squeeze:
        weights = weights[:, None, :]
    batch, steps = tf.shape(weights)[0], tf.shape(weights)[1]
    rows = tf.reshape(tf.range(batch * steps), [batch, steps, 1])          # b * T + t
    segments = rows * vocab_size + tf.cast(source_ids, tf.int32)[:, None, :]  # [B, T, S]
    summed = tf.math.unsorted_segment_sum(tf.reshape(weights, [-1]),
                                          tf.reshape(segments, [-1]),
                                          batch * steps * vocab_size)
    result = tf.reshape(summed, [batch, steps, vocab_size])
    return result[:, 0] if squeeze else result
