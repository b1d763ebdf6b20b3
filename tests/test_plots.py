"""The series' figures: the style, save_fig, the CRNN diagram, the CTC alignment and files as on disk."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from utils import config
from utils.encoding import Vocabulary
from utils.model import build_crnn
from utils.plots import (
    as_on_disk, crnn_blocks, ctc_alignment, model_diagram, plain_log_axis, save_fig, use_series_style, word_grid,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_the_series_style_is_readable_on_a_projector():
    use_series_style()
    for key in ("font.size", "axes.labelsize", "xtick.labelsize", "ytick.labelsize", "legend.fontsize"):
        assert plt.rcParams[key] >= 12, key
    assert plt.rcParams["axes.titlesize"] > plt.rcParams["font.size"]
    assert plt.rcParams["savefig.dpi"] == config.FIGURE_DPI == 300


def test_save_fig_writes_a_300_dpi_png_under_the_artifacts_and_refuses_odd_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HTR_ARTIFACTS_DIR", str(tmp_path))
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    path = save_fig("04_curves", fig)
    assert path == tmp_path / "figures" / "04_curves.png"
    with Image.open(path) as image:
        assert round(image.info["dpi"][0]) == 300 and image.width >= 2 * 300 * 0.8
    for bad in ("../escape", "a b", ""):
        with pytest.raises(ValueError, match="figure name"):
            save_fig(bad, fig)


def test_a_log_axis_under_a_decade_gets_plain_labels_with_its_unit():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [15.0, 40.0, 100.0])
    ax.set_yscale("log")
    plain_log_axis(ax.yaxis, "%")
    fig.canvas.draw()
    low, high = ax.get_ylim()
    shown = [tick.get_text() for tick in ax.yaxis.get_ticklabels() if low <= tick.get_position()[1] <= high]
    minor = [tick.get_text() for tick in ax.yaxis.get_ticklabels(minor=True) if tick.get_text()]
    assert shown == ["20%", "50%", "100%"], shown
    assert minor == []


def test_the_diagram_has_one_block_per_stage_with_the_models_shapes_and_parameters():
    model = build_crnn("compact", 10, dropout=0.25, batch_norm="all")
    blocks = crnn_blocks(model)
    assert [block["name"] for block in blocks] == ["input", *(f"conv{n}" for n in range(1, 8)), "to sequence",
                                                   "bilstm1", "bilstm2", "logits"]  # fmt: skip
    assert blocks[0]["shape"] == (64, 128, 1) and blocks[7]["shape"] == (3, 31, 128)
    assert blocks[8]["shape"] == (31, 3 * 128) and blocks[-1]["shape"] == (31, 11)
    assert blocks[1]["layers"] == ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"]
    assert sum(block["parameters"] for block in blocks) == model.count_params()
    fig = model_diagram(model)
    assert len(fig.axes[0].patches) == len(blocks)
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert "31 x 11" in texts and "3 x 31 x 128" in texts


def test_the_alignment_writes_each_steps_best_symbol_under_its_column():
    vocabulary = Vocabulary("abc")
    logits = np.full((1, config.TIME_STEPS, 4), -5.0, dtype=np.float32)
    logits[0, :, 0] = 5.0  # blank everywhere ...
    logits[0, 3, :] = [0, 9, 0, 0]  # ... but "a" at step 3 and "c" at step 10
    logits[0, 10, :] = [0, 0, 0, 9]
    fig = ctc_alignment([np.ones((64, 128, 1), np.float32)], logits, vocabulary, ["a word"])
    symbols = [text.get_text() for text in fig.axes[0].texts]
    assert len(symbols) == config.TIME_STEPS
    assert symbols[3] == "a" and symbols[10] == "c" and symbols.count("-") == config.TIME_STEPS - 2
    assert fig.axes[0].get_title() == "a word"


def test_the_alignment_shows_the_rows_with_ink_at_their_true_aspect_ratio():
    image = np.ones((64, 128), np.float32)
    image[24:40, 10:118] = 0.0  # a wide word: ink in 16 of the 64 rows
    fig = ctc_alignment([image], np.zeros((1, config.TIME_STEPS, 4), np.float32), Vocabulary("abc"), ["wide"])
    fig.canvas.draw()
    ax = fig.axes[0]
    shown = ax.images[0]
    rows, columns = shown.get_array().shape
    assert columns == 128 and 16 <= rows < 30  # the ink and a margin, not the empty paper above and below
    left, right, bottom, top = shown.get_extent()
    assert (bottom - top) / (right - left) == pytest.approx(rows / columns)  # not stretched in the data...
    box = ax.get_window_extent()
    image_height = box.height * (bottom - top) / abs(ax.get_ylim()[0] - ax.get_ylim()[1])
    assert image_height / box.width == pytest.approx(rows / columns, rel=0.05)  # ...nor on the page


def test_a_file_is_shown_as_on_disk_transparency_and_16_bit_included(tmp_path):
    transparent = np.zeros((16, 16, 4), np.uint8)
    transparent[4:8, 4:8] = (0, 0, 255, 255)  # a blue square on nothing
    Image.fromarray(transparent, "RGBA").save(tmp_path / "t.png")
    shown = as_on_disk(tmp_path / "t.png")
    assert shown.shape == (16, 16, 3)
    assert tuple(shown[5, 5]) == (0, 0, 255)
    assert {int(shown[0, 0, 0]), int(shown[0, 8, 0])} == {200, 240}  # the checkerboard where nothing was drawn
    deep = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 256).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert as_on_disk(tmp_path / "d.png")[15, 15, 0] == pytest.approx(255 * 256 / 257, abs=1)


def test_word_grid_colours_the_captions_it_is_given():
    fig = word_grid([np.zeros((4, 8), np.uint8)] * 2, ["right", "wrong"], cols=2, colors=[None, "tab:red"])
    titles = [ax.title for ax in fig.axes[:2]]
    assert matplotlib.colors.to_hex(titles[1].get_color()) == matplotlib.colors.to_hex("tab:red")
    assert matplotlib.colors.to_hex(titles[0].get_color()) != matplotlib.colors.to_hex("tab:red")
