"""Greedy and beam search (zoo.decoding): on toy bigram models whose answers are known, and
on tiny translators (beam = greedy at width 1, jit = eager, hypotheses re-scored by teacher
forcing)."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.decoding import BeamSearch, DecodingStrategy, GreedySearch, length_penalty
from zoo.decoding.strategy import NEG_INF
from zoo.text import BOS_ID, EOS_ID, PAD_ID

A, B, C, D = 4, 5, 6, 7  # toy vocabulary: PAD UNK BOS EOS a b c d
VOCAB = 8
TINY_RNN = {"vocab_size": 40, "embedding_dim": 8, "encoder_units": 8, "decoder_units": 16,
            "encoder_layers": 1, "dropout": 0.0}
TINY_TRANSFORMER = {"vocab_size": 40, "d_model": 16, "num_layers": 2, "num_heads": 2,
                    "ffn_dim": 32, "dropout": 0.0}


# ------------------------------------------------------------------------------ toy models


def bigram_table(rows):
    """`rows[token] = {next: prob}` → float32 `[V, V]` logits (log-probabilities; tokens not
    listed get a negligible probability)."""
    table = np.full((VOCAB, VOCAB), 1e-9)
    for token, row in rows.items():
        for next_token, prob in row.items():
            table[token, next_token] = prob
    return np.log(table / table.sum(1, keepdims=True)).astype("float32")


def restricted_log_probs(logits):
    """What the search ranks by: log-softmax with PAD and BOS ruled out."""
    logits = np.array(logits, dtype="float64")
    logits[..., [PAD_ID, BOS_ID]] = NEG_INF
    logits -= logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def bigram_step_fn(table, attend=None, source_length=3):
    """A step function whose next-token distribution depends on the previous token only.

    `attend[token]` is the source position a step fed `token` attends to (one-hot); the
    state counts steps (reordered with the beams, checked at the end)."""
    table = tf.constant(table)
    attend = np.zeros(VOCAB, "int32") if attend is None else np.asarray(attend, "int32")
    attend = tf.constant(attend)

    def step_fn(tokens, step, state):
        logits = tf.gather(table, tokens)
        weights = tf.one_hot(tf.gather(attend, tokens), source_length)
        return logits, weights, {"steps": state["steps"] + 1, "last": tokens}

    return step_fn


def run(strategy, table, attend=None, batch=1, max_length=6, source_length=3, jit=False):
    step_fn = bigram_step_fn(table, attend, source_length)
    rows = batch * strategy.beam_width

    def decode():
        state = {"steps": tf.zeros([rows], tf.int32), "last": tf.zeros([rows], tf.int32)}
        mask = tf.ones([rows, source_length], tf.bool)
        return strategy.decode(step_fn, state, batch, max_length, mask)._asdict()

    result = tf.function(decode, jit_compile=True)() if jit else decode()
    return {key: value.numpy() for key, value in result.items()}


def sequence_log_prob(table, ids):
    """Sum of the restricted log-probabilities of `ids` (up to EOS) after BOS."""
    log_probs = restricted_log_probs(table)
    total, previous = 0.0, BOS_ID
    for token in ids:
        if token == PAD_ID:
            break
        total += log_probs[previous, token]
        previous = token
    return total


# ------------------------------------------------------------------------------ toy tests


def test_length_penalty_changes_the_ranking():
    # "EOS" (p = 0.52) against "a EOS" (p = 0.48 · 0.99): log-probability prefers the short
    # one; GNMT's length penalty with α = 2 divides the long one's by ((5 + 2)/6)² and turns
    # the order round.
    table = bigram_table({BOS_ID: {EOS_ID: 0.52, A: 0.48}, A: {EOS_ID: 0.99, B: 0.01}})
    plain = run(BeamSearch(2, n_best=2), table)
    assert plain["ids"][0, :, :2].tolist() == [[EOS_ID, PAD_ID], [A, EOS_ID]]
    assert plain["lengths"][0].tolist() == [1, 2]
    penalised = run(BeamSearch(2, length_penalty=2.0, n_best=2), table)
    assert penalised["ids"][0, :, :2].tolist() == [[A, EOS_ID], [EOS_ID, PAD_ID]]
    np.testing.assert_allclose(penalised["log_probs"][0],
                               [np.log(0.48 * 0.99), np.log(0.52)], atol=1e-5)
    np.testing.assert_allclose(
        penalised["scores"][0],
        penalised["log_probs"][0] / length_penalty([2, 1], 2.0).numpy(), rtol=1e-6)


def test_beam_search_finds_what_greedy_misses():
    # Greedy takes "a" (0.6) and is then stuck with 0.34; "b EOS" (0.4 · 0.95) is better.
    table = bigram_table({BOS_ID: {A: 0.6, B: 0.4}, A: {C: 0.34, D: 0.33, EOS_ID: 0.33},
                          B: {EOS_ID: 0.95, C: 0.05}, C: {EOS_ID: 1.0}, D: {EOS_ID: 1.0}})
    greedy = run(GreedySearch(), table)
    assert greedy["ids"][0, 0, :3].tolist() == [A, C, EOS_ID]
    beam = run(BeamSearch(2), table)
    assert beam["ids"][0, 0, :2].tolist() == [B, EOS_ID]
    assert beam["log_probs"][0, 0] > greedy["log_probs"][0, 0]
    np.testing.assert_allclose(beam["log_probs"][0, 0], np.log(0.4 * 0.95), atol=1e-5)


def test_coverage_penalty_prefers_hypotheses_that_cover_the_source():
    # Stopping at once leaves source position 1 unattended; "a EOS" attends to both.
    table = bigram_table({BOS_ID: {EOS_ID: 0.6, A: 0.4}, A: {EOS_ID: 0.99, B: 0.01}})
    attend = np.zeros(VOCAB, "int32")
    attend[A] = 1  # the step fed "a" attends to position 1; every other step to position 0
    plain = run(BeamSearch(2, n_best=2), table, attend, source_length=2)
    assert plain["ids"][0, 0, 0] == EOS_ID
    covered = run(BeamSearch(2, coverage_penalty=0.1, n_best=2), table, attend,
                  source_length=2)
    assert covered["ids"][0, 0, :2].tolist() == [A, EOS_ID]
    np.testing.assert_allclose(covered["scores"][0, 0], np.log(0.4 * 0.99), atol=1e-5)
    np.testing.assert_allclose(covered["attention"][0, 0, :2], [[1, 0], [0, 1]])


def random_table(seed):
    rng = np.random.default_rng(seed)
    return bigram_table({token: dict(enumerate(rng.dirichlet(np.full(VOCAB, 0.5))))
                         for token in range(VOCAB)})


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_n_best_sorted_and_scores_consistent(alpha):
    table = random_table(1)
    result = run(BeamSearch(4, length_penalty=alpha, n_best=4), table, batch=2, max_length=5)
    for row in range(2):
        scores = result["scores"][row]
        assert np.all(np.diff(scores) <= 0), scores
        np.testing.assert_allclose(
            scores, result["log_probs"][row] / length_penalty(result["lengths"][row],
                                                              alpha).numpy(), rtol=1e-5)
        assert len({tuple(ids) for ids in result["ids"][row]}) == 4  # distinct hypotheses
        for hyp in range(4):
            ids, length = result["ids"][row, hyp], result["lengths"][row, hyp]
            np.testing.assert_allclose(result["log_probs"][row, hyp],
                                       sequence_log_prob(table, ids), atol=1e-4)
            ended = np.flatnonzero(ids == EOS_ID)
            assert length == (ended[0] + 1 if ended.size else 5)
            assert np.all(ids[length:] == PAD_ID) and np.all(ids[:length] != PAD_ID)
            assert np.all(result["attention"][row, hyp, length:] == 0)
            np.testing.assert_allclose(result["attention"][row, hyp, :length].sum(-1), 1.0)


def test_unfinished_hypotheses_stop_at_max_length():
    table = bigram_table({token: {A: 0.7, B: 0.3} for token in range(VOCAB)})
    result = run(BeamSearch(3, n_best=3), table, max_length=4)
    assert result["lengths"][0].tolist() == [4, 4, 4]
    assert result["ids"][0, 0].tolist() == [A, A, A, A]
    greedy = run(GreedySearch(), table, max_length=4)
    assert greedy["lengths"][0, 0] == 4 and greedy["ids"][0, 0].tolist() == [A, A, A, A]


def test_beam_width_1_is_greedy_on_a_toy_model():
    table = random_table(2)
    greedy = run(GreedySearch(), table, batch=3, max_length=7)
    beam = run(BeamSearch(1), table, batch=3, max_length=7)
    for key in ("ids", "lengths", "attention"):
        np.testing.assert_array_equal(beam[key], greedy[key])
    np.testing.assert_allclose(beam["log_probs"], greedy["log_probs"], atol=1e-6)


def test_toy_beam_search_compiles_with_xla_and_matches_eager():
    table = random_table(3)
    strategy = BeamSearch(3, length_penalty=0.6, coverage_penalty=0.2, n_best=2)
    eager = run(strategy, table, attend=np.arange(VOCAB) % 3, batch=2)
    jitted = run(strategy, table, attend=np.arange(VOCAB) % 3, batch=2, jit=True)
    np.testing.assert_array_equal(jitted["ids"], eager["ids"])
    np.testing.assert_array_equal(jitted["lengths"], eager["lengths"])
    np.testing.assert_allclose(jitted["scores"], eager["scores"], atol=1e-5)
    np.testing.assert_allclose(jitted["attention"], eager["attention"])


def test_strategy_from_config_and_argument_checks():
    assert isinstance(DecodingStrategy.from_config({"decoding": "greedy"}), GreedySearch)
    beam = DecodingStrategy.from_config({"decoding": "beam", "beam_width": 4,
                                         "length_penalty": 0.6, "n_best": 2})
    assert (beam.beam_width, beam.length_penalty, beam.n_best) == (4, 0.6, 2)
    with pytest.raises(ValueError, match="n_best"):
        BeamSearch(2, n_best=3)
    with pytest.raises(ValueError, match="beam_width"):
        BeamSearch(0)
    with pytest.raises(ValueError, match="decoding"):
        DecodingStrategy.from_config({"decoding": "sampling"})


# ------------------------------------------------------------------------ tiny translators


def sharpen(model, factor=8.0):
    """Scale the untrained output layer up so next-token distributions are peaked: ranking
    margins far above float round-off (jit vs eager)."""
    layer = model.output_projection if hasattr(model, "output_projection") else (
        model.decoder.output_projection)
    layer.kernel.assign(layer.kernel * factor)
    return model


def source_batch(seed=0, vocab=40):
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, vocab, size=(3, 6)).astype("int32")
    ids[:, -1] = EOS_ID
    ids[1, 3:] = [EOS_ID, 0, 0]
    return ids


MODELS = {
    "luong": ("luong_translator", TINY_RNN),
    "location": ("luong_translator", {**TINY_RNN, "attention": "location_sensitive"}),
    "local": ("luong_translator", {**TINY_RNN, "attention": "local"}),
    "transformer": ("transformer_translator", TINY_TRANSFORMER),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    import keras

    name, overrides = MODELS[request.param]
    keras.utils.set_random_seed(7)
    return sharpen(zoo.build(name, **overrides))


def test_beam_width_1_equals_greedy(model):
    source = source_batch()
    greedy = model.greedy_decode(source)
    beam = model.beam_decode(source, beam_width=1)
    np.testing.assert_array_equal(beam["ids"][:, 0], greedy["ids"])
    np.testing.assert_array_equal(beam["lengths"][:, 0], greedy["lengths"])
    np.testing.assert_allclose(beam["attention"][:, 0], greedy["attention"], atol=1e-6)
    np.testing.assert_allclose(beam["log_probs"][:, 0], greedy["log_probs"], atol=1e-4)


def test_hypotheses_rescore_under_teacher_forcing(model):
    """Each hypothesis' log-probability and attention are those of its own prefix: the
    decoder state (LSTM, alignment state, Transformer cache) followed its beam."""
    source = source_batch(1)
    result = model.beam_decode(source, beam_width=3, n_best=3, length_penalty=0.6)
    ids = result["ids"].numpy()
    batch, n_best, steps = ids.shape
    assert result["attention"].shape == (batch, n_best, steps, source.shape[1])
    flat = ids.reshape(batch * n_best, steps)
    target_in = np.concatenate([np.full((len(flat), 1), BOS_ID), flat[:, :-1]], 1)
    repeated = np.repeat(source, n_best, axis=0)
    logits = model({"source_ids": repeated, "target_in": target_in}, training=False)
    log_probs = restricted_log_probs(logits.numpy())
    attention = model.teacher_forced_attention(repeated, target_in).numpy()
    lengths = result["lengths"].numpy().reshape(-1)
    for row in range(len(flat)):
        length = lengths[row]
        expected = log_probs[row, np.arange(length), flat[row, :length]].sum()
        np.testing.assert_allclose(result["log_probs"].numpy().reshape(-1)[row], expected,
                                   atol=1e-3)
        np.testing.assert_allclose(
            result["attention"].numpy().reshape(batch * n_best, steps, -1)[row, :length],
            attention[row, :length], atol=1e-5)
    assert np.all(np.diff(result["scores"].numpy(), axis=1) <= 0)


@pytest.mark.parametrize("name", ["location", "transformer"])
def test_beam_search_compiles_with_xla_and_matches_eager(name):
    import keras

    model_name, overrides = MODELS[name]
    keras.utils.set_random_seed(3)
    model = sharpen(zoo.build(model_name, **overrides))
    source = source_batch(2)
    kwargs = {"beam_width": 3, "n_best": 2, "length_penalty": 0.6, "coverage_penalty": 0.2}
    eager = model.beam_decode(source, **kwargs)
    jitted = tf.function(lambda ids: model.beam_decode(ids, **kwargs), jit_compile=True)(source)
    np.testing.assert_array_equal(jitted["ids"], eager["ids"])
    np.testing.assert_array_equal(jitted["lengths"], eager["lengths"])
    np.testing.assert_allclose(jitted["scores"], eager["scores"], atol=1e-4)
    np.testing.assert_allclose(jitted["attention"], eager["attention"], atol=1e-5)
