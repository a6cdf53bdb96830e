"""Bounded work per request (source cut, decode steps capped, few padded shapes, attention
history written in O(S) per step) and durable export files (fsync, stale staging)."""

import errno
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import zoo
from export import export_model, publish_version
from export.repository import fsync_tree
from export.saved_model import METADATA_FILE
from zoo.config import ConfigError
from zoo.decoding.strategy import write_step
from zoo.models.translator_base import source_length_buckets

TINY = {"vocab_size": 40, "embedding_dim": 8, "encoder_units": 8, "decoder_units": 16,
        "encoder_layers": 1, "dropout": 0.0}
SHORT = "Ein Mann fährt Fahrrad."
# ≈ 16 KiB of German: thousands of subwords before the cut.
LONG = " ".join(["Zwei kleine Hunde spielen im Schnee neben einer Gruppe von Kindern ."] * 240)


@pytest.fixture(scope="module")
def bounded_export(trained_translator, tmp_path_factory):
    root = tmp_path_factory.mktemp("bounded")
    path = export_model(trained_translator.model, root, name="luong_translator",
                        warmup_lengths=())
    return path, tf.saved_model.load(str(path)).signatures["serving_default"]


# ------------------------------------------------------------------------------ bounded work

def test_long_source_is_cut_and_reported(bounded_export, trained_translator):
    model = trained_translator.model
    assert len(LONG.encode()) >= 16 * 1024
    assert (model.max_source_tokens, model.max_decode_steps) == (128, 200)
    _, serve = bounded_export
    out = serve(text=tf.constant([LONG, SHORT]))
    assert out["source_truncated"].numpy().tolist() == [True, False]
    tokens = out["source_tokens"].numpy()
    assert tokens.shape[1] <= model.max_source_tokens
    assert (tokens[0] != b"").sum() == model.max_source_tokens and tokens[0, -1] == b"</s>"
    assert out["target_lengths"].numpy().max() <= model.max_decode_steps
    assert out["attention"].shape[1] <= model.max_decode_steps
    # `translate` cuts the same way: the served and the eager translations agree.
    assert [t.decode() for t in out["translation"].numpy()] == model.translate([LONG, SHORT])


def test_export_metadata_has_the_limits(bounded_export):
    path, _ = bounded_export
    metadata = json.loads((path / "assets.extra" / METADATA_FILE).read_text())
    assert metadata["limits"] == {"max_source_tokens": 128, "max_decode_steps": 200,
                                  "source_lengths": [8, 16, 24, 32, 48, 64, 96, 128]}
    assert metadata["config"]["max_source_tokens"] == 128


def test_source_widths_come_from_a_few_buckets(trained_translator):
    assert source_length_buckets(128) == (8, 16, 24, 32, 48, 64, 96, 128)
    assert source_length_buckets(100) == (8, 16, 24, 32, 48, 64, 96, 104)
    assert source_length_buckets(20) == (8, 16, 24)
    assert source_length_buckets(300)[-4:] == (128, 192, 256, 304)
    words = LONG.split()
    texts = [" ".join(words[:count]) for count in range(1, 160, 3)]
    widths = {int(trained_translator.model.encode_texts(tf.constant([t])).shape[1])
              for t in texts}
    assert widths == set(source_length_buckets(128)), widths


def test_decoding_steps_are_capped():
    model = zoo.build("luong_translator", **TINY, max_decode_steps=7)
    ids = tf.constant(np.full((2, 16), 5, "int32"))
    assert model.greedy_decode(ids)["ids"].shape == (2, 7)  # 1.5 · 16 + 10 = 34 uncapped
    assert model.beam_decode(ids, beam_width=2)["ids"].shape == (2, 1, 7)


def test_configs_without_the_limits_still_load():
    model = zoo.build("luong_translator", **TINY, max_source_tokens=64, max_decode_steps=50)
    config = model.get_config()
    assert (config["max_source_tokens"], config["max_decode_steps"]) == (64, 50)
    old = {k: v for k, v in config.items() if k not in ("max_source_tokens", "max_decode_steps")}
    loaded = type(model).from_config(old)
    assert (loaded.max_source_tokens, loaded.max_decode_steps) == (128, 200)
    with pytest.raises(ConfigError, match="max_source_tokens"):
        zoo.build("luong_translator", **TINY, max_source_tokens=1)
    with pytest.raises(ConfigError):
        zoo.build("luong_translator", **TINY, max_source_token=64)  # unknown key


# ------------------------------------------------------------------------------ write_step

def _where_write_step(buffer, step, values, axis):
    """The former write_step: a `where` over a one-hot time mask (the reference)."""
    hot = tf.equal(tf.range(tf.shape(buffer)[axis]), step)
    hot = tf.reshape(hot, [1] * axis + [-1] + [1] * (len(buffer.shape) - axis - 1))
    return tf.where(hot, tf.expand_dims(tf.cast(values, buffer.dtype), axis), buffer)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("shape,axis", [((3, 5, 4), 1), ((2, 3, 5, 4), 2), ((3, 5), 1)])
def test_write_step_writes_one_slice(shape, axis, jit):
    rng = np.random.default_rng(0)
    buffer = tf.constant(rng.normal(size=shape), tf.float32)
    values = tf.constant(rng.normal(size=shape[:axis] + shape[axis + 1:]), tf.float32)
    f = tf.function(write_step, jit_compile=jit)
    for step in (0, 2, shape[axis] - 1):
        np.testing.assert_array_equal(f(buffer, tf.constant(step), values, axis),
                                      _where_write_step(buffer, step, values, axis))


def _hlo(f, *args):
    return tf.function(f, jit_compile=True).experimental_get_compiler_ir(*args)(stage="hlo")


@pytest.mark.parametrize("beam", [None, 2])
def test_attention_history_is_updated_in_place_not_rewritten(beam):
    """The attention buffer `[batch, (beam,) T, S]` is written by a scatter of one step's
    slice, not by a select over the whole buffer at every step (O(T·S) per step)."""
    model = zoo.build("luong_translator", **TINY)
    ids = tf.constant(np.full((3, 16), 5, "int32"))
    if beam:
        hlo = _hlo(lambda x: model.beam_decode(x, beam_width=beam)["attention"], ids)
        shape = f"f32[3,{beam},34,16]"
    else:
        hlo = _hlo(lambda x: model.greedy_decode(x)["attention"], ids)
        shape = "f32[3,34,16]"
    producing = [line for line in hlo.splitlines() if re.search(rf"= {re.escape(shape)}\S* ",
                                                                line)]
    assert any(" scatter(" in line for line in producing), producing
    assert not any(" select(" in line for line in producing), [
        line for line in producing if " select(" in line]


# ------------------------------------------------------------------------------ durable files

def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_files(path):
    (path / "variables").mkdir()
    (path / "saved_model.pb").write_bytes(b"model")
    (path / "variables" / "variables.index").write_bytes(b"index")


def test_stale_staging_is_removed_and_live_kept(tmp_path):
    import socket

    host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        stale = [f".staging-{dead}-x", f".staging-{dead}@{host}-y"]
        live = [f".staging-{sleeper.pid}-z", f".staging-{os.getpid()}@{host}-w",
                f".staging-{dead}@another.host-v"]  # its writer is not ours to judge
        for name in stale + live:
            (tmp_path / name).mkdir()
            (tmp_path / name / "saved_model.pb").write_bytes(b"half")
        version = publish_version(_write_files, tmp_path)
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted([*live, "1"])
        assert (version / "saved_model.pb").read_bytes() == b"model"
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()])
def test_a_failed_write_leaves_nothing(tmp_path, error):
    def write(path):
        _write_files(path)
        (path / "variables" / "variables.data-00000-of-00001").write_bytes(b"half")
        raise error

    with pytest.raises(type(error)):
        publish_version(write, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def fsynced(monkeypatch):
    """The paths `os.fsync` is called on (the real fsync still runs)."""
    paths, real = [], os.fsync

    def spy(fd):
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return paths


def test_published_files_and_directories_are_fsynced(tmp_path, fsynced):
    staged = []

    def write(path):
        staged.append(path)
        _write_files(path)

    version = publish_version(write, tmp_path)
    staging = str(staged[0])
    before_rename = {os.path.relpath(p, staging) for p in fsynced if p.startswith(staging)}
    assert before_rename == {".", "saved_model.pb", "variables", "variables/variables.index"}
    assert fsynced[-1] == str(tmp_path)  # the rename, after it
    assert (version / "variables" / "variables.index").is_file()


def test_fsync_tree_syncs_deepest_first(tmp_path, fsynced):
    _write_files(tmp_path)
    fsync_tree(tmp_path)
    assert fsynced.index(str(tmp_path / "variables" / "variables.index")) < fsynced.index(
        str(tmp_path / "variables")) < fsynced.index(str(tmp_path))


def test_models_config_is_written_durably(tmp_path, fsynced):
    from serving.tf_serving import write_models_config

    (tmp_path / "m" / "1").mkdir(parents=True)
    _write_files(tmp_path / "m" / "1")
    path = write_models_config(tmp_path)
    assert 'name: "m"' in path.read_text()
    assert any(os.path.basename(p).startswith(".models.config.") for p in fsynced[:-1])
    assert fsynced[-1] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "models.config"]
