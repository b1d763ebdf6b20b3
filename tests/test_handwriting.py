"""Your own handwriting: widget data to images, a line split into words, and widgets that degrade headless."""

from __future__ import annotations

import base64
import csv
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from utils import config
from utils.handwriting import (
    DrawingPad,
    ask_for_images,
    crop_words,
    drawing_pad,
    drawn_images,
    image_from_data_url,
    images_from_upload,
    line_from_words,
    split_line_into_words,
    uploaded_images,
)

FONT = config.FONTS_DIR / "courgette.woff"


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def written_line(words: list[str], gap: int = 40, paper=None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A line of ``words`` drawn in a handwriting font, and each word's ink extent in x."""
    font = ImageFont.truetype(str(FONT), 40)
    widths = [int(font.getbbox(word)[2]) for word in words]
    canvas = Image.new("L", (sum(widths) + gap * len(words) + 40, 110), 255)
    draw = ImageDraw.Draw(canvas)
    spans, x = [], 20
    for word, width in zip(words, widths):
        draw.text((x, 25), word, font=font, fill=20)
        spans.append((x, x + width))
        x += width + gap
    line = np.asarray(canvas, np.float32)
    if paper is not None:
        line = np.minimum(line, paper(line.shape))
    return line.clip(0, 255).astype(np.uint8), spans


def test_each_shape_an_upload_comes_in_becomes_images_in_order():
    word = np.full((30, 80), 255, np.uint8)
    word[10:20, 10:70] = 0
    data = png_bytes(word)
    ipywidgets8 = ({"name": "a.png", "type": "image/png", "size": len(data), "content": memoryview(data)},
                   {"name": "b.png", "type": "image/png", "size": len(data), "content": memoryview(data)})  # fmt: skip
    ipywidgets7 = {"a.png": {"metadata": {"name": "a.png"}, "content": data}}
    colab = {"a.png": data, "b.png": data}
    data_url = "data:image/png;base64," + base64.b64encode(data).decode()
    for value, names in ((ipywidgets8, ["a.png", "b.png"]), (ipywidgets7, ["a.png"]), (colab, ["a.png", "b.png"]),
                         (data_url, ["drawing"]), ([data_url, colab], ["drawing", "a.png", "b.png"])):  # fmt: skip
        images = images_from_upload(value)
        assert [image.name for image in images] == names
        for image in images:
            assert image.error is None and image.image.dtype == np.uint8
            np.testing.assert_array_equal(image.image, word)  # what the file holds, gray, pixel for pixel
    assert images_from_upload(None) == [] and images_from_upload(()) == []
    with pytest.raises(TypeError, match="an upload gives"):
        images_from_upload(42)


def test_a_bad_file_among_good_ones_is_named_and_the_others_are_read(capsys):
    good = png_bytes(np.full((20, 40), 200, np.uint8))
    images = images_from_upload({"good.png": good, "broken.jpg": b"\xff\xd8\xff not really a jpeg", "later.png": good})
    assert [(image.name, image.image is not None) for image in images] == [("good.png", True), ("broken.jpg", False),
                                                                            ("later.png", True)]  # fmt: skip
    assert images[1].error.startswith("broken.jpg: ") and "readable image" in images[1].error
    kept = uploaded_images({"good.png": good, "broken.jpg": b"junk"})
    assert [image.name for image in kept] == ["good.png"]
    assert "not read: broken.jpg" in capsys.readouterr().out


def test_a_truncated_png_or_jpeg_upload_is_one_clean_line(capfd):
    word = np.full((60, 160), 240, np.uint8)
    word[20:40, 20:140] = 20
    jpeg = io.BytesIO()
    Image.fromarray(word).save(jpeg, format="JPEG")
    png = png_bytes(word)
    images = images_from_upload({"half.png": png[: len(png) // 2], "half.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 2]})
    for image in images:
        assert image.image is None and image.error.startswith(f"{image.name}: not a readable image (")
        assert "function_node" not in image.error and "Op:" not in image.error and "\n" not in image.error
    assert "jpeg_mem" not in capfd.readouterr().err  # TensorFlow's native log line is kept off stderr


def test_an_entry_without_bytes_is_named_and_the_rest_are_read():
    good = png_bytes(np.full((20, 40), 200, np.uint8))
    entries = {"none.png": None, "text.png": "iVBORw0", "huge.png": 10**9, "widget7.png": {"metadata": {}},
               "good.png": good, "array.png": np.zeros(10, np.uint8)}  # fmt: skip
    started = time.perf_counter()
    images = images_from_upload(entries)
    assert time.perf_counter() - started < 5  # bytes(10**9) once allocated 4.5 GB
    assert [image.name for image in images] == list(entries)
    assert [image.image is not None for image in images] == [False, False, False, False, True, False]
    for image, kind in zip(images, ("NoneType", "str", "int", "NoneType", None, "ndarray")):
        assert kind is None or image.error == f"{image.name}: no file content (got {kind}, not bytes)"
    ipywidgets8_without_content = [{"name": "a.png", "type": "image/png", "size": 3, "content": None},
                                   {"name": "b.png", "type": "image/png", "size": len(good), "content": memoryview(good)}]  # fmt: skip
    assert [image.image is not None for image in images_from_upload(ipywidgets8_without_content)] == [False, True]
    assert images_from_upload({"empty.png": b""})[0].error == "empty.png: the file is empty"


def test_a_file_named_content_or_name_is_one_file_among_the_others():
    good = png_bytes(np.full((20, 40), 200, np.uint8))
    ipywidgets7 = {"content": {"metadata": {"name": "content"}, "content": good}, "x.png": {"metadata": {}, "content": good}}
    colab = {"name": good, "content": good, "x.png": good}
    assert [(image.name, image.error) for image in images_from_upload(ipywidgets7)] == [("content", None), ("x.png", None)]
    assert [(image.name, image.error) for image in images_from_upload(colab)] == [("name", None), ("content", None), ("x.png", None)]


def test_a_data_url_that_is_not_an_image_is_an_error_naming_it():
    assert "not an image data URL" in image_from_data_url("hello", "pad").error
    assert "not valid base64" in image_from_data_url("data:image/png;base64,@@@", "pad").error
    assert image_from_data_url("data:image/png;base64," + base64.b64encode(b"abc").decode(), "pad").error.startswith("pad: ")


def test_a_line_is_split_into_its_words_left_to_right():
    line, spans = written_line(["the", "quick", "brown", "fox"])
    boxes = split_line_into_words(line)
    assert len(boxes) == 4
    assert [box[0] for box in boxes] == sorted(box[0] for box in boxes)
    for (x, y, w, h), (left, right) in zip(boxes, spans):
        assert left - 3 <= x and x + w <= right + 3  # inside its word's extent ...
        assert w > 0.6 * (right - left)  # ... and most of it
    crops = crop_words(line, boxes)
    assert [crop.shape[1] for crop in crops] == [w + 2 * config.WORD_MARGIN for _, _, w, _ in boxes]


def test_a_line_photographed_in_uneven_light_is_split_the_same():
    def shadow(shape):
        rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
        return 250 - 90 * cols / shape[1] - 20 * rows / shape[0]  # darker to the right, as beside a window

    line, _ = written_line(["Paris", "is", "lovely"], paper=shadow)
    noisy = np.clip(line + np.random.default_rng(0).normal(0, 4, line.shape), 0, 255).astype(np.uint8)
    assert len(split_line_into_words(noisy)) == 3


def test_specks_alone_are_dust_and_paper_has_no_words():
    line, _ = written_line(["one", "two"])
    line[5:7, 5:7] = 0  # a speck of dust in the corner, far from the words
    boxes = split_line_into_words(line)
    assert len(boxes) == 2 and boxes[0][0] > 10
    assert split_line_into_words(np.full((60, 200), 240, np.uint8)) == []
    with pytest.raises(ValueError, match="gray image"):
        split_line_into_words(np.zeros((4, 4, 3), np.uint8))
    for empty in ((0, 0), (0, 50), (50, 0), (1, 1)):
        assert split_line_into_words(np.zeros(empty, np.uint8)) == []


def test_a_box_outside_the_image_gives_an_empty_crop_never_another_part():
    image = np.arange(100 * 200, dtype=np.int64).reshape(100, 200)
    outside, straddling, inside = (-50, -50, 20, 20), (190, 95, 30, 30), (10, 20, 30, 40)
    crops = crop_words(image, [outside, straddling, inside, (300, 10, 5, 5), (10, 10, -5, -5)], margin=0)
    assert crops[0].size == 0 and crops[3].size == 0 and crops[4].size == 0
    np.testing.assert_array_equal(crops[1], image[95:, 190:])
    np.testing.assert_array_equal(crops[2], image[20:60, 10:40])
    np.testing.assert_array_equal(crop_words(image, [outside], margin=40)[0], image[:10, :10])  # the margin reaches in


def test_words_put_side_by_side_make_a_line_that_splits_back():
    words = [written_line([text])[0] for text in ("hand", "written", "words")]
    line = line_from_words(words, gap=30)
    assert line.shape[0] == max(word.shape[0] for word in words) + 40
    assert len(split_line_into_words(line)) == 3


def test_the_drawing_pad_hands_over_what_was_drawn():
    pad = DrawingPad()
    assert pad.png == "" and drawn_images(pad) == [] and drawn_images(None) == []
    assert (pad.width, pad.height) == config.DRAWING_PAD_SIZE
    drawing = np.full((config.DRAWING_PAD_SIZE[1], config.DRAWING_PAD_SIZE[0]), 255, np.uint8)
    drawing[80:120, 100:400] = 0
    pad.png = "data:image/png;base64," + base64.b64encode(png_bytes(drawing)).decode()
    [image] = drawn_images(pad)
    assert image.name == "drawing" and image.image.shape == drawing.shape


def test_without_a_front_end_the_widgets_say_so_and_give_nothing(monkeypatch, capsys):
    for name in ("JPY_SESSION_NAME", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)
    assert ask_for_images() is None and drawing_pad() is None
    out = capsys.readouterr().out
    assert "No upload: this kernel runs headless" in out and "No drawing pad" in out
    assert uploaded_images(None) == []


def test_the_words_of_a_line_are_read_by_the_shipped_model():
    from utils.predict import load_reader, predict_images

    line, _ = written_line(["the", "House"], gap=50)
    reader, vocabulary = load_reader(config.SHIPPED_MODEL)
    readings = [prediction.text for prediction in predict_images(reader, crop_words(line, split_line_into_words(line)), vocabulary)]
    assert readings == ["the", "House"]


def ruled(shape, spacing: int = 28, darker: int = 40, margin_line: bool = False) -> np.ndarray:
    """Paper (gray 235) with ruled lines ``darker`` gray levels darker every ``spacing`` rows, and a margin line."""
    paper = np.full(shape, 235.0)
    paper[spacing // 2 :: spacing] = 235 - darker
    if margin_line:
        paper[:, 12:14] = 235 - 2 * darker  # a red margin line, in gray
    return paper


@pytest.mark.parametrize("margin_line", [False, True])
def test_a_line_on_ruled_paper_or_beside_a_margin_line_is_split_into_its_words(margin_line):
    words = ["write", "on", "ruled", "paper"]
    line, spans = written_line(words, gap=45, paper=lambda shape: ruled(shape, margin_line=margin_line))
    boxes = split_line_into_words(line)
    assert len(boxes) == len(words)  # the lines once joined every word into one box, the margin line was a "word"
    for (x, _, w, _), (left, right) in zip(boxes, spans):
        assert left - 3 <= x and x + w <= right + 3


def test_an_underline_does_not_join_the_words_it_runs_under():
    line, spans = written_line(["under", "lined", "words"], gap=45)
    line[82:85, spans[0][0] : spans[-1][1]] = 20  # a pen stroke under the whole line, touching nothing else
    assert len(split_line_into_words(line)) == 3


FIXTURE = Path(__file__).parent / "fixtures" / "copiste_lines"


def test_real_copiste_lines_are_split_at_least_as_well_as_measured():
    """A floor under bench/line_split.py's figure on the 50 committed real lines (README): 13 of 50 when measured.

    The splitter before it found 3 of 50; a change that loses real lines fails here. A guard, not the goal (80%)."""
    with (FIXTURE / "lines.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 50
    right = sum(len(split_line_into_words(np.asarray(Image.open(FIXTURE / row["file"])))) in
                (int(row["words"]), int(row["words_without_marks"])) for row in rows)  # fmt: skip
    assert right >= 13


def test_paper_around_a_line_changes_nothing():
    line = np.asarray(Image.open(FIXTURE / "21_wikitexte_0019.png"))  # a real line, cut tight by its ALTO box
    loose = np.pad(line, ((150, 150), (80, 80)), constant_values=int(np.median(line)))
    assert [(x - 80, y - 150, w, h) for x, y, w, h in split_line_into_words(loose)] == split_line_into_words(line)
