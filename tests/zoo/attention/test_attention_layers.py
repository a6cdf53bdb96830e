"""Every registered attention layer through the shared checks of `layer_test_case`."""

import inspect
import warnings

import keras
import numpy as np
import pytest

import zoo
from tests.layer_test_case import call_layer, make_inputs, run_layer_test, step_loop

# What a layer documents about itself, where it differs from the strict defaults of
# `run_layer_test` (weights sum to 1, deterministic, rank-2 steps == rank-3 rows).
LAYER_PROPERTIES = {
    "hard": {"random_training": True},
    "local": {"weights_sum": "at_most_one"},  # local-p's Gaussian (the default mode)
    "monotonic": {"weights_sum": "at_most_one"},
}

# Non-default options, each run through every check as well.
OPTION_CASES = [
    ("additive", {"normalize": True, "units": 5}, {}),
    ("cosine", {"project_query": True, "temperature": 0.5}, {}),
    ("hard", {"straight_through": False, "temperature": 0.5, "seed": 2},
     {"random_training": True}),
    ("hard", {"sample_at_inference": True, "seed": 1},
     {"random_training": True, "random_inference": True}),
    ("local", {"mode": "m", "window_size": 1}, {"weights_sum": "one", "compiled": True,
                                                "compiled_gradients": True}),
    ("local", {"mode": "p", "window_size": 2, "score": "dot", "units": 5}, {}),
    ("location_sensitive", {"smoothing": True, "filters": 3, "kernel_size": 3, "units": 5},
     {}),
    ("luong_concat", {"scale": True, "units": 5}, {}),
    ("luong_dot", {"scale": True}, {}),
    ("luong_general", {"scale": True, "use_bias": True}, {}),
    ("monotonic", {"normalize": False, "sigmoid_noise": 1.0, "score_bias_init": -1.0,
                   "seed": 3}, {"random_training": True}),
    ("multi_head", {"num_heads": 2, "causal": True, "return_all_heads": True, "dropout": 0.3},
     # The causal mask depends on T and S, so rows are neither steps nor padding-invariant.
     {"random_training": True, "steps_match_sequence": False, "padding_invariant": False}),
    ("multi_head", {"num_heads": 2, "key_dim": 3, "value_dim": 5, "output_dim": 7,
                    "use_bias": False}, {}),
    ("scaled_dot_product", {"units": 4, "value_units": 5, "use_bias": True, "dropout": 0.3},
     {"random_training": True}),
]


def all_cases():
    cases = [pytest.param(name, {}, {}, id=name) for name in zoo.attention.names()]
    for i, (name, kwargs, props) in enumerate(OPTION_CASES):
        # Compiling is most of the cost: every default case is compiled (forward and
        # gradients); an option case only where it adds a code path of its own (`compiled`)
        # and with gradients where it adds a noise path (dropout, Gumbel, pre-sigmoid noise).
        noisy = props.get("random_training", False) or props.get("random_inference", False)
        props = {"compiled": noisy, "compiled_gradients": noisy, **props}
        cases.append(pytest.param(name, kwargs, props, id=f"{name}-options{i}"))
    return cases


@pytest.mark.parametrize("name, init_kwargs, properties", all_cases())
def test_layer(name, init_kwargs, properties, tmp_path):
    options = {**LAYER_PROPERTIES.get(name, {}), **properties}
    run_layer_test(zoo.attention.get_class(name), init_kwargs, directory=str(tmp_path),
                   **options)


def test_option_cases_name_registered_layers():
    assert {name for name, _, _ in OPTION_CASES} <= set(zoo.attention.names())
    assert set(LAYER_PROPERTIES) <= set(zoo.attention.names())


@pytest.mark.parametrize("name", zoo.attention.names())
def test_registered_layer_follows_the_contract(name):
    cls = zoo.attention.get_class(name)
    assert issubclass(cls, zoo.attention.BaseAttention)
    assert cls.registered_name == name
    assert cls.__name__ in zoo.attention.__all__ and getattr(zoo.attention, cls.__name__) is cls
    assert keras.saving.get_registered_name(cls) == f"zoo>{cls.__name__}"
    # One public class per snake_case file named after the registered name.
    assert cls.__module__ == f"zoo.attention.{name}"
    signature = inspect.signature(cls.call)
    assert list(signature.parameters)[1:] == [
        "query", "values", "keys", "mask", "state", "projected_keys", "training"]
    # Every constructor argument has a default, and get_config mirrors __init__.
    init = inspect.signature(cls.__init__).parameters
    args = [p for p in init.values() if p.kind is p.POSITIONAL_OR_KEYWORD][1:]
    assert all(p.default is not p.empty for p in args)
    assert {p.name for p in args} <= set(cls().get_config())
    for section in ("Args:", "Call arguments:", "Returns:", "Example:"):
        assert section in cls.__doc__, f"{name}: docstring lacks {section}"
    assert isinstance(cls.uses_state, bool)


@pytest.mark.parametrize("name", zoo.attention.names())
def test_defaults_work_at_translator_size(name):
    """Default arguments at query_dim == key_dim == 512, driven like the translator (the
    compiled version of this loop runs in `test_layer`, at a smaller size)."""
    inputs = make_inputs(seed=1, batch=2, src_len=3, tgt_len=2, dim=512, lengths=(3, 2))
    layer = zoo.attention.get(name)
    contexts, weights, _ = step_loop(layer, inputs["query3"], inputs["values"],
                                     inputs["mask"], training=True)
    assert contexts.shape == (2, 2, 512) and weights.shape == (2, 2, 3)
    assert np.all(np.isfinite(contexts.numpy()))


def test_query_keras_mask_is_passed_on_to_context():
    tokens = np.array([[1, 2, 0], [3, 0, 0]])
    query = keras.layers.Embedding(5, 8, mask_zero=True)(tokens)
    values = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context, _ = zoo.attention.get("luong_dot")(query, values)
    from keras.src.backend import get_keras_mask

    np.testing.assert_array_equal(get_keras_mask(context).numpy(), tokens != 0)
    # ...and the query keeps its own mask.
    np.testing.assert_array_equal(get_keras_mask(query).numpy(), tokens != 0)


def test_stateless_layers_have_no_state():
    values = np.zeros((2, 3, 4), "float32")
    for name in zoo.attention.names():
        layer = zoo.attention.get(name)
        if not layer.uses_state:
            assert layer.get_initial_state(values) is None


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match="luong_dot"):
        zoo.attention.get("luong_dott")


@pytest.mark.parametrize("name", ["additive", "multi_head", "location_sensitive"])
def test_build_config_remembers_the_projected_key_shape(name):
    """Keys of another size than the values, passed only through `projected_keys`: the build
    config still rebuilds the key projection with the keys' size."""
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 8)).astype("float32")
    values = rng.normal(size=(2, 5, 8)).astype("float32")
    keys = rng.normal(size=(2, 5, 6)).astype("float32")
    layer = zoo.attention.get(name, num_heads=2) if name == "multi_head" else (
        zoo.attention.get(name))
    projected = layer.project_keys(keys)
    expected = call_layer(layer, query, values, projected_keys=projected)
    clone = layer.__class__.from_config(layer.get_config())
    clone.build_from_config(layer.get_build_config())
    clone.set_weights(layer.get_weights())
    actual = call_layer(clone, query, values, projected_keys=clone.project_keys(keys))
    for a, e in zip(actual, expected, strict=True):
        if e is not None:
            np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=1e-6)
