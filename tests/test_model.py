"""The CRNN builder: the paper preset is the reference table layer for layer; presets share the shape."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from utils import config
from utils.model import PRESETS, build_crnn, load_model

CHARACTERS = 78  # IAM's character set


def conv_params(kernel: int, inputs: int, filters: int, bias: bool = True) -> int:
    return kernel * kernel * inputs * filters + (filters if bias else 0)


def bilstm_params(inputs: int, units: int) -> int:
    return 2 * 4 * (units * (inputs + units) + units)  # two directions, four gates: kernel, recurrent kernel, bias


def expected_layers(filters: tuple[int, ...], units: int, characters: int) -> list[tuple[str, str, tuple, int]]:
    """(name, class, output shape without batch, parameters) of every layer, worked out by hand from the table."""
    f1, f2, f3, f4, f5, f6, f7 = filters
    return [
        ("image", "InputLayer", (64, 128, 1), 0),
        ("conv1", "Conv2D", (64, 128, f1), conv_params(3, 1, f1)),
        ("relu1", "ReLU", (64, 128, f1), 0),
        ("pool1", "MaxPooling2D", (32, 64, f1), 0),
        ("conv2", "Conv2D", (32, 64, f2), conv_params(3, f1, f2)),
        ("relu2", "ReLU", (32, 64, f2), 0),
        ("pool2", "MaxPooling2D", (16, 32, f2), 0),
        ("conv3", "Conv2D", (16, 32, f3), conv_params(3, f2, f3)),
        ("relu3", "ReLU", (16, 32, f3), 0),
        ("conv4", "Conv2D", (16, 32, f4), conv_params(3, f3, f4)),
        ("relu4", "ReLU", (16, 32, f4), 0),
        ("pool3", "MaxPooling2D", (8, 32, f4), 0),  # halves the height only
        ("conv5", "Conv2D", (8, 32, f5), conv_params(3, f4, f5, bias=False)),
        ("bn5", "BatchNormalization", (8, 32, f5), 4 * f5),
        ("relu5", "ReLU", (8, 32, f5), 0),
        ("conv6", "Conv2D", (8, 32, f6), conv_params(3, f5, f6, bias=False)),
        ("bn6", "BatchNormalization", (8, 32, f6), 4 * f6),
        ("relu6", "ReLU", (8, 32, f6), 0),
        ("pool4", "MaxPooling2D", (4, 32, f6), 0),  # halves the height only
        ("conv7", "Conv2D", (3, 31, f7), conv_params(2, f6, f7)),  # 2x2 valid: 31 time steps
        ("relu7", "ReLU", (3, 31, f7), 0),
        ("columns_first", "Permute", (31, 3, f7), 0),
        ("map_to_sequence", "Reshape", (31, 3 * f7), 0),
        ("bilstm1", "Bidirectional", (31, 2 * units), bilstm_params(3 * f7, units)),
        ("bilstm2", "Bidirectional", (31, 2 * units), bilstm_params(2 * units, units)),
        ("logits", "Dense", (31, characters + 1), (2 * units + 1) * (characters + 1)),
    ]


def layer_table(model: keras.Model) -> list[tuple[str, str, tuple, int]]:
    return [(layer.name, type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params()) for layer in model.layers]


def test_paper_preset_is_the_reference_table_layer_by_layer():
    model = build_crnn("paper", CHARACTERS)
    expected = expected_layers((64, 128, 256, 256, 512, 512, 512), 256, CHARACTERS)
    assert layer_table(model) == expected
    assert model.count_params() == sum(row[3] for row in expected) == 10_839_375
    assert model.output_shape == (None, config.TIME_STEPS, CHARACTERS + 1)


def test_compact_preset_has_the_same_shape_narrower():
    model = build_crnn("compact", CHARACTERS)
    expected = expected_layers((16, 32, 64, 64, 128, 128, 128), config.COMPACT_LSTM_UNITS, CHARACTERS)
    assert layer_table(model) == expected
    assert model.count_params() == sum(row[3] for row in expected)
    paper = build_crnn("paper", CHARACTERS)
    assert [layer.name for layer in model.layers] == [layer.name for layer in paper.layers]
    assert model.count_params() < paper.count_params() / 10


def test_dropout_sits_before_each_recurrent_layer_and_l2_adds_penalties():
    plain = build_crnn("compact", 10)
    model = build_crnn("compact", 10, dropout=0.3, l2=1e-4)
    names = [layer.name for layer in model.layers]
    assert names.index("dropout1") == names.index("bilstm1") - 1
    assert names.index("dropout2") == names.index("bilstm2") - 1
    assert model.get_layer("dropout1").rate == 0.3
    assert not plain.losses and len(model.losses) > 0
    assert not [n for n in [layer.name for layer in plain.layers] if n.startswith("dropout")]
    # Dropout acts in training only: inference is deterministic.
    images = np.random.default_rng(0).random((2, 64, 128, 1), dtype=np.float32)
    np.testing.assert_array_equal(model(images, training=False), model(images, training=False))
    assert not np.allclose(model(images, training=True), model(images, training=False))


def test_bad_arguments_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        build_crnn("huge", 10)
    with pytest.raises(ValueError, match="dropout"):
        build_crnn("compact", 10, dropout=1.5)
    with pytest.raises(ValueError, match="num_characters"):
        build_crnn("compact", 0)
    assert set(PRESETS) == {"paper", "compact"}


def test_saved_model_loads_in_safe_mode_and_predicts_the_same(tmp_path):
    model = build_crnn("compact", 12, dropout=0.25, l2=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)  # safe_mode=True: would refuse a Lambda layer
    assert not [layer for layer in loaded.layers if type(layer).__name__ == "Lambda"]
    images = np.random.default_rng(1).random((3, 64, 128, 1), dtype=np.float32)
    np.testing.assert_array_equal(model.predict_on_batch(images), loaded.predict_on_batch(images))


def test_loading_a_missing_model_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.keras"):
        load_model(tmp_path / "nothing.keras")


def test_batch_norm_everywhere_normalises_every_convolution_but_the_last():
    model = build_crnn("compact", 10, batch_norm="all")
    norms = [layer.name for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert norms == [f"bn{i}" for i in range(1, 7)]
    assert all(not model.get_layer(f"conv{i}").use_bias for i in range(1, 7)) and model.get_layer("conv7").use_bias
    assert model.output_shape == build_crnn("compact", 10).output_shape
    with pytest.raises(ValueError, match="'table' or 'all'"):
        build_crnn("compact", 10, batch_norm="some")


def test_save_model_replaces_a_model_only_whole_and_only_when_asked(tmp_path, monkeypatch):
    from pathlib import Path

    from keras.src.saving import saving_lib

    from utils.model import save_model

    path = tmp_path / "model.keras"
    first, second = build_crnn("compact", 12), build_crnn("compact", 12)
    save_model(first, path)
    written = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(second, path)
    real = saving_lib.save_model

    def killed_mid_write(model, filepath, *args, **kwargs):  # half of the file on disk, then the process stops
        real(model, filepath, *args, **kwargs)
        Path(filepath).write_bytes(Path(filepath).read_bytes()[:1000])
        raise KeyboardInterrupt

    monkeypatch.setattr(saving_lib, "save_model", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_model(second, path, overwrite=True)
    assert path.read_bytes() == written and [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    monkeypatch.undo()
    save_model(second, path, overwrite=True)
    images = np.random.default_rng(2).random((2, 64, 128, 1), dtype=np.float32)
    np.testing.assert_array_equal(load_model(path).predict_on_batch(images), second.predict_on_batch(images))


def test_compact_lstm_units_set_after_import_changes_the_next_model(monkeypatch):
    # Chapter 04's exercise sets config.COMPACT_LSTM_UNITS in the notebook, long after utils.model was imported.
    monkeypatch.setattr(config, "COMPACT_LSTM_UNITS", 128)
    model = build_crnn("compact", CHARACTERS)
    assert model.get_layer("bilstm1").forward_layer.units == 128
    assert layer_table(model) == expected_layers((16, 32, 64, 64, 128, 128, 128), 128, CHARACTERS)
