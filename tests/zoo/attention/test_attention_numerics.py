"""Each layer against a NumPy transcription of its paper's formula, and against the Keras
built-ins it should match."""

import math

import keras
import numpy as np
import pytest

import zoo
from tests.layer_test_case import build_layer, call_layer, make_inputs, to_numpy


def w(variable):
    return keras.ops.convert_to_numpy(variable).astype("float64")


def np_masked_softmax(scores, mask):
    """Softmax over real positions; 0 on masked ones and on rows with no real position."""
    mask = np.broadcast_to(mask, scores.shape)
    shifted = np.where(mask, scores, -np.inf)
    top = np.max(shifted, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    exp = np.where(mask, np.exp(shifted - top), 0.0)
    total = exp.sum(-1, keepdims=True)
    return np.where(total > 0, exp / np.where(total > 0, total, 1.0), 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def finish(weights, values):
    """`(context, weights)` from `[B, T, S]` weights."""
    return np.einsum("bts,bsd->btd", weights, values), weights


# ------------------------------------------------------------------------------- references
# Each takes (layer, query [B,T,D], values [B,S,D], mask [B,S], training) in float64 and
# returns the expected (context, weights[, state]) of a rank-3 call.


def ref_additive(layer, q, v, mask, training):
    # Bahdanau: e = v_aᵀ tanh(W_1 s + W_2 h); normed: g v_a/‖v_a‖, + b.
    va = w(layer.score_vector)
    bias = 0.0
    if layer.normalize:
        va = w(layer.score_gain) * va / np.linalg.norm(va)
        bias = w(layer.score_bias)
    hidden = ((q @ w(layer.query_projection.kernel))[:, :, None, :]
              + (v @ w(layer.key_projection.kernel))[:, None, :, :] + bias)
    scores = np.tanh(hidden) @ va
    return finish(np_masked_softmax(scores, mask[:, None, :]), v)


def ref_luong_dot(layer, q, v, mask, training):
    scores = np.einsum("btd,bsd->bts", q, v)
    if layer.scale:
        scores = scores * w(layer.score_scale)
    return finish(np_masked_softmax(scores, mask[:, None, :]), v)


def ref_luong_general(layer, q, v, mask, training):
    # score = h_tᵀ W_a h_s (the kernel maps the query: h_tᵀ W_a = (W_aᵀ h_t)ᵀ).
    projection = q @ w(layer.query_projection.kernel)
    if layer.use_bias:
        projection = projection + w(layer.query_projection.bias)
    scores = np.einsum("btd,bsd->bts", projection, v)
    if layer.scale:
        scores = scores * w(layer.score_scale)
    return finish(np_masked_softmax(scores, mask[:, None, :]), v)


def ref_luong_concat(layer, q, v, mask, training):
    # score = v_aᵀ tanh(W_a [h_t; h_s]) with the full W_a as one matrix.
    w_a = np.concatenate([w(layer.query_projection.kernel), w(layer.key_projection.kernel)], 0)
    b, t, s = q.shape[0], q.shape[1], v.shape[1]
    pairs = np.concatenate([np.broadcast_to(q[:, :, None, :], (b, t, s, q.shape[-1])),
                            np.broadcast_to(v[:, None, :, :], (b, t, s, v.shape[-1]))], -1)
    scores = np.tanh(pairs @ w_a) @ w(layer.score_vector)
    if layer.scale:
        scores = scores * w(layer.score_scale)
    return finish(np_masked_softmax(scores, mask[:, None, :]), v)


def ref_cosine(layer, q, v, mask, training):
    if layer.project_query:
        q = q @ w(layer.query_projection.kernel)
    cos = np.einsum("btd,bsd->bts", q, v) / (
        np.linalg.norm(q, axis=-1)[:, :, None] * np.linalg.norm(v, axis=-1)[:, None, :])
    tau = 1.0 / math.exp(min(float(w(layer.log_inverse_temperature)),
                             math.log(1.0 / layer.min_temperature)))
    return finish(np_masked_softmax(cos / tau, mask[:, None, :]), v)


def _dense(layer, x):
    out = x @ w(layer.kernel)
    return out + w(layer.bias) if layer.use_bias else out


def ref_scaled_dot_product(layer, q, v, mask, training):
    big_q, big_k, big_v = (_dense(layer.query_projection, q), _dense(layer.key_projection, v),
                           _dense(layer.value_projection, v))
    weights = np_masked_softmax(big_q @ big_k.transpose(0, 2, 1) / math.sqrt(big_q.shape[-1]),
                                mask[:, None, :])
    return weights @ big_v, weights


def ref_multi_head(layer, q, v, mask, training):
    heads, t_len, s_len = layer.num_heads, q.shape[1], v.shape[1]

    def project(dense, x):
        out = np.einsum("bsd,dhk->bshk", x, w(dense.kernel))
        return out + w(dense.bias) if layer.use_bias else out

    big_q, big_k, big_v = (project(layer.query_dense, q), project(layer.key_dense, v),
                           project(layer.value_dense, v))
    allowed = np.broadcast_to(mask[:, None, None, :], (q.shape[0], heads, t_len, s_len))
    if layer.causal:
        allowed = allowed & (np.arange(s_len)[None, :]
                             <= np.arange(t_len)[:, None] + s_len - t_len)
    scores = np.einsum("bthk,bshk->bhts", big_q, big_k) / math.sqrt(big_q.shape[-1])
    weights = np_masked_softmax(scores, allowed)
    per_head = np.einsum("bhts,bshk->bthk", weights, big_v)
    context = np.einsum("bthk,hko->bto", per_head, w(layer.output_dense.kernel))
    if layer.use_bias:
        context = (context + w(layer.output_dense.bias)) * mask.any(-1)[:, None, None]
    return context, (weights if layer.return_all_heads else weights.mean(1))


def ref_local(layer, q, v, mask, training):
    batch, t_len, s_len = q.shape[0], q.shape[1], v.shape[1]
    d = layer.window_size
    keys = v
    scored = q @ w(layer.query_projection.kernel) if layer.score == "general" else q
    weights = np.zeros((batch, t_len, s_len))
    for b in range(batch):
        length = mask[b].sum()
        for t in range(t_len):
            if layer.mode == "m":
                p = min(t, length - 1)  # p_t = t (state starts at 0), clipped to the source
            else:
                hidden = np.tanh(q[b, t] @ w(layer.position_projection.kernel))
                p = (length - 1) * sigmoid(hidden @ w(layer.position_vector))
            window = (np.abs(np.arange(s_len) - p) <= d) & mask[b]
            align = np_masked_softmax(keys[b] @ scored[b, t], window)
            if layer.mode == "p":
                align = align * np.exp(-((np.arange(s_len) - p) ** 2) / (2 * (d / 2) ** 2))
            weights[b, t] = align
    context, weights = finish(weights, v)
    return context, weights, np.full((batch,), t_len)


def np_conv1d_same(x, kernel):
    """`x [S, C_in]`, `kernel [k, C_in, C_out]`, "same" padding as Keras/TF."""
    k = kernel.shape[0]
    padded = np.pad(x, (((k - 1) // 2, k // 2), (0, 0)))
    return np.stack([np.einsum("kc,kco->o", padded[s:s + k], kernel)
                     for s in range(x.shape[0])])


def ref_location_sensitive(layer, q, v, mask, training):
    batch, t_len, s_len = q.shape[0], q.shape[1], v.shape[1]
    keys = v @ w(layer.key_projection.kernel)
    queries = q @ w(layer.query_projection.kernel)
    weights = np.zeros((batch, t_len, s_len))
    states = np.zeros((batch, s_len, 2))
    for b in range(batch):
        previous, cumulative = np.zeros(s_len), np.zeros(s_len)
        for t in range(t_len):
            features = np_conv1d_same(np.stack([previous, cumulative], -1),
                                      w(layer.location_conv.kernel))
            location = features @ w(layer.location_projection.kernel)
            energy = np.tanh(queries[b, t] + keys[b] + location
                             + w(layer.score_bias)) @ w(layer.score_vector)
            if layer.smoothing:
                gate = sigmoid(energy) * mask[b]
                align = gate / max(gate.sum(), 1e-9)
            else:
                align = np_masked_softmax(energy, mask[b])
            weights[b, t] = align
            previous, cumulative = align, cumulative + align
        states[b] = np.stack([previous, cumulative], -1)
    context, weights = finish(weights, v)
    return context, weights, states


def ref_monotonic(layer, q, v, mask, training):
    batch, t_len, s_len = q.shape[0], q.shape[1], v.shape[1]
    keys = v @ w(layer.key_projection.kernel)
    queries = q @ w(layer.query_projection.kernel)
    va, bias = w(layer.score_vector), 0.0
    if layer.normalize:
        va, bias = w(layer.score_gain) * va / np.linalg.norm(va), w(layer.attention_bias)
    weights = np.zeros((batch, t_len, s_len))
    for b in range(batch):
        previous = np.zeros(s_len)
        previous[0] = 1.0 if mask[b].any() else 0.0
        for t in range(t_len):
            energy = np.tanh(queries[b, t] + keys[b] + bias) @ va + w(layer.energy_bias)
            p = sigmoid(energy) * mask[b]
            alpha = np.zeros(s_len)
            if training:  # Raffel et al. eq. 9-10, the recurrence itself
                q_j = 0.0
                for j in range(s_len):
                    q_j = (1 - p[j - 1]) * q_j + previous[j] if j else previous[0]
                    alpha[j] = p[j] * q_j
            elif previous.any():  # scan on from the last attended position, stop at p > 0.5
                for j in range(int(np.argmax(previous)), s_len):
                    if p[j] > 0.5:
                        alpha[j] = 1.0
                        break
            weights[b, t] = previous = alpha
    context, weights = finish(weights, v)
    return context, weights, weights[:, -1]


def ref_hard(layer, q, v, mask, training):
    assert not training  # Gumbel noise has no NumPy twin; inference is the argmax
    projection = q @ w(layer.query_projection.kernel)
    if layer.use_bias:
        projection = projection + w(layer.query_projection.bias)
    scores = np.where(mask[:, None, :], np.einsum("btd,bsd->bts", projection, v), -np.inf)
    weights = np.zeros_like(scores)
    for b, t in np.ndindex(*scores.shape[:2]):
        if mask[b].any():
            weights[b, t, np.argmax(scores[b, t])] = 1.0
    return finish(weights, v)


REFERENCES = {
    "additive": ref_additive,
    "cosine": ref_cosine,
    "hard": ref_hard,
    "local": ref_local,
    "location_sensitive": ref_location_sensitive,
    "luong_concat": ref_luong_concat,
    "luong_dot": ref_luong_dot,
    "luong_general": ref_luong_general,
    "monotonic": ref_monotonic,
    "multi_head": ref_multi_head,
    "scaled_dot_product": ref_scaled_dot_product,
}

REFERENCE_CASES = [
    ("additive", {"normalize": True}, False),
    ("cosine", {"project_query": True}, False),
    ("hard", {"use_bias": True}, False),
    ("local", {"mode": "m", "window_size": 1}, False),
    ("local", {"mode": "p", "window_size": 2}, False),
    ("local", {"mode": "p", "window_size": 1, "score": "dot"}, False),
    ("location_sensitive", {"kernel_size": 3, "filters": 4}, False),
    ("location_sensitive", {"kernel_size": 4, "smoothing": True}, False),
    ("luong_concat", {"scale": True}, False),
    ("luong_dot", {"scale": True}, False),
    ("luong_general", {"scale": True, "use_bias": True}, False),
    ("monotonic", {}, True),
    ("monotonic", {"normalize": False, "score_bias_init": 1.0}, True),
    ("monotonic", {"score_bias_init": 1.0}, False),
    ("multi_head", {"num_heads": 2, "causal": True, "return_all_heads": True}, False),
    ("multi_head", {"num_heads": 2, "key_dim": 3, "value_dim": 5, "use_bias": False}, False),
    ("scaled_dot_product", {"use_bias": True, "units": 5}, False),
]


@pytest.mark.parametrize("name", zoo.attention.names())
def test_every_layer_has_a_numpy_reference(name):
    assert name in REFERENCES, f"add a NumPy reference of {name}'s formula to REFERENCES"


def _perturb(layer, seed):
    """Move every weight off its initial value so zeros/ones initialisers prove nothing."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_variables:
        value = keras.ops.convert_to_numpy(variable)
        variable.assign(value + rng.normal(scale=0.3, size=value.shape).astype(value.dtype))


@pytest.mark.parametrize(
    "name, init_kwargs, training",
    [pytest.param(n, {}, n == "monotonic", id=n) for n in zoo.attention.names()]
    + [pytest.param(n, k, t, id=f"{n}-{i}") for i, (n, k, t) in enumerate(REFERENCE_CASES)],
)
def test_matches_numpy_reference(name, init_kwargs, training):
    inputs = make_inputs(seed=4, tgt_len=4)
    layer = build_layer(zoo.attention.get_class(name), init_kwargs, inputs)
    _perturb(layer, seed=5)
    actual = to_numpy(call_layer(layer, inputs["query3"], inputs["values"], inputs["mask"],
                                 training=training))
    expected = REFERENCES[name](layer, inputs["query3"].astype("float64"),
                                inputs["values"].astype("float64"), inputs["mask"], training)
    # call_layer always gives (context, weights, state|None); a stateless layer's reference
    # stops at (context, weights): shorter wins.
    for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
        np.testing.assert_allclose(a, e, atol=2e-5, rtol=1e-4, err_msg=f"output {i}")


# --------------------------------------------------------------------------- Keras built-ins


def _real_rows(inputs):
    return inputs["mask"].any(-1)  # Keras gives fully masked rows uniform weights, we give 0


@pytest.mark.parametrize("scale", [False, True])
def test_luong_dot_equals_keras_attention_dot(scale):
    inputs = make_inputs(seed=6)
    layer = build_layer(zoo.attention.LuongDotAttention, {"scale": scale}, inputs)
    keras_layer = keras.layers.Attention(score_mode="dot", use_scale=scale)
    args = [inputs["query3"], inputs["values"]]
    keras_layer(args, mask=[None, inputs["mask"]])
    if scale:
        layer.score_scale.assign(1.7)
        keras_layer.scale.assign(1.7)
    expected = keras_layer(args, mask=[None, inputs["mask"]], return_attention_scores=True)
    actual = call_layer(layer, *args, inputs["mask"])
    rows = _real_rows(inputs)
    for a, e in zip(to_numpy(actual[:2]), to_numpy(expected), strict=True):
        np.testing.assert_allclose(a[rows], e[rows], atol=1e-5)


def test_scaled_dot_product_equals_keras_ops_dot_product_attention():
    inputs = make_inputs(seed=7)
    layer = build_layer(zoo.attention.ScaledDotProductAttention, {"units": 4, "value_units": 4,
                                                                  "use_bias": True}, inputs)
    query, values, mask = inputs["query3"], inputs["values"], inputs["mask"]
    big_q = layer.query_projection(query)[:, :, None, :]
    big_k = layer.key_projection(values)[:, :, None, :]
    big_v = layer.value_projection(values)[:, :, None, :]
    expected = keras.ops.dot_product_attention(big_q, big_k, big_v,
                                               mask=mask[:, None, None, :])[:, :, 0, :]
    context, _, _ = call_layer(layer, query, values, mask)
    rows = _real_rows(inputs)
    np.testing.assert_allclose(to_numpy([context])[0][rows], to_numpy([expected])[0][rows],
                               atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("rank", [2, 3])
def test_multi_head_equals_keras_multi_head_attention(causal, rank):
    inputs = make_inputs(seed=8, tgt_len=6)  # T == S so the causal masks coincide
    kwargs = {"num_heads": 2, "key_dim": 3, "value_dim": 5, "output_dim": 7, "causal": causal,
              "return_all_heads": True}
    layer = build_layer(zoo.attention.MultiHeadAttention, kwargs, inputs)
    _perturb(layer, seed=9)
    keras_layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5,
                                                  output_shape=7)
    query = inputs["query3"] if rank == 3 else inputs["query2"][:, None, :]
    attention_mask = np.broadcast_to(inputs["mask"][:, None, :],
                                     (query.shape[0], query.shape[1], inputs["mask"].shape[1]))
    keras_layer(query, inputs["values"], attention_mask=attention_mask)
    for ours, theirs in [(layer.query_dense, keras_layer.query_dense),
                         (layer.key_dense, keras_layer.key_dense),
                         (layer.value_dense, keras_layer.value_dense),
                         (layer.output_dense, keras_layer.output_dense)]:
        theirs.set_weights(ours.get_weights())
    expected = keras_layer(query, inputs["values"], attention_mask=attention_mask,
                           use_causal_mask=causal and rank == 3, return_attention_scores=True)
    actual = call_layer(layer, query if rank == 3 else inputs["query2"], inputs["values"],
                        inputs["mask"])
    context, weights = to_numpy(actual[:2])
    if rank == 2:
        context, weights = context[:, None], weights[:, :, None]
    rows = _real_rows(inputs)
    expected = to_numpy(expected)
    np.testing.assert_allclose(context[rows], expected[0][rows], atol=1e-5)
    np.testing.assert_allclose(weights[rows], expected[1][rows], atol=1e-5)


# ------------------------------------------------------------------------- layer behaviour


def test_local_m_window_follows_the_decoder_step():
    inputs = make_inputs(seed=10, lengths=(6, 4, 2, 1))
    layer = build_layer(zoo.attention.LocalAttention, {"mode": "m", "window_size": 1}, inputs)
    state = np.array([0, 3, 4, 0], "int32")
    _, weights, next_state = to_numpy(call_layer(layer, inputs["query2"], inputs["values"],
                                                 inputs["mask"], state=state))
    np.testing.assert_array_equal(next_state, state + 1)
    support = weights > 0
    np.testing.assert_array_equal(support[0], [1, 1, 0, 0, 0, 0])  # p = 0
    np.testing.assert_array_equal(support[1], [0, 0, 1, 1, 0, 0])  # p = 3 = last real
    np.testing.assert_array_equal(support[2], [1, 1, 0, 0, 0, 0])  # p = 4 clipped to 1
    np.testing.assert_array_equal(support[3], [1, 0, 0, 0, 0, 0])


def test_monotonic_inference_is_hard_and_never_moves_back():
    inputs = make_inputs(seed=11, tgt_len=5)
    layer = build_layer(zoo.attention.MonotonicAttention, {"score_bias_init": 0.5}, inputs)
    _, weights, _ = to_numpy(call_layer(layer, inputs["query3"], inputs["values"],
                                        inputs["mask"], training=False))
    assert set(np.unique(weights)) <= {0.0, 1.0}
    assert np.all(weights.sum(-1) <= 1.0)
    for row in weights:
        attended = [int(np.argmax(step)) for step in row if step.any()]
        assert attended == sorted(attended)
        # once it stops attending (ran off the end) it never attends again
        active = row.any(-1)
        assert list(active) == sorted(active, reverse=True)


def test_hard_training_weights_are_one_hot_with_soft_gradients():
    import tensorflow as tf

    inputs = make_inputs(seed=12)
    layer = build_layer(zoo.attention.HardAttention, {"seed": 0}, inputs)
    with tf.GradientTape() as tape:
        _, weights, _ = call_layer(layer, inputs["query3"], inputs["values"], inputs["mask"],
                                   training=True)
        loss = tf.reduce_sum(weights * np.arange(weights.shape[-1], dtype="float32"))
    weights = weights.numpy()
    real = inputs["mask"].any(-1)
    assert set(np.unique(weights)) <= {0.0, 1.0}
    np.testing.assert_array_equal(weights.sum(-1)[real], 1.0)
    assert np.any(tape.gradient(loss, layer.query_projection.kernel).numpy() != 0)


def test_hard_sampling_is_seeded_and_differs_from_argmax():
    inputs = make_inputs(seed=13, src_len=6, tgt_len=40, lengths=(6, 6, 6, 6))
    runs = []
    for _ in range(2):
        layer = zoo.attention.HardAttention(sample_at_inference=True, seed=7)
        call_layer(layer, inputs["query3"], inputs["values"], inputs["mask"])
        layer.query_projection.kernel.assign(np.eye(8, dtype="float32") * 0.1)
        runs.append(to_numpy(call_layer(layer, inputs["query3"], inputs["values"],
                                        inputs["mask"]))[1])
    np.testing.assert_array_equal(runs[0], runs[1])
    argmax = zoo.attention.HardAttention()
    call_layer(argmax, inputs["query3"], inputs["values"], inputs["mask"])
    argmax.query_projection.kernel.assign(np.eye(8, dtype="float32") * 0.1)
    greedy = to_numpy(call_layer(argmax, inputs["query3"], inputs["values"], inputs["mask"]))[1]
    assert np.any(runs[0] != greedy)
