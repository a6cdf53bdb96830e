"""The calling convention every attention layer of the zoo follows."""

import contextlib
import inspect

import keras
import tensorflow as tf
from keras import ops

try:  # Keras keeps its mask accessors private; fall back to the attribute they use.
    from keras.src.backend import get_keras_mask, set_keras_mask
except ImportError:  # pragma: no cover
    def get_keras_mask(x):
        return getattr(x, "_keras_mask", None)

    def set_keras_mask(x, mask):
        x._keras_mask = mask


@contextlib.contextmanager
def detached_masks(*tensors):
    """Remove the Keras masks of `tensors` for the duration of the block, then put them back
    (the caller's tensors are left as they were)."""
    detached = []
    for tensor in tensors:
        tensor_mask = None if tensor is None else get_keras_mask(tensor)
        if tensor_mask is not None:
            detached.append((tensor, tensor_mask))
            set_keras_mask(tensor, None)
    try:
        yield
    finally:
        for tensor, tensor_mask in detached:
            set_keras_mask(tensor, tensor_mask)


class ArgumentConfig:
    """Mixin of a Keras layer whose config is its constructor's arguments.

    `keep_arguments(locals())`, first thing in `__init__` after `super().__init__(**kwargs)`,
    sets `self.<name>` for every argument (those named `*_initializer` through
    `keras.initializers.get`). `get_config` returns Keras' config plus `self.<name>` for every
    named argument of `__init__` (initializers serialized), so a layer writes `get_config`
    only for an argument it keeps under another name. (Keras' own auto config would store the
    raw arguments, and refuses an initializer object.)

    A subclass whose parent keeps some arguments assigns its own: a second
    `keep_arguments(locals())` would build a second initializer, which draws another default
    seed and so changes the initial weights under `keras.utils.set_random_seed`.

    Example:

    ```python
    class Scale(ArgumentConfig, keras.layers.Layer):
        def __init__(self, factor=2.0, kernel_initializer="ones", **kwargs):
            super().__init__(**kwargs)
            self.keep_arguments(locals())  # self.factor, self.kernel_initializer

    Scale(3.0).get_config()  # {"name": ..., "factor": 3.0, "kernel_initializer": {...}, ...}
    ```
    """

    def keep_arguments(self, arguments):
        """`self.<name> = value` for each argument in `arguments` (the caller's `locals()`)."""
        for name, value in arguments.items():
            if name in ("self", "kwargs", "__class__"):
                continue
            if name.endswith("_initializer"):
                value = keras.initializers.get(value)
            setattr(self, name, value)

    def get_config(self):
        config = super().get_config()
        for name in constructor_arguments(type(self)):
            value = getattr(self, name)
            if isinstance(value, keras.initializers.Initializer):
                value = keras.initializers.serialize(value)
            config[name] = value
        return config


def constructor_arguments(cls):
    """Names of the named arguments of `cls.__init__`, `self` and `**kwargs` left out."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


class BaseAttention(ArgumentConfig, keras.layers.Layer):
    """Base class of the zoo's attention layers.

    One calling convention for every variant:
    `layer(query, values, keys=None, mask=None, state=None, projected_keys=None, training=None)`.

    Shapes: `query` is `[batch, query_dim]` (one decoder step) or `[batch, T, query_dim]`
    (T queries at once); `values` is `[batch, S, value_dim]`; `keys` defaults to `values`;
    `mask` is a boolean `[batch, S]`, True on real (non-padding) positions.

    Masked positions get exactly zero weight; a fully masked row gives zero weights and a zero
    context, never NaN. When `mask` is None the Keras mask attached to `values` (e.g. by an
    `Embedding(mask_zero=True)` upstream) is used; the Keras mask of a rank-3 query is passed on
    to `context`.

    Decoder loops call `project_keys(keys)` once, outside the loop, and pass the result as
    `projected_keys=` at every step, so query-independent work (e.g. Bahdanau's `W_2 h_s`)
    is not repeated per step. `project_keys` works on an unbuilt layer (it creates just the key
    side's weights). The result is opaque: only pass it back to the same layer.

    `call` is the same for every layer (a template method, as in Keras' own dense attention
    layers): keys → `compute_projected_keys`, query → `compute_projected_query` and a T axis,
    then `attend`: `compute_scores` → `compute_weights` (a masked softmax) →
    `compute_context` (the weighted sum of the values), and the T axis is dropped again for a
    rank-2 query. A layer supplies its weights (`build_keys` for those of
    `compute_projected_keys`, `build_attention` for every other one) and `compute_scores`;
    it overrides another hook only for what is genuinely different (hard attention's
    `compute_weights`, the local window's `attend`, the recurrent alignment of
    location-sensitive and monotonic attention, stepped by `step_through`). Constructor
    arguments are kept with `keep_arguments(locals())`, which also gives `get_config`.

    Args:
        **kwargs: forwarded to `keras.layers.Layer`.

    Call arguments:
        query: `[batch, query_dim]` or `[batch, T, query_dim]`.
        values: `[batch, S, value_dim]`.
        keys: optional `[batch, S, key_dim]`, defaults to `values`.
        mask: optional boolean `[batch, S]`, True on real positions.
        state: layers with `uses_state = True` only: the previous alignment state
            (`get_initial_state(values, mask)` before the first step; None means "first step").
        projected_keys: optional result of `project_keys(keys)`.
        training: bool, for the layers with dropout or noise.

    Returns:
        `(context, weights)`: `context` is `[batch, value_dim]` or `[batch, T, value_dim]`,
        `weights` is `[batch, S]` or `[batch, T, S]`. Layers with `uses_state = True` (those
        that need the previous alignment or the decoder step) return
        `(context, weights, next_state)`; a rank-3 query given to them is stepped through its T
        positions in order, so row `t` equals the `t`-th single step, and `next_state` is the
        state after the last one.

    Example:

    ```python
    @register("my_dot")
    @keras.saving.register_keras_serializable(package="zoo")
    class MyDotAttention(BaseAttention):
        def compute_scores(self, query, keys):  # [batch, T, dim], [batch, S, dim]
            return ops.matmul(query, ops.transpose(keys, (0, 2, 1)))  # [batch, T, S]

    context, weights = MyDotAttention()(np.ones((2, 8)), np.ones((2, 5, 8)))
    ```
    """

    uses_state = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The padding mask is consumed (not passed through), so Keras must not warn that it is
        # destroyed; see `compute_mask` for what the outputs carry.
        self.supports_masking = True
        self._keys_shape = None

    # ----------------------------------------------------------------------------- building

    def build(self, query_shape, values_shape=None, keys_shape=None):
        keys_shape = keys_shape or self._keys_shape or values_shape
        self._maybe_build_keys(keys_shape)
        self.build_attention(tuple(query_shape), tuple(keys_shape), tuple(values_shape))

    def build_keys(self, keys_shape):
        """Create the weights `compute_projected_keys` needs (hook, default none)."""

    def build_attention(self, query_shape, keys_shape, values_shape):
        """Create every other weight (hook, default none)."""

    def _maybe_build_keys(self, keys_shape):
        if self._keys_shape is None:
            self._keys_shape = tuple(keys_shape)
            self.build_keys(self._keys_shape)

    def get_build_config(self):
        config = super().get_build_config()
        # A layer driven with `projected_keys=` only never sees `keys` in `call`; remember the
        # key shape `project_keys` was built with so loading rebuilds the same weights.
        if config and "shapes_dict" in config and self._keys_shape is not None:
            config = {**config, "shapes_dict": {**config["shapes_dict"],
                                                "keys_shape": tuple(self._keys_shape)}}
        return config

    # ------------------------------------------------------------------------------ keys

    # Plain Python around Keras' own `__call__`: AutoGraph must leave it alone like Keras'
    # own methods (it cannot convert these `with` blocks and would warn at every trace).
    @tf.autograph.experimental.do_not_convert
    def project_keys(self, keys):
        """Query-independent transform of the keys, done once outside a decoder loop."""
        self._maybe_build_keys(tuple(keys.shape))
        with detached_masks(keys):
            return self.compute_projected_keys(keys)

    def compute_projected_keys(self, keys):
        """The transform `project_keys` applies (hook, default identity)."""
        return keys

    def resolve_keys(self, values, keys=None, projected_keys=None):
        """`projected_keys` if given, else `project_keys(keys if given else values)`."""
        if projected_keys is not None:
            return projected_keys
        return self.project_keys(values if keys is None else keys)

    # ------------------------------------------------------------------------------ state

    def get_initial_state(self, values, mask=None):
        """Alignment state before the first step: None for stateless layers, which ignore
        `state` (stateful layers override)."""

    # ------------------------------------------------------------------------------ masks

    @tf.autograph.experimental.do_not_convert
    def __call__(self, query, values, *args, **kwargs):
        # `call(query, values, keys, mask, ...)`: `keys` is `args[0]`, `mask` `args[1]`.
        keys = args[0] if args else kwargs.get("keys")
        if len(args) < 2 and kwargs.get("mask") is None:
            source_mask = get_keras_mask(values if keys is None else keys)
            if source_mask is not None:
                kwargs["mask"] = source_mask
        # The masks are consumed here: detach them while the sublayers (Dense, EinsumDense,
        # Conv1D) see the inputs, so none of them warns that it drops a mask.
        with detached_masks(query, values, keys):
            outputs = super().__call__(query, values, *args, **kwargs)
        # The target-side mask of a rank-3 query describes the rows of `context`.
        query_mask = get_keras_mask(query)
        if query_mask is not None and len(query.shape) == 3:
            set_keras_mask(outputs[0], query_mask)
        return outputs

    def compute_mask(self, inputs, previous_mask=None):
        # The source padding mask is consumed, not propagated; `__call__` puts the query's
        # mask on `context` itself.
        return None

    # --------------------------------------------------------------------------- attending

    def call(self, query, values, keys=None, mask=None, state=None, projected_keys=None,
             training=None):
        keys = self.resolve_keys(values, keys, projected_keys)
        query3d, squeeze = expand_query(self.compute_projected_query(query))
        if self.uses_state and state is None:
            state = self.get_initial_state(values, mask)
        context, weights, next_state = self.attend(query3d, keys, values, mask, state,
                                                   training=training)
        return squeeze_outputs(squeeze, context, weights,
                               *((next_state,) if self.uses_state else ()))

    def compute_projected_query(self, query):
        """Transform of the query before the T axis is added (hook, default identity)."""
        return query

    def attend(self, query, keys, values, mask, state=None, training=None):
        """`(context [batch, T, value_dim], weights [batch, T, S], next_state)` for the
        queries `[batch, T, query_dim]`: scores → masked softmax → context (hook)."""
        scores = self.compute_scores(query, keys)
        weights = self.compute_weights(scores, expand_mask(mask), training=training)
        weights = ops.cast(weights, values.dtype)
        return self.compute_context(weights, values, training=training), weights, state

    def compute_scores(self, query, keys):
        """Scores `[batch, T, S]` of `query [batch, T, query_dim]` against the (projected)
        keys `[batch, S, ...]` (the layer's formula)."""
        raise NotImplementedError

    def compute_weights(self, scores, mask, training=None):
        """Attention weights from the scores; `mask` is boolean `[batch, 1, S]` or None
        (hook, default `masked_softmax`)."""
        return masked_softmax(scores, mask)

    def compute_context(self, weights, values, training=None):
        """Context `[batch, T, value_dim]` from the weights (hook, default
        `weighted_context`)."""
        return weighted_context(weights, values)


def clone_initializer(initializer):
    """A fresh copy of a Keras initializer.

    Keras 3 random initializers without a seed are stateless: one instance used for two
    weights of the same shape gives them the same values. Every weight gets its own copy.
    """
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())


def masked_softmax(scores, mask):
    """Softmax over the last axis giving exactly 0 on masked positions and no NaN on empty rows.

    `scores` is `[..., S]`; `mask` is boolean, broadcastable to `scores` (None = all valid).
    Computed in float32 so mixed-precision callers stay stable.
    """
    dtype = scores.dtype
    scores = ops.cast(scores, "float32")
    if mask is None:
        exp = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
        return ops.cast(exp / ops.sum(exp, axis=-1, keepdims=True), dtype)
    mask = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(scores))
    scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
    scores = scores - ops.max(scores, axis=-1, keepdims=True)
    exp = ops.where(mask, ops.exp(scores), ops.zeros_like(scores))
    total = ops.sum(exp, axis=-1, keepdims=True)
    weights = exp / ops.maximum(total, 1e-9)
    return ops.cast(weights, dtype)


def expand_query(query):
    """Return `(query3d, squeeze)`: rank-2 queries become `[batch, 1, dim]`."""
    if len(query.shape) == 2:
        return ops.expand_dims(query, 1), True
    return query, False


def expand_mask(mask, query3d=None):
    """`[batch, S]` mask → `[batch, 1, S]`, broadcastable to `[batch, T, S]` scores."""
    if mask is None:
        return None
    return ops.expand_dims(ops.cast(mask, "bool"), 1)


def weighted_context(weights, values):
    """`weights [batch, T, S] @ values [batch, S, dim]` → `[batch, T, dim]`."""
    return ops.matmul(ops.cast(weights, values.dtype), values)


def vector_scores(hidden, vector):
    """`hidden [..., U] · vector [U]` → `[...]`, the last step of MLP scores (`vᵀ tanh(·)`).

    Written as a matmul: XLA on CPU compiles multiply-and-reduce into a loop several times
    slower than the matmul kernel a dot goes to (about 4x for the backward pass of additive
    attention at batch 64, T = S = 32, 512 units).
    """
    vector = ops.cast(vector, hidden.dtype)
    return ops.squeeze(ops.matmul(hidden, ops.expand_dims(vector, -1)), -1)


def squeeze_outputs(squeeze, context, weights, *rest):
    """Drop the T axis added by `expand_query` from `context` and `weights`."""
    if squeeze:
        context, weights = ops.squeeze(context, 1), ops.squeeze(weights, 1)
    return (context, weights, *rest)


def valid_lengths(values, mask=None):
    """Number of real positions per row, float32 `[batch]`."""
    if mask is None:
        return ops.cast(ops.full((ops.shape(values)[0],), ops.shape(values)[1]), "float32")
    return ops.sum(ops.cast(mask, "float32"), axis=-1)


def scan_steps(step, query3d, values, state):
    """Run `step(query_t [B, Dq], state) -> (context_t, weights_t, next_state)` over T.

    Returns `(context [B, T, Dv], weights [B, T, S], final_state)`. Used by stateful layers
    for rank-3 queries. A `tf.while_loop` with `maximum_iterations` (XLA needs the bound to
    differentiate through the loop), so it compiles with `jit_compile=True`, gradients
    included.
    """
    steps = ops.shape(query3d)[1]
    # Read per step from a TensorArray: the gradient of `tensor[t]` would be a [T, ...] zero
    # tensor per step, summed over T (see zoo.layers.lstm_loop.time_steps).
    time_major = tf.TensorArray(query3d.dtype, size=steps).unstack(
        ops.transpose(query3d, (1, 0, 2)))
    contexts = tf.TensorArray(values.dtype, size=steps)
    weights = tf.TensorArray(values.dtype, size=steps)

    def body(t, state, contexts, weights):
        context_t, weights_t, state = step(time_major.read(t), state)
        return (t + 1, state, contexts.write(t, ops.cast(context_t, values.dtype)),
                weights.write(t, ops.cast(weights_t, values.dtype)))

    _, state, contexts, weights = tf.while_loop(
        lambda t, *_: t < steps, body, (0, state, contexts, weights),
        maximum_iterations=steps)
    return (ops.transpose(contexts.stack(), (1, 0, 2)), ops.transpose(weights.stack(), (1, 0, 2)),
            state)


def step_through(step, query, values, state):
    """Run `step(query_t [B, Dq], state) -> (context_t, weights_t, next_state)` over the T
    queries of `query [B, T, Dq]`: one call for T == 1 (a decoder step), else `scan_steps`.
    Returns `(context [B, T, Dv], weights [B, T, S], final_state)`."""
    if query.shape[1] == 1:
        context, weights, state = step(query[:, 0], state)
        return context[:, None], weights[:, None], state
    return scan_steps(step, query, values, state)
