"""Export: SavedModel and TensorFlow Lite (float32, int8 weights) read test_data/ as the Keras model does."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from utils import config, devices, export
from utils.model import build_crnn
from utils.predict import load_reader, main as predict_main, predict_images
from utils.preprocess import load_image
from utils.testdata import read_labels

AGREEMENT = 0.95  # the bar: the same text on at least 95% of the words


@pytest.fixture(scope="module")
def reader():
    """The shipped synthetic-only model, which reads 16 of test_data/'s 18 rendered words: outputs to compare.

    An untrained model reads nothing (all blanks), which any export would reproduce; this one reads words, with
    confident scores (trained 75 minutes on 100,000 words): a model that barely reads a word lets int8's rounding
    tip it either way. Loading it takes a second, where training a model on the 18 images took about 70 seconds
    in each of CI's two environments.
    """
    paths, texts = zip(*read_labels(config.TEST_DATA_DIR, real=False))  # the 18 rendered words
    model, vocabulary = load_reader(config.SHIPPED_SYNTHETIC_MODEL)
    return model, vocabulary, list(paths), list(texts)


@pytest.fixture(scope="module")
def exported(reader, tmp_path_factory):
    model, vocabulary, _, _ = reader
    return export.export_all(model, vocabulary, tmp_path_factory.mktemp("export"))


def agreement(first: list[str], second: list[str]) -> float:
    return sum(a == b for a, b in zip(first, second)) / len(first)


def test_the_reader_reads_test_data(reader):
    model, vocabulary, paths, texts = reader
    read = [p.text for p in predict_images(model, paths, vocabulary)]
    assert agreement(read, texts) >= 16 / 18, read  # else agreement below would prove little


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_tflite_reads_like_the_keras_model(reader, exported, quantization):
    model, vocabulary, paths, _ = reader
    keras_texts = [p.text for p in predict_images(model, paths, vocabulary)]
    tflite_model, tflite_vocabulary = load_reader(exported[quantization])  # vocabulary.txt beside it
    assert tflite_vocabulary == vocabulary
    tflite_texts = [p.text for p in predict_images(tflite_model, paths, tflite_vocabulary)]
    assert agreement(tflite_texts, keras_texts) >= AGREEMENT, list(zip(keras_texts, tflite_texts))
    images = np.stack([load_image(str(path)).numpy() for path in paths[:4]])
    difference = np.abs(tflite_model.predict_on_batch(images) - model.predict_on_batch(images)).max()
    assert difference < (1e-3 if quantization == "float32" else 1.0)


def test_int8_weights_make_the_file_about_four_times_smaller(exported):
    assert exported["int8"].stat().st_size < 0.4 * exported["float32"].stat().st_size


def test_saved_model_serves_the_same_logits_for_any_batch(reader, exported):
    model, _, paths, _ = reader
    images = np.stack([load_image(str(path)).numpy() for path in paths])
    loaded = tf.saved_model.load(str(exported["saved_model"]))  # keep it: its variables live as long as it does
    served = loaded.serve(tf.constant(images)).numpy()
    assert served.shape == (len(paths), config.TIME_STEPS, model.output_shape[-1])
    assert np.abs(served - model.predict_on_batch(images)).max() < 1e-4


def test_an_export_is_never_replaced_silently(reader, exported):
    model, _, _, _ = reader
    before = exported["float32"].read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.export_tflite(model, exported["float32"])
    assert exported["float32"].read_bytes() == before
    export.export_tflite(model, exported["float32"], overwrite=True)
    assert exported["float32"].is_file()
    with pytest.raises(ValueError, match="quantization 'int4'"):
        export.export_tflite(model, exported["float32"].with_name("x.tflite"), quantization="int4")


def test_command_line_reads_with_a_tflite_model(reader, exported, capsys):
    _, _, paths, _ = reader
    assert predict_main([*map(str, paths[:3]), "--model", str(exported["int8"])]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(path) for path in paths[:3]]


def test_a_mixed_precision_model_is_exported_in_float32(reader, tmp_path):
    model, _, paths, _ = reader
    devices.use_precision("mixed_bfloat16")
    try:
        mixed = build_crnn("compact", model.output_shape[-1] - 1, batch_norm=config.BATCH_NORM)
    finally:
        devices.use_precision("float32")
    mixed.set_weights(model.get_weights())
    twin = export.float32_copy(mixed)
    assert all(layer.compute_dtype == "float32" for layer in twin.layers)
    images = np.stack([load_image(str(path)).numpy() for path in paths[:4]])
    assert np.abs(twin.predict_on_batch(images) - model.predict_on_batch(images)).max() < 1e-4
    tflite = export.TFLiteModel(export.export_tflite(mixed, tmp_path / "mixed.tflite"))
    assert np.abs(tflite.predict_on_batch(images) - model.predict_on_batch(images)).max() < 1e-3
    assert export.float32_copy(model) is model  # a float32 model is exported as it is
