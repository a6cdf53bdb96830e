"""int8 exports (`zoo export --quantize int8`): Keras post-training quantization covers every
matmul of the translator's decode step (the decoder's LSTM cells, the attention projections,
the output projection); the export keeps its signature and its op check."""

import json

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

from export import export_model
from export.saved_model import METADATA_FILE, quantized_copy
from zoo.layers.quantizable_lstm_cell import QuantizableLSTMCell

TEXTS = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee.",
         "Eine Frau in einem roten Kleid liest ein Buch.", "Kinder spielen am Strand."]


def _variables(layer):
    return [(v.name, v.dtype, tuple(v.shape)) for v in layer.weights]


def test_quantized_cell_computes_the_float_cell_within_int8_error():
    rng = np.random.default_rng(0)
    cell = QuantizableLSTMCell(8)
    cell.build((None, 4))
    inputs = rng.normal(size=(3, 4)).astype("float32")
    states = [rng.normal(size=(3, 8)).astype("float32") for _ in range(2)]
    h_float, (_, c_float) = cell(inputs, states)
    float_kernel = cell.kernel.numpy()

    cell.quantize("int8")
    assert cell.quantization_mode == "int8" and cell.dtype_policy.name == "int8_from_float32"
    assert cell.kernel.dtype == "int8" and cell.recurrent_kernel.dtype == "int8"
    assert cell.kernel_scale.shape == (32,)  # one scale per output channel (4 gates × 8)
    dequantized = cell.kernel.numpy() / cell.kernel_scale.numpy()
    step = np.abs(float_kernel).max(axis=0) / 127  # per channel
    assert np.all(np.abs(dequantized - float_kernel) <= step / 2 + 1e-6)
    h_int8, (_, c_int8) = cell(inputs, states)
    np.testing.assert_allclose(h_int8, h_float, atol=0.02)
    np.testing.assert_allclose(c_int8, c_float, atol=0.05)

    # A cell made from the quantized cell's config builds the same int8 variables in the
    # same order, so saved weights load into it.
    again = QuantizableLSTMCell.from_config(cell.get_config())
    again.build((None, 4))
    assert _variables(again) == _variables(cell)
    again.set_weights(cell.get_weights())
    np.testing.assert_array_equal(again(inputs, states)[0], h_int8)
    with pytest.raises(NotImplementedError):
        _quantize_built("int4")


def _quantize_built(mode):
    cell = QuantizableLSTMCell(8)
    cell.build((None, 4))
    cell.quantize(mode)


def test_quantized_copy_covers_the_decode_step_and_leaves_the_model(trained_translator):
    model = trained_translator.model
    quantized = quantized_copy(model, "int8")
    decoder = quantized.decoder
    assert all(cell.kernel.dtype == "int8" for cell in decoder.cells)
    for layer in (decoder.output_projection, decoder.attentional_projection,
                  decoder.attention.query_projection, decoder.embedding):
        assert layer.quantization_mode == "int8", layer.name
    assert model.decoder.cells[0].kernel.dtype == "float32"  # the trained model is untouched
    assert model.decoder.output_projection.quantization_mode is None
    with pytest.raises(ValueError, match="quantize must be one of int8"):
        quantized_copy(model, "int3")

    # Teacher-forced logits of real sentences: int8 stays within a few % of float32.
    ids = model.encode_texts(TEXTS)
    inputs = {"source_ids": ids, "target_in": ids}
    float_logits = keras.ops.convert_to_numpy(model(inputs, training=False))
    int8_logits = keras.ops.convert_to_numpy(quantized(inputs, training=False))
    assert np.abs(int8_logits - float_logits).max() < 0.05 * np.abs(float_logits).max()
    assert (int8_logits.argmax(-1) == float_logits.argmax(-1)).mean() > 0.9



def test_a_lone_sentence_decodes_beside_a_copy_when_int8(trained_translator, monkeypatch):
    """Greedy int8 decoding of one sentence runs two rows (XLA:CPU's int8 dot is slower for
    one row than for two) and returns the one: the same ids as one row decoded alone."""
    model = trained_translator.model
    quantized = quantized_copy(model, "int8")
    assert quantized.is_int8_quantized() and not model.is_int8_quantized()
    ids = quantized.encode_texts(TEXTS)
    for row in range(len(TEXTS)):
        padded = quantized.greedy_decode(ids[row:row + 1])
        assert padded["ids"].shape[0] == 1 and padded["lengths"].shape == (1,)
        with monkeypatch.context() as patch:
            patch.setattr(quantized, "is_int8_quantized", lambda: False)
            alone = quantized.greedy_decode(ids[row:row + 1])
        for key in ("ids", "lengths"):
            np.testing.assert_array_equal(padded[key], alone[key])
        np.testing.assert_allclose(padded["attention"], alone["attention"], atol=1e-5)
    batch = quantized.greedy_decode(ids)  # two rows or more: no copy
    assert batch["ids"].shape[0] == len(TEXTS)

def test_int8_export_serves_the_quantized_translations(trained_translator, tmp_path,
                                                         tracking_dir):
    from zoo.cli import main

    run_id = trained_translator.run_id
    status = main(["export", f"runs:/{run_id}", "--model-dir", str(tmp_path), "--name", "int8",
                   "--quantize", "int8", "--check"])
    assert status == 0
    path = tmp_path / "int8" / "1"
    metadata = json.loads((path / "assets.extra" / METADATA_FILE).read_text())
    assert metadata["precision"] == "int8" and metadata["jit_compile"] is True
    assert metadata["op_check"]["ok"] is True
    saved = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    assert tf.int8 in set(saved.get_variable_to_dtype_map().values())
    served = tf.saved_model.load(str(path)).signatures["serving_default"](
        text=tf.constant(TEXTS))
    expected = quantized_copy(trained_translator.model, "int8").translate(TEXTS)
    assert [t.decode() for t in served["translation"].numpy()] == expected
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    assert tags["zoo.export.int8.1"].startswith("int8, jit_compile=True")

    float_export = export_model(trained_translator.model, tmp_path, name="float",
                                warmup_lengths=())
    metadata = json.loads((float_export / "assets.extra" / METADATA_FILE).read_text())
    assert metadata["precision"] == "float32"
