"""Damaged, foreign and oversized model files end in a message that names them, never a crash (issue 12, items 1 and 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from utils import config, export
from utils.encoding import Vocabulary
from utils.model import build_crnn, load_model
from utils.predict import load_reader, main as predict_main

IMAGE = config.TEST_DATA_DIR / "01_gray_png.png"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> Path:
    """An untrained compact CRNN saved as .keras and .tflite, with its vocabulary: the good files to damage."""
    folder = tmp_path_factory.mktemp("models")
    vocabulary = Vocabulary("abc")
    model = build_crnn("compact", len(vocabulary))
    model.save(folder / "good.keras")
    export.export_tflite(model, folder / "good.tflite")
    vocabulary.save(folder / config.VOCABULARY_FILE)
    return folder


def damaged_copy(source: Path, target: Path, keep: int | None = None, randomise_after: int | None = None) -> Path:
    """``source`` cut to ``keep`` bytes, or with every byte after ``randomise_after`` replaced by seeded noise."""
    data = source.read_bytes()
    if keep is not None:
        data = data[:keep]
    if randomise_after is not None:
        noise = np.random.default_rng(0).integers(0, 256, len(data) - randomise_after, dtype=np.uint8).tobytes()
        data = data[:randomise_after] + noise
    target.write_bytes(data)
    return target


def run_predict(model: Path) -> subprocess.CompletedProcess:
    """``python -m utils.predict`` in a child process: a segfault there fails the test instead of ending pytest."""
    return subprocess.run([sys.executable, "-m", "utils.predict", str(IMAGE), "--model", str(model)], capture_output=True,
                          text=True, cwd=config.REPO_ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)  # fmt: skip


def test_a_tflite_file_that_crashes_the_runtime_is_named_with_exit_status_2(model_files):
    bad = damaged_copy(model_files / "good.tflite", model_files / "random-body.tflite", randomise_after=8)
    result = run_predict(bad)  # the TFL3 header passes, the body made the runtime segfault (exit status 139)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "random-body.tflite: " in result.stderr and "Traceback" not in result.stderr


def test_a_half_copied_tflite_file_is_named(model_files):
    good = model_files / "good.tflite"
    half = damaged_copy(good, model_files / "half.tflite", keep=good.stat().st_size // 2)
    with pytest.raises(ValueError, match=r"half\.tflite: "):
        export.TFLiteModel(half)


def test_a_file_that_is_not_tflite_at_all_is_refused_before_the_runtime_sees_it(model_files, tmp_path):
    noise = tmp_path / "noise.tflite"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"noise\.tflite: not a TensorFlow Lite model"):
        export.TFLiteModel(noise)


def test_a_good_tflite_file_still_reads(model_files):
    model = export.TFLiteModel(model_files / "good.tflite")
    logits = model.predict_on_batch(np.ones((2, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1), np.float32))
    assert logits.shape == (2, 31, 4)


def test_a_keras_file_that_is_not_a_zip_is_not_called_missing(model_files, tmp_path):
    garbage = damaged_copy(model_files / "good.keras", tmp_path / "garbage.keras", randomise_after=0)
    with pytest.raises(ValueError, match=r"garbage\.keras: not a \.keras model") as caught:
        load_model(garbage)
    assert "not found" not in str(caught.value).lower()


def test_a_half_copied_keras_file_is_named(model_files, tmp_path):
    good = model_files / "good.keras"
    half = damaged_copy(good, tmp_path / "half.keras", keep=good.stat().st_size // 2)
    with pytest.raises(ValueError, match=r"half\.keras: not a \.keras model"):
        load_model(half)


def test_a_flipped_byte_inside_the_weights_is_caught_by_the_checksum(model_files, tmp_path):
    data = bytearray((model_files / "good.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped = tmp_path / "flipped.keras"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flipped\.keras: a damaged \.keras archive"):
        load_model(flipped)


def test_a_keras_file_with_a_lambda_is_refused_in_one_line(tmp_path):
    inputs = keras.Input((4,))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)
    with pytest.raises(ValueError, match=r"lambda\.keras: cannot be loaded as a model of this series \(ValueError: .*Lambda"):
        load_model(path)


def test_a_keras_file_naming_an_unknown_layer_is_refused_in_one_line(model_files, tmp_path):
    path = tmp_path / "unknown.keras"
    with zipfile.ZipFile(model_files / "good.keras") as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                settings = json.loads(data)
                settings["config"]["layers"][1]["class_name"] = "NoSuchLayer"
                data = json.dumps(settings).encode()
            target.writestr(item, data)
    with pytest.raises(ValueError, match=r"unknown\.keras: cannot be loaded as a model of this series") as caught:
        load_model(path)
    assert "\n" not in str(caught.value)


def test_the_command_line_reports_an_unusable_keras_model_with_exit_status_2(model_files, tmp_path, capsys):
    garbage = damaged_copy(model_files / "good.keras", tmp_path / "garbage.keras", randomise_after=0)
    (tmp_path / config.VOCABULARY_FILE).write_text((model_files / config.VOCABULARY_FILE).read_text())
    assert predict_main([str(IMAGE), "--model", str(garbage)]) == 2
    assert "garbage.keras: not a .keras model" in capsys.readouterr().err


def test_a_model_file_over_the_size_limit_is_refused_unread(model_files, monkeypatch):
    monkeypatch.setattr(config, "MAX_MODEL_BYTES", 1000)
    for name in ("good.keras", "good.tflite"):
        with pytest.raises(ValueError, match=rf"{name}: .* MB is more than a model of this series can be"):
            load_reader(model_files / name)


def _with_initializer_option(source: Path, target: Path, option: str, value) -> Path:
    """A copy of a .keras file whose every initializer carries ``option``: what a newer Keras writes."""
    def add(item):
        if isinstance(item, dict):
            if item.get("module") == "keras.initializers" and isinstance(item.get("config"), dict):
                item["config"][option] = value
            for child in item.values():
                add(child)
        elif isinstance(item, list):
            for child in item:
                add(child)

    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for entry in original.infolist():
            data = original.read(entry)
            if entry.filename == "config.json":
                settings = json.loads(data)
                add(settings)
                data = json.dumps(settings).encode()
            copy.writestr(entry, data)
    return target


def test_a_model_saved_by_a_newer_keras_loads_without_the_options_it_added(model_files, tmp_path):
    # Keras 3.14 wrote input_axes=None and output_axes=None into every initializer; Keras 3.13 (Colab's)
    # refused the shipped model for it. An option no Keras knows, set to None, stands for the next such change.
    good = load_model(model_files / "good.keras")
    newer = _with_initializer_option(model_files / "good.keras", tmp_path / "newer.keras", "option_of_a_later_keras", None)
    model = load_model(newer)
    assert [w.tolist() for w in model.get_weights()] == [w.tolist() for w in good.get_weights()]


def test_an_option_of_a_newer_keras_that_is_set_is_not_dropped(model_files, tmp_path):
    newer = _with_initializer_option(model_files / "good.keras", tmp_path / "set.keras", "option_of_a_later_keras", 3)
    with pytest.raises(ValueError, match=r"set\.keras: cannot be loaded as a model of this series") as caught:
        load_model(newer)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("shipped", [config.SHIPPED_MODEL, config.SHIPPED_SYNTHETIC_MODEL], ids=lambda p: p.name)
def test_the_shipped_models_load_on_this_keras(shipped):
    # Saved by Keras 3.15; CI's second environment (make test-colab) loads them with Keras 3.13 too.
    vocabulary = Vocabulary.load(shipped.parent / config.VOCABULARY_FILE)
    assert load_model(shipped).output_shape[1:] == (config.TIME_STEPS, len(vocabulary) + 1)
