"""Shared checks every attention layer of the zoo must pass.

In the spirit of keras-hub's `TestCase.run_layer_test`: `run_layer_test(cls, init_kwargs)`
builds the layer on tiny random inputs and runs every generic check — shapes for rank-2 and
rank-3 queries, padding masks (exact zeros, sums, fully masked rows, padding invariance),
`project_keys`, gradients, `jit_compile` vs eager (forward and gradients) including a
decoder-style `tf.while_loop` of rank-2 steps, config round trip, `.keras` save/load,
`mixed_float16`, Keras-mask handling. Each check is also usable on its own.

Inputs use variable-length rows and one fully masked row; padded positions hold random
numbers (not zeros) so any leak through the mask shows.
"""

import os
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend import get_keras_mask

BATCH = 4
SRC_LEN = 6
TGT_LEN = 3
DIM = 8
LENGTHS = (6, 4, 1, 0)  # last row fully masked


# ------------------------------------------------------------------------------------ inputs


def padding_mask(lengths, src_len=SRC_LEN):
    return np.arange(src_len)[None, :] < np.asarray(lengths)[:, None]


def make_inputs(seed=0, batch=BATCH, src_len=SRC_LEN, tgt_len=TGT_LEN, dim=DIM,
                lengths=LENGTHS):
    """Random float32 `query2 [B, D]`, `query3 [B, T, D]`, `values [B, S, D]`, bool `mask`."""
    rng = np.random.default_rng(seed)
    return {
        "query2": rng.normal(size=(batch, dim)).astype("float32"),
        "query3": rng.normal(size=(batch, tgt_len, dim)).astype("float32"),
        "values": rng.normal(size=(batch, src_len, dim)).astype("float32"),
        "mask": padding_mask(lengths, src_len),
    }


# --------------------------------------------------------------------------------- calling


def call_layer(layer, query, values, mask=None, state=None, training=False, **kwargs):
    """Call with the zoo convention; always returns `(context, weights, next_state|None)`."""
    if layer.uses_state:
        return tuple(layer(query, values, mask=mask, state=state, training=training, **kwargs))
    context, weights = layer(query, values, mask=mask, training=training, **kwargs)
    return context, weights, None


def step_loop(layer, queries, values, mask, training=False):
    """Decoder-style loop, as the translator runs it: `project_keys` once, then one rank-2
    query per `tf.while_loop` iteration, carrying `state`. Returns stacked
    `(contexts [B, T, Dv], weights [B, T, S], final_state|None)`."""
    projected = layer.project_keys(values)
    t_len = queries.shape[1]
    state = layer.get_initial_state(values, mask) if layer.uses_state else tf.zeros(())
    contexts = tf.TensorArray(layer.compute_dtype, size=t_len)
    weights = tf.TensorArray(layer.compute_dtype, size=t_len)

    def body(t, state, contexts, weights):
        query_t = tf.gather(queries, t, axis=1)
        if layer.uses_state:
            context, weight, state = layer(query=query_t, values=values, mask=mask, state=state,
                                           projected_keys=projected, training=training)
        else:
            context, weight = layer(query=query_t, values=values, mask=mask,
                                    projected_keys=projected, training=training)
        return (t + 1, state, contexts.write(t, tf.cast(context, layer.compute_dtype)),
                weights.write(t, tf.cast(weight, layer.compute_dtype)))

    _, state, contexts, weights = tf.while_loop(
        lambda t, *_: t < t_len, body, (tf.constant(0), state, contexts, weights),
        maximum_iterations=t_len)  # XLA needs the bound to differentiate through the loop
    contexts = tf.transpose(contexts.stack(), (1, 0, 2))
    weights = weights.stack()  # [T, B, S], or [T, B, heads, S] for per-head weights
    weights = tf.transpose(weights, (1, 0, 2) if weights.shape.rank == 3 else (1, 2, 0, 3))
    return contexts, weights, (state if layer.uses_state else None)


def build_layer(cls, init_kwargs, inputs, query_key="query3"):
    layer = cls(**init_kwargs)
    call_layer(layer, inputs[query_key], inputs["values"], inputs["mask"])
    return layer


def to_numpy(outputs):
    return tuple(None if o is None else keras.ops.convert_to_numpy(o) for o in outputs)


def assert_outputs_close(actual, expected, atol=1e-5, rtol=1e-5, what=""):
    for i, (a, e) in enumerate(zip(to_numpy(actual), to_numpy(expected), strict=True)):
        if a is None and e is None:
            continue
        np.testing.assert_allclose(a.astype("float32"), e.astype("float32"), atol=atol,
                                   rtol=rtol, err_msg=f"{what}: output {i} differs")


def snapshot_rng(layer):
    """Values of the non-trainable variables (seed-generator states), to replay noise."""
    return [v.numpy() for v in layer.non_trainable_variables]


def restore_rng(layer, snapshot):
    # A snapshot of an unbuilt layer predates the variables its first call creates: those
    # stay as they are (shorter wins).
    for variable, value in zip(layer.non_trainable_variables, snapshot, strict=False):
        variable.assign(value)


# ---------------------------------------------------------------------------------- checks


def check_shapes(layer, inputs):
    values = inputs["values"]
    batch, src_len, _ = values.shape
    heads = getattr(layer, "num_heads", None) if getattr(layer, "return_all_heads",
                                                         False) else None
    for key, lead in (("query2", ()), ("query3", (inputs["query3"].shape[1],))):
        context, weights, state = call_layer(layer, inputs[key], values, inputs["mask"])
        assert context.shape[0] == batch and tuple(context.shape[1:-1]) == lead, (
            f"{key}: context shape {context.shape}")
        expected = (batch,) + ((heads,) if heads else ()) + lead + (src_len,)
        assert tuple(weights.shape) == expected, f"{key}: weights {weights.shape} != {expected}"
        assert (state is not None) == layer.uses_state
        if layer.uses_state:
            initial = layer.get_initial_state(values, inputs["mask"])
            assert tuple(state.shape) == tuple(initial.shape), "next_state shape != initial"
            assert state.dtype == initial.dtype, "next_state dtype != initial"


def _head_mean(weights, layer):
    if getattr(layer, "return_all_heads", False):
        return weights.mean(axis=1)
    return weights


def check_masking(layer, inputs, weights_sum="one", training=False):
    """Masked positions exactly 0; real positions sum to 1 (or at most 1); a fully masked row
    gives zero weights and context; no NaN."""
    mask = inputs["mask"]
    for key in ("query2", "query3"):
        context, weights, _ = to_numpy(call_layer(layer, inputs[key], inputs["values"], mask,
                                                  training=training))
        assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights)), f"{key}: NaN/inf"
        weights = _head_mean(weights.astype("float32"), layer)
        row_mask = mask if key == "query2" else mask[:, None, :]
        row_mask = np.broadcast_to(row_mask, weights.shape)
        assert np.all(weights[~row_mask] == 0.0), f"{key}: weight on a masked position"
        assert np.all(weights >= 0.0), f"{key}: negative weight"
        sums = weights.sum(-1)
        real_rows = mask.any(-1)
        if weights_sum == "one":
            np.testing.assert_allclose(sums[real_rows], 1.0, atol=1e-5,
                                       err_msg=f"{key}: weights do not sum to 1")
        else:
            assert np.all(sums <= 1.0 + 1e-5), f"{key}: weights sum above 1"
        empty = ~real_rows
        assert np.all(weights[empty] == 0.0), f"{key}: fully masked row has weights"
        assert np.all(context[empty] == 0.0), f"{key}: fully masked row has a context"


def check_padding_invariance(layer, inputs, training=False):
    """Each row equals the same row run alone, cut to its real length, without a mask."""
    mask = inputs["mask"]
    context, weights, _ = to_numpy(call_layer(layer, inputs["query3"], inputs["values"], mask,
                                              training=training))
    for b, length in enumerate(mask.sum(-1)):
        if length == 0:
            continue
        alone = to_numpy(call_layer(layer, inputs["query3"][b:b + 1],
                                    inputs["values"][b:b + 1, :length], None,
                                    training=training))
        np.testing.assert_allclose(context[b], alone[0][0], atol=1e-5,
                                   err_msg=f"row {b}: context depends on padding")
        np.testing.assert_allclose(weights[b, ..., :length], alone[1][0], atol=1e-5,
                                   err_msg=f"row {b}: weights depend on padding")


def check_projected_keys(cls, init_kwargs, inputs):
    """`project_keys` works on an unbuilt layer (the translator calls it first) and
    `projected_keys=` gives the same result as letting the layer project."""
    layer = cls(**init_kwargs)
    projected = layer.project_keys(inputs["values"])
    for key in ("query2", "query3"):
        rng = snapshot_rng(layer)
        with_pk = call_layer(layer, inputs[key], inputs["values"], inputs["mask"],
                             projected_keys=projected)
        restore_rng(layer, rng)
        without = call_layer(layer, inputs[key], inputs["values"], inputs["mask"])
        assert_outputs_close(with_pk, without, what=f"{key} projected_keys")
    # An explicit `keys=` is what `project_keys` transforms.
    rng = snapshot_rng(layer)
    without = call_layer(layer, inputs["query3"], inputs["values"], inputs["mask"],
                         keys=inputs["values"])
    restore_rng(layer, rng)
    with_pk = call_layer(layer, inputs["query3"], inputs["values"], inputs["mask"],
                         projected_keys=projected)
    assert_outputs_close(with_pk, without, what="keys=")


def _check_random_outputs(actual, expected, layer, mask, weights_sum):
    """For noisy modes: same shapes as the reference run, finite, masks hold."""
    actual, expected = to_numpy(actual), to_numpy(expected)
    for a, e in zip(actual, expected, strict=True):
        if a is None:
            continue
        assert a.shape == e.shape and np.all(np.isfinite(a.astype("float32")))
    weights = _head_mean(actual[1].astype("float32"), layer)
    row_mask = np.broadcast_to(mask if weights.ndim == 2 else mask[:, None, :], weights.shape)
    assert np.all(weights[~row_mask] == 0.0)
    sums = weights.sum(-1)[mask.any(-1)]
    assert np.all(sums <= 1.0 + 1e-5)
    if weights_sum == "one":
        np.testing.assert_allclose(sums, 1.0, atol=1e-5)


def check_config_round_trip(layer, inputs):
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, "get_config/from_config is not a round trip"
    call_layer(clone, inputs["query3"], inputs["values"], inputs["mask"])
    clone.set_weights(layer.get_weights())
    rng = snapshot_rng(layer)
    expected = call_layer(layer, inputs["query3"], inputs["values"], inputs["mask"])
    restore_rng(clone, rng)
    actual = call_layer(clone, inputs["query3"], inputs["values"], inputs["mask"])
    assert_outputs_close(actual, expected, what="from_config clone")
    # Through the registry and Keras' serialization too.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def check_saving(layer, inputs, directory):
    """Wrap the layer in a functional model, save as `.keras`, load, compare outputs."""
    t_len, dim = inputs["query3"].shape[1:]
    src_len, value_dim = inputs["values"].shape[1:]
    query = keras.Input((t_len, dim), name="query")
    values = keras.Input((src_len, value_dim), name="values")
    mask = keras.Input((src_len,), dtype="bool", name="mask")
    outputs = layer(query, values, mask=mask)
    model = keras.Model([query, values, mask], list(outputs))
    feed = [inputs["query3"], inputs["values"], inputs["mask"]]
    rng = snapshot_rng(layer)
    expected = model(feed)
    path = os.path.join(directory, f"{layer.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded_layer = loaded.layers[-1]
    assert type(loaded_layer) is type(layer)
    restore_rng(loaded_layer, rng)
    assert_outputs_close(loaded(feed), expected, what="saved and loaded model")


def _inference_calls(layer, query2, query3, values, mask):
    return (call_layer(layer, query2, values, mask),
            call_layer(layer, query3, values, mask),
            step_loop(layer, query3, values, mask))


def _loss_and_gradients(layer, query3, values, mask, seed=1):
    """Training-mode outputs of a rank-3 call and of a decoder loop, a random linear loss of
    both, and its gradients for every trainable weight, the query and the values."""
    rng = np.random.default_rng(seed)
    with tf.GradientTape() as tape:
        tape.watch([query3, values])
        sequence = call_layer(layer, query3, values, mask, training=True)
        looped = step_loop(layer, query3, values, mask, training=True)
        loss = 0.0
        for tensor in sequence[:2] + looped[:2]:
            loss += tf.reduce_sum(tf.cast(tensor, "float32")
                                  * rng.normal(size=tensor.shape).astype("float32"))
    grads = tape.gradient(loss, [*layer.trainable_variables, query3, values])
    return sequence, looped, grads


def _check_gradients_present(layer, grads, run):
    names = [v.path for v in layer.trainable_variables] + ["query", "values"]
    for name, grad in zip(names, grads, strict=True):
        assert grad is not None, f"{run}: no gradient for {name}"
        grad = keras.ops.convert_to_numpy(grad)
        assert np.all(np.isfinite(grad)), f"{run}: non-finite gradient for {name}"
        assert np.any(grad != 0), f"{run}: zero gradient for {name}"
    return names


def check_gradients(layer, inputs):
    """Eagerly, training mode, rank-3 query (stateful layers go through several steps) and a
    decoder loop: every trainable weight, the query and the values get a finite, non-zero
    gradient."""
    tensors = [tf.convert_to_tensor(inputs[k]) for k in ("query3", "values", "mask")]
    _check_gradients_present(layer, _loss_and_gradients(layer, *tensors)[2], "eager")


def check_compiled(layer, inputs, exact_inference=True, exact_training=True,
                   steps_match_sequence=True, gradients=True, weights_sum="one"):
    """Under `tf.function(jit_compile=True)`, in one compiled function (compiling dominates
    the cost of these tests):

    * inference: a rank-2 and a rank-3 call give the eager results, and a decoder loop of
      rank-2 steps in a `tf.while_loop` (`step_loop`, the translator's pattern) gives the rows
      of the rank-3 call and the same final state;
    * training (`gradients=True`): a rank-3 call and the loop, differentiated: outputs and
      gradients equal the eager ones, every weight gets a non-zero gradient.

    `exact_*=False` (noise: XLA's random streams differ from eager ones) only requires that
    everything compiles, runs, is finite and respects the mask; `steps_match_sequence=False`
    does the same for the loop rows (layers whose rows legitimately differ from steps, e.g. a
    causal mask).
    """
    tensors = [tf.convert_to_tensor(inputs[k]) for k in ("query2", "query3", "values", "mask")]
    mask = inputs["mask"]

    def run(query2, query3, values, mask):
        inference = _inference_calls(layer, query2, query3, values, mask)
        if not gradients:
            return inference, None
        return inference, _loss_and_gradients(layer, query3, values, mask)

    rng = snapshot_rng(layer)
    eager = run(*tensors)
    restore_rng(layer, rng)
    compiled = tf.function(run, jit_compile=True)(*tensors)

    (eager_q2, eager_q3, _), eager_training = eager
    (jit_q2, jit_q3, jit_loop), jit_training = compiled
    checks = [("query2 jit vs eager", jit_q2, eager_q2, exact_inference),
              ("query3 jit vs eager", jit_q3, eager_q3, exact_inference),
              ("while_loop steps vs rank-3 call", jit_loop, eager_q3,
               exact_inference and steps_match_sequence)]
    if gradients:
        checks += [("training rank-3 call", jit_training[0], eager_training[0], exact_training),
                   ("training loop vs rank-3 call", jit_training[1], eager_training[0],
                    exact_training and steps_match_sequence)]
    for what, actual, expected, is_exact in checks:
        if is_exact:
            assert_outputs_close(actual, expected, what=what)
        else:
            _check_random_outputs(actual, expected, layer, mask, weights_sum)
    if gradients:
        names = _check_gradients_present(layer, jit_training[2], "jit")
        if exact_training:
            for name, a, e in zip(names, jit_training[2], eager_training[2], strict=True):
                np.testing.assert_allclose(keras.ops.convert_to_numpy(a),
                                           keras.ops.convert_to_numpy(e), rtol=1e-4, atol=1e-5,
                                           err_msg=f"gradient of {name}, jit vs eager")


def check_mixed_precision(cls, init_kwargs, inputs, weights_sum="one"):
    """`mixed_float16` runs: float16 outputs, finite, masks still hold, gradients finite."""
    layer = cls(**init_kwargs, dtype="mixed_float16")
    for training in (False, True):
        for key in ("query2", "query3"):
            context, weights, _ = to_numpy(call_layer(
                layer, inputs[key], inputs["values"], inputs["mask"], training=training))
            assert context.dtype == np.float16, f"context is {context.dtype}"
            assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
            weights = _head_mean(weights.astype("float32"), layer)
            sums = weights.sum(-1)[inputs["mask"].any(-1)]
            if weights_sum == "one":
                np.testing.assert_allclose(sums, 1.0, atol=1e-2)
            else:
                assert np.all(sums <= 1.0 + 1e-2)
    with tf.GradientTape() as tape:
        context, _, _ = call_layer(layer, inputs["query3"], inputs["values"], inputs["mask"],
                                   training=True)
        loss = tf.reduce_sum(tf.cast(context, "float32"))
    for grad in tape.gradient(loss, layer.trainable_variables):
        assert grad is None or np.all(np.isfinite(keras.ops.convert_to_numpy(grad)))


def check_keras_mask(cls, init_kwargs, inputs):
    """A Keras mask on `values` (e.g. from `Embedding(mask_zero=True)`, or an LSTM encoder
    fed one) is used as the padding mask; neither the call nor `project_keys` raise the
    "does not support masking" warning; the caller's tensor keeps its mask."""
    layer = cls(**init_kwargs)
    tokens = np.where(inputs["mask"], 1 + np.arange(inputs["mask"].shape[1]), 0)
    embedding = keras.layers.Embedding(SRC_LEN + 1, inputs["values"].shape[-1], mask_zero=True)
    values = embedding(tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        projected = layer.project_keys(values)  # on the unbuilt layer, as decoders do
        rng = snapshot_rng(layer)
        implicit = call_layer(layer, inputs["query3"], values, projected_keys=projected)
        restore_rng(layer, rng)
        explicit = call_layer(layer, inputs["query3"], values, inputs["mask"])
    assert_outputs_close(implicit, explicit, what="Keras mask of values")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(get_keras_mask(values)),
                                  inputs["mask"])


def run_layer_test(cls, init_kwargs=None, *, directory, weights_sum="one",
                   steps_match_sequence=True, padding_invariant=True, random_training=False,
                   random_inference=False, compiled=True, compiled_gradients=True, seed=0):
    """Run every generic check on `cls(**init_kwargs)`.

    Args:
        cls: the layer class.
        init_kwargs: constructor arguments.
        directory: a temporary directory for the `.keras` file.
        weights_sum: "one" (weights over real positions sum to 1) or "at_most_one" (the
            layer documents unassigned mass).
        steps_match_sequence: whether rank-2 steps must equal the rows of a rank-3 call
            (False for e.g. a causal mask, which depends on T).
        padding_invariant: whether a row's output must not depend on the padded length.
        random_training / random_inference: the layer draws noise in that mode (dropout,
            Gumbel, pre-sigmoid noise): compiled and looped runs are checked for shapes,
            finiteness and masks instead of equality.
        compiled: run `check_compiled` (XLA compiling is most of the cost of these checks).
        compiled_gradients: differentiate under `jit_compile` too.
    """
    init_kwargs = dict(init_kwargs or {})
    inputs = make_inputs(seed)
    layer = build_layer(cls, init_kwargs, inputs)
    check_shapes(layer, inputs)
    for training in (False, True):
        check_masking(layer, inputs, weights_sum, training=training)
    if padding_invariant and not random_inference:
        check_padding_invariance(layer, inputs)
    check_projected_keys(cls, init_kwargs, inputs)
    check_gradients(layer, inputs)
    if compiled:
        check_compiled(layer, inputs, exact_inference=not random_inference,
                       exact_training=not random_training,
                       steps_match_sequence=steps_match_sequence, gradients=compiled_gradients,
                       weights_sum=weights_sum)
    check_config_round_trip(layer, inputs)
    check_saving(layer, inputs, directory)
    check_mixed_precision(cls, init_kwargs, inputs, weights_sum)
    check_keras_mask(cls, init_kwargs, inputs)
    return layer


# ---------------------------------------------------------------------------- pooling layers
# Layers that pool a sequence without a query (`zoo.layers.StructuredSelfAttention`,
# `AttentionPooling`): `layer(values, mask=None, training=None)` → `(pooled [B, hops, D'],
# weights [B, hops, S])`.


def _pool(layer, values, mask=None, training=False):
    return tuple(layer(values, mask=mask, training=training))


def _check_pooling_masks(layer, values, mask, weights_sum, training):
    pooled, weights = to_numpy(_pool(layer, values, mask, training))
    assert np.all(np.isfinite(pooled)) and np.all(np.isfinite(weights)), "NaN/inf"
    row_mask = np.broadcast_to(mask[:, None, :], weights.shape)
    assert np.all(weights[~row_mask] == 0.0), "weight on a padding position"
    assert np.all(weights >= 0.0), "negative weight"
    real = mask.any(-1)
    sums = weights.sum(-1)[real]
    if weights_sum == "one":
        np.testing.assert_allclose(sums, 1.0, atol=1e-5, err_msg="weights do not sum to 1")
    else:
        assert np.all(sums <= 1.0 + 1e-5), "weights sum above 1"
    assert np.all(weights[~real] == 0.0) and np.all(pooled[~real] == 0.0), (
        "a fully masked row has weights or a pooled vector")
    return pooled, weights


def _pooling_gradients(layer, values, mask):
    with tf.GradientTape() as tape:
        tape.watch(values)
        pooled, weights = layer(values, mask=mask, training=True)
        rng = np.random.default_rng(1)
        loss = tf.reduce_sum(tf.cast(pooled, "float32")
                             * rng.normal(size=pooled.shape).astype("float32"))
        loss += tf.reduce_sum(tf.cast(weights, "float32")
                              * rng.normal(size=weights.shape).astype("float32"))
        loss += sum(tf.cast(extra, "float32") for extra in layer.losses)
    return (pooled, weights), tape.gradient(loss, [*layer.trainable_variables, values])


def run_pooling_layer_test(cls, init_kwargs=None, *, directory, reference=None,
                           weights_sum="one", random_training=False, hops=None, seed=0):
    """Every generic check of a pooling layer: shapes; padding (exact zeros, sums, a fully
    masked row, padding invariance) in inference and training; `reference(layer, values,
    mask) -> (pooled, weights)` (a NumPy implementation) if given; gradients; `jit_compile`
    vs eager (forward, and training gradients unless `random_training`); config round trip;
    `.keras` save/load; `mixed_float16`; the Keras mask of `values` used as the padding mask
    without warnings. Returns the built layer."""
    init_kwargs = dict(init_kwargs or {})
    inputs = make_inputs(seed)
    values, mask = inputs["values"], inputs["mask"]
    layer = cls(**init_kwargs)
    pooled, weights = to_numpy(_pool(layer, values, mask))
    batch, src_len, _ = values.shape
    hops = hops or weights.shape[1]
    assert weights.shape == (batch, hops, src_len), f"weights shape {weights.shape}"
    assert pooled.shape[:2] == (batch, hops), f"pooled shape {pooled.shape}"

    for training in (False, True):
        _check_pooling_masks(layer, values, mask, weights_sum, training)
    for b, length in enumerate(mask.sum(-1)):
        if length:
            alone = to_numpy(_pool(layer, values[b:b + 1, :length]))
            np.testing.assert_allclose(pooled[b], alone[0][0], atol=1e-5,
                                       err_msg=f"row {b}: pooled depends on padding")
            np.testing.assert_allclose(weights[b, :, :length], alone[1][0], atol=1e-5,
                                       err_msg=f"row {b}: weights depend on padding")
    if reference is not None:
        expected = reference(layer, values, mask)
        assert_outputs_close((pooled, weights), expected, atol=1e-5, what="NumPy reference")

    tensors = (tf.convert_to_tensor(values), tf.convert_to_tensor(mask))
    _, grads = _pooling_gradients(layer, *tensors)
    names = [v.path for v in layer.trainable_variables] + ["values"]
    for name, grad in zip(names, grads, strict=True):
        assert grad is not None, f"no gradient for {name}"
        grad = keras.ops.convert_to_numpy(grad)
        assert np.all(np.isfinite(grad)) and np.any(grad != 0), f"bad gradient for {name}"

    def run(values, mask):
        return _pool(layer, values, mask), _pooling_gradients(layer, values, mask)

    rng = snapshot_rng(layer)
    eager = run(*tensors)
    restore_rng(layer, rng)
    compiled = tf.function(run, jit_compile=True)(*tensors)
    assert_outputs_close(compiled[0], eager[0], what="jit vs eager (inference)")
    if not random_training:
        assert_outputs_close(compiled[1][0], eager[1][0], what="jit vs eager (training)")
        for name, a, e in zip(names, compiled[1][1], eager[1][1], strict=True):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(a),
                                       keras.ops.convert_to_numpy(e), rtol=1e-4, atol=1e-5,
                                       err_msg=f"gradient of {name}, jit vs eager")

    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config, "get_config/from_config is not a round trip"
    _pool(clone, values, mask)
    clone.set_weights(layer.get_weights())
    assert_outputs_close(_pool(clone, values, mask), (pooled, weights), what="clone")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls and restored.get_config() == config

    values_in = keras.Input(values.shape[1:], name="values")
    mask_in = keras.Input(mask.shape[1:], dtype="bool", name="mask")
    model = keras.Model([values_in, mask_in], list(layer(values_in, mask=mask_in)))
    path = os.path.join(directory, f"{layer.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[-1]) is cls
    assert_outputs_close(loaded([values, mask]), (pooled, weights), what="saved and loaded")

    half = cls(**init_kwargs, dtype="mixed_float16")
    for training in (False, True):
        pooled16, weights16 = to_numpy(_pool(half, values, mask, training))
        assert pooled16.dtype == np.float16 and np.all(np.isfinite(pooled16))
        sums = weights16.astype("float32").sum(-1)[mask.any(-1)]
        assert np.all(sums <= 1.0 + 1e-2)
        if weights_sum == "one":
            np.testing.assert_allclose(sums, 1.0, atol=1e-2)

    tokens = np.where(mask, 1 + np.arange(mask.shape[1]), 0)
    embedded = keras.layers.Embedding(SRC_LEN + 1, values.shape[-1], mask_zero=True)(tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        implicit = _pool(layer, embedded)
        explicit = _pool(layer, embedded, mask)
    assert_outputs_close(implicit, explicit, what="Keras mask of values")
    return layer
