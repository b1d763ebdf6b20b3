"""Cropping a word image to its ink (utils.preprocess.crop_to_ink) before the resize."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from utils import config
from utils.encoding import Vocabulary
from utils.preprocess import crop_image_to_ink, crop_to_ink, preprocess_image

PAPER, INK = 0.92, 0.12
MARGIN = 4


# The words are drawn with a font the project ships, by Pillow: OpenCV's putText draws other glyphs from
# version to version (5.1 replaced the Hershey fonts with TrueType ones), and the boxes below depend on them.
WORD_FONT = config.FONTS_DIR / "courgette.woff"


def draw_word(canvas: np.ndarray, text: str, left: int, baseline: int, scale: float = 1.0, thickness: int = 2) -> tuple[int, int, int, int]:
    """Write ``text`` on a float canvas in a script font, ``scale`` 1 about 30 px high; returns its ink box (y0, y1, x0, x1)."""
    font = ImageFont.truetype(str(WORD_FONT), round(30 * scale))
    layer = Image.new("L", (canvas.shape[1], canvas.shape[0]), 0)
    ImageDraw.Draw(layer).text((left, baseline), text, fill=255, font=font, anchor="ls", stroke_width=max(0, thickness - 2))
    layer = np.asarray(layer)
    alpha = layer.astype(np.float32) / 255.0
    canvas[...] = canvas * (1 - alpha) + INK * alpha
    return ink_box(layer > 38)  # ink: at least 15% covered, as crop_to_ink counts faint edges joined to the word


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(ink)
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def paper(height: int, width: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    image = np.full((height, width), PAPER, np.float32)
    if noise:
        image += np.random.default_rng(seed).normal(0, noise, image.shape).astype(np.float32)
    return np.clip(image, 0, 1)


def assert_box_near(box, expected, shape, margin: int = MARGIN, slack: int = 1):
    """``box`` is ``expected`` grown by ``margin`` (clipped to the image), give or take ``slack`` pixels."""
    height, width = shape[:2]
    want = (max(0, expected[0] - margin), min(height, expected[1] + margin),
            max(0, expected[2] - margin), min(width, expected[3] + margin))
    assert all(abs(a - b) <= slack for a, b in zip(box, want)), f"box {box}, expected about {want}"


def contains(box, inner) -> bool:
    return box[0] <= inner[0] and box[1] >= inner[1] and box[2] <= inner[2] and box[3] >= inner[3]


# --- Where the word is -----------------------------------------------------------------------
@pytest.mark.parametrize("height, width, left, baseline", [(64, 256, 90, 38), (64, 256, 4, 50), (300, 1000, 420, 170)],
                         ids=["dhsd-like", "off-centre", "photo-size"])
def test_a_small_word_in_a_big_canvas_is_cropped_to_its_box(height, width, left, baseline):
    image = paper(height, width, noise=0.01)
    word = draw_word(image, "minimum", left, baseline, scale=0.8 if height < 100 else 1.6, thickness=2 if height < 100 else 3)
    box = crop_to_ink(image)
    # Large images are analysed at a reduced size (here a third), the box rounded outwards: up to one reduced
    # pixel (3 px) at an edge, plus one for the antialiased rim of the glyphs.
    slack = 1 if height < 128 else 4
    assert_box_near(box, word, image.shape, slack=slack)
    assert contains(box, word), "the crop must never cut the word"


def test_a_tight_crop_keeps_all_its_ink():
    image = paper(40, 130)
    word = draw_word(image, "Hello", 2, 30, scale=1.0)
    box = crop_to_ink(image)
    assert contains(box, word)
    assert_box_near(box, word, image.shape)


def test_ruled_lines_are_not_the_word():
    image = paper(120, 300, noise=0.01)
    word = draw_word(image, "lining", 80, 70, scale=1.0)
    for y in (10, 40, 71, 100):  # above, through the body, on the baseline, under the word
        cv2.line(image, (0, y), (299, y + 1), 0.35, 2)  # across the whole width, drifting a pixel
    assert_box_near(crop_to_ink(image), word, image.shape, slack=2)


def test_a_margin_line_is_not_the_word():
    image = paper(200, 300, noise=0.01)
    word = draw_word(image, "minimum", 90, 110, scale=0.9)
    cv2.line(image, (30, 0), (30, 199), 0.3, 2)  # a notebook's margin, top to bottom
    assert_box_near(crop_to_ink(image), word, image.shape, slack=2)


def test_fragments_of_the_lines_above_and_below_are_left_out():
    image = paper(90, 260, noise=0.01)
    word = draw_word(image, "minimum", 40, 52, scale=0.9)
    draw_word(image, "fggjy", 100, 2, scale=0.9)  # the line above: only its descenders come in at the top
    draw_word(image, "Hlkdt", 20, 100, scale=0.9)  # the line below: only its ascenders come in at the bottom
    assert image[:2].min() < 0.5 and image[-2:].min() < 0.5, "the fixture must have ink at both edges"
    box = crop_to_ink(image)
    assert_box_near(box, word, image.shape, slack=2)


def test_an_underline_is_left_out():
    image = paper(64, 256)
    word = draw_word(image, "minimum", 60, 36, scale=0.8)
    cv2.line(image, (20, 56), (160, 56), INK, 1)  # a form's line under part of the word
    assert_box_near(crop_to_ink(image), word, image.shape, slack=2)


def test_dots_and_a_full_stop_after_the_word_are_kept():
    image = paper(64, 256)
    word = draw_word(image, "mum", 60, 40, scale=0.8)
    cv2.circle(image, (word[3] + 6, word[1] - 2), 2, INK, -1)  # a full stop after it
    cv2.circle(image, (word[2] + 8, word[0] - 7), 2, INK, -1)  # a dot over its first letter
    dot_box = (word[0] - 9, word[1], word[2], word[3] + 8)
    box = crop_to_ink(image, margin=0)
    assert contains(box, dot_box) and box[0] >= dot_box[0] - 1 and box[3] <= dot_box[3] + 1


def test_a_far_speck_is_left_out():
    image = paper(64, 256)
    word = draw_word(image, "minimum", 20, 40, scale=0.8)
    image[30:32, 240:242] = INK  # dust, far to the right on the word's line
    assert_box_near(crop_to_ink(image), word, image.shape)


def test_a_lone_full_stop_is_kept():
    image = paper(64, 256)
    cv2.circle(image, (128, 40), 3, INK, -1)
    y0, y1, x0, x1 = crop_to_ink(image, margin=0)
    assert 35 <= y0 <= 38 and 43 <= y1 <= 45 and 123 <= x0 <= 126 and 131 <= x1 <= 133


def test_a_dash_is_kept_although_it_is_a_long_straight_line():
    image = paper(24, 60)
    image[10:14, 1:59] = INK  # a hyphen's tight crop: the bar runs from edge to edge
    y0, y1, x0, x1 = crop_to_ink(image, margin=0)
    assert (y0, y1) == (10, 14) and x0 <= 1 and x1 >= 59  # at the image's edge the box may round out a pixel


@pytest.mark.parametrize("image", [np.full((64, 256), 0.9, np.float32), paper(64, 256, noise=0.02, seed=3),
                                   np.zeros((40, 80), np.float32), np.ones((1, 1), np.float32)],
                         ids=["plain", "noise", "black", "one-pixel"])
def test_a_blank_image_gives_the_whole_frame(image):
    assert crop_to_ink(image) == (0, image.shape[0], 0, image.shape[1])


def test_uneven_light_and_a_hard_shadow():
    image = paper(100, 300, noise=0.01)
    word = draw_word(image, "minimum", 70, 60, scale=1.0)
    _, x = np.mgrid[0:100, 0:300]
    light = 1.0 - 0.45 * x / 300.0  # light falls off across the page...
    light[:, 200:] *= 0.75  # ...and a hard shadow edge crosses the word
    box = crop_to_ink((image * light).astype(np.float32))
    assert_box_near(box, word, image.shape, slack=2)


# --- Arguments --------------------------------------------------------------------------------
def test_shapes_dtypes_and_the_margin():
    image = paper(64, 256)
    word = draw_word(image, "mum", 100, 40, scale=0.8)
    flat = crop_to_ink(image, margin=0)
    assert crop_to_ink(image[..., None], margin=0) == flat
    assert crop_to_ink(image.astype(np.float64), margin=0) == flat
    assert all(type(v) is int for v in flat)
    assert_box_near(flat, word, image.shape, margin=0)
    assert_box_near(crop_to_ink(image, margin=10), word, image.shape, margin=10)
    assert crop_to_ink(image, margin=500) == (0, 64, 0, 256), "the margin is clipped to the image"
    with pytest.raises(ValueError, match="gray image"):
        crop_to_ink(np.ones((8, 8, 3), np.float32))


def test_the_default_margin_is_read_when_called(monkeypatch):
    image = paper(64, 256)
    draw_word(image, "mum", 100, 40, scale=0.8)
    tight = crop_to_ink(image, margin=0)
    monkeypatch.setattr(config, "INK_CROP_MARGIN", 7)
    assert crop_to_ink(image) == (tight[0] - 7, tight[1] + 7, tight[2] - 7, tight[3] + 7)


# --- TensorFlow and the preprocessing path ------------------------------------------------------
def test_tensorflow_wrapper_crops_and_keeps_a_static_channel():
    image = paper(64, 256)
    draw_word(image, "mum", 100, 40, scale=0.8)
    y0, y1, x0, x1 = crop_to_ink(image)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 1], tf.float32)])
    def crop(batchless):
        out = crop_image_to_ink(batchless)
        assert out.shape.as_list() == [None, None, 1]
        return out

    out = crop(tf.constant(image[..., None])).numpy()
    np.testing.assert_array_equal(out, image[y0:y1, x0:x1, None])


def ink_columns(model_input: tf.Tensor) -> int:
    return int(np.count_nonzero(model_input.numpy()[..., 0].min(axis=0) < 0.5))


def test_preprocess_image_shows_a_loose_word_larger_when_cropping(monkeypatch):
    image = paper(64, 256, noise=0.01)  # DHSD's layout: a small word in a wide canvas
    draw_word(image, "mum", 100, 40, scale=0.7)
    loose = tf.constant(image[..., None])
    monkeypatch.setattr(config, "INK_CROP", False)
    off = preprocess_image(loose)
    monkeypatch.setattr(config, "INK_CROP", True)
    on = preprocess_image(loose)
    assert on.shape == off.shape == (config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1)
    assert ink_columns(on) > 2 * ink_columns(off), "cropped, the word must fill more of the frame"


def test_the_pipeline_cache_key_follows_the_crop_settings(monkeypatch):
    from utils.pipeline import _cache_prefix

    words = pd.DataFrame({"path": ["a.png"], "gray_level": [-1], "text": ["ab"]})
    vocabulary = Vocabulary("ab")
    keys = {_cache_prefix(words, vocabulary, "t", "normalize", "left")}
    monkeypatch.setattr(config, "INK_CROP", not config.INK_CROP)
    keys.add(_cache_prefix(words, vocabulary, "t", "normalize", "left"))
    monkeypatch.setattr(config, "INK_CROP_MARGIN", config.INK_CROP_MARGIN + 1)
    keys.add(_cache_prefix(words, vocabulary, "t", "normalize", "left"))
    assert len(keys) == 3
