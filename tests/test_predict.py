"""Prediction on users' files: any format, bad files reported one by one, the command line, test_data/."""

from __future__ import annotations

import csv
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from utils import config
from utils.encoding import Vocabulary
from utils.model import build_crnn, save_model, saved_vocabulary
from utils.predict import _array_to_gray, load_reader, main, predict_images
from utils.testdata import LABELS_FILE, WORDS, is_real, make_test_data, read_labels

VOCABULARY = Vocabulary("abcdefghijklmnopqrstuvwxyz")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """An untrained compact model saved with its vocabulary, as training leaves them."""
    folder = tmp_path_factory.mktemp("model")
    build_crnn("compact", len(VOCABULARY)).save(folder / "model.keras")
    VOCABULARY.save(folder / "vocabulary.txt")
    return folder / "model.keras"


@pytest.fixture
def files(tmp_path):
    word = np.full((30, 90), 235, np.uint8)
    word[10:20, 10:80] = 30
    good_png, good_jpeg = tmp_path / "word.png", tmp_path / "word photo.jpg"
    Image.fromarray(word).save(good_png)
    Image.fromarray(np.dstack([word] * 3)).save(good_jpeg)
    empty, garbage, missing = tmp_path / "empty.png", tmp_path / "garbage.png", tmp_path / "missing.png"
    empty.write_bytes(b"")
    garbage.write_bytes(b"this is not a PNG at all")
    return {"png": good_png, "jpeg": good_jpeg, "empty": empty, "garbage": garbage, "missing": missing}


def test_bad_files_get_their_own_error_and_the_others_are_read(saved_model, files):
    model, vocabulary = load_reader(saved_model)
    order = [files["png"], files["missing"], files["empty"], files["jpeg"], files["garbage"]]
    predictions = predict_images(model, order, vocabulary)
    assert [p.source for p in predictions] == [str(path) for path in order]
    assert [p.ok for p in predictions] == [True, False, False, True, False]
    assert predictions[1].error == "no such file"
    assert predictions[2].error == "the file is empty"
    assert predictions[4].error.startswith("not a readable image")
    assert all(isinstance(p.text, str) and set(p.text) <= set(VOCABULARY.characters) for p in predictions if p.ok)


def test_arrays_of_any_kind_are_read_like_files(saved_model, files):
    model, vocabulary = load_reader(saved_model)
    gray = np.asarray(Image.open(files["png"]))
    from_arrays = predict_images(model, [gray, gray / 255.0, np.dstack([gray] * 3), gray.astype(np.uint16) * 257], vocabulary)
    from_file = predict_images(model, [files["png"]], vocabulary)
    assert [p.source for p in from_arrays] == ["array 0", "array 1", "array 2", "array 3"]
    assert {p.text for p in from_arrays} == {from_file[0].text}
    wrong = predict_images(model, [np.zeros((2, 3, 4, 5)), np.full((4, 4), 3.0)], vocabulary)
    assert "expected an image of shape" in wrong[0].error and "must be in [0, 1]" in wrong[1].error


def test_transparent_pixels_become_white_paper():
    rgba = np.zeros((4, 4, 4), np.uint8)  # black and fully transparent
    np.testing.assert_allclose(_array_to_gray(rgba), np.ones((4, 4, 1)))


def test_a_model_without_its_vocabulary_or_with_the_wrong_one_is_refused(saved_model, tmp_path):
    lonely = tmp_path / "model.keras"
    lonely.write_bytes(saved_model.read_bytes())
    with pytest.raises(FileNotFoundError, match="vocabulary.txt"):
        load_reader(lonely)
    Vocabulary("abc").save(tmp_path / "vocabulary.txt")
    with pytest.raises(ValueError, match="do not belong together"):
        load_reader(lonely)


def test_command_line_prints_path_tab_text_and_reports_bad_files(saved_model, files, capsys):
    (files["png"].parent / LABELS_FILE).write_text("file,text\n", encoding="utf-8")
    status = main([str(files["png"]), str(files["garbage"]), str(files["png"].parent / LABELS_FILE),
                   str(files["jpeg"]), "--model", str(saved_model), "--beam", "3"])  # fmt: skip
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(files["png"]), str(files["jpeg"])]
    assert all(line.count("\t") == 1 for line in lines)
    assert f"{files['garbage']}: not a readable image" in err and "skipped, not an image file" in err
    assert status == 1


def test_command_line_without_a_model_says_so(tmp_path, capsys):
    assert main(["x.png", "--model", str(tmp_path / "none.keras")]) == 2
    assert "none.keras: no such model file" in capsys.readouterr().err


def test_test_data_is_made_by_unseen_writers_in_mixed_formats(tmp_path):
    labels = make_test_data(tmp_path, seed=42)
    pairs = read_labels(tmp_path, real=False)  # the rendered words; the real ones are tested in test_dhsd.py
    assert [text for _, text in pairs] == list(WORDS) and 12 <= len(pairs) <= 20
    with labels.open(encoding="utf-8") as file:
        fonts = {row["font"].removesuffix(".woff") for row in csv.DictReader(file) if not is_real(row["font"])}
    assert fonts == set(config.SYNTHETIC_TEST_FONTS)  # only writers the training split never sees
    modes = {Image.open(path).mode for path, _ in pairs}
    suffixes = {path.suffix for path, _ in pairs}
    sizes = {Image.open(path).size for path, _ in pairs}
    assert suffixes == {".png", ".jpg"} and {"L", "RGB", "RGBA"} <= modes and len(sizes) == len(pairs)


def test_committed_test_data_is_what_the_documented_command_makes(tmp_path):
    make_test_data(tmp_path, seed=42)
    assert (tmp_path / LABELS_FILE).read_text(encoding="utf-8") == (config.TEST_DATA_DIR / LABELS_FILE).read_text(encoding="utf-8")
    for path, _ in read_labels(tmp_path):
        fresh = np.asarray(Image.open(path), dtype=np.int32)
        committed = np.asarray(Image.open(config.TEST_DATA_DIR / path.name), dtype=np.int32)
        assert fresh.shape == committed.shape
        assert np.abs(fresh - committed).mean() < 1.0, path.name  # JPEG codecs may differ by a level here and there


def test_a_labels_row_naming_a_missing_file_names_the_line(tmp_path):
    (tmp_path / LABELS_FILE).write_text("file,text,font\nnope.png,word,kalam\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="line 2: nope.png"):
        read_labels(tmp_path)


def test_without_model_the_command_line_reads_with_the_shipped_model(capsys):
    images = [path for path, _ in read_labels()][:3] + [path for path, _ in read_labels(real=True)][:2]
    assert main([str(path) for path in images]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(path) for path in images]
    assert all(line.split("\t")[1] for line in lines)  # a trained model writes something for every word


def test_the_shipped_model_and_its_synthetic_stage_belong_to_the_shipped_vocabulary():
    for path in (config.SHIPPED_MODEL, config.SHIPPED_SYNTHETIC_MODEL):
        model, vocabulary = load_reader(path)
        assert "".join(vocabulary.characters) == config.IAM_CHARSET and model.output_shape[-1] == len(config.IAM_CHARSET) + 1
        assert path.stat().st_size < 15 * 2**20


def test_a_missing_shipped_model_is_named_with_the_command_that_trains_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(config, "SHIPPED_MODEL", tmp_path / "crnn.keras")
    assert main(["x.png", "--model", str(tmp_path / "crnn.keras")]) == 2
    assert "python -m utils.pretrain trains it" in capsys.readouterr().err


# --- Limits on input and awkward images (issue 12) ------------------------------------------------------
def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` gray pixels but whose data holds one row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1 + width))) + chunk(b"IEND", b"")


def shipped_reading(paths):
    """What the shipped model reads from each path (None where it refuses the file)."""
    model, vocabulary = load_reader(config.SHIPPED_MODEL)
    return [p.text for p in predict_images(model, paths, vocabulary)]


def test_an_image_over_the_pixel_limit_is_refused_and_the_others_are_read(saved_model, files, tmp_path, monkeypatch, capsys):
    bomb = tmp_path / "bomb.png"  # 20000 x 20000 in 0.2 KB: decoding it took 57 s and 8.9 GB
    bomb.write_bytes(png_header_only(20000, 20000))
    model, vocabulary = load_reader(saved_model)
    predictions = predict_images(model, [files["png"], bomb, files["jpeg"]], vocabulary)
    assert [p.ok for p in predictions] == [True, False, True]
    assert predictions[1].error.startswith("too large: 400,000,000 pixels, more than the limit of ")
    assert predictions[1].error.endswith(f" {config.MAX_IMAGE_PIXELS:,} (config.MAX_IMAGE_PIXELS)")
    monkeypatch.setattr(config, "MAX_IMAGE_PIXELS", 3000, raising=False)  # the 90 x 30 words fit; 100 x 40 does not
    large = tmp_path / "large.png"
    Image.fromarray(np.full((40, 100), 200, np.uint8)).save(large)
    predictions = predict_images(model, [files["png"], large, np.full((40, 100), 200, np.uint8)], vocabulary)
    assert predictions[0].ok
    assert predictions[1].error == "too large: 100 x 40 pixels (4,000), more than the limit of 3,000 (config.MAX_IMAGE_PIXELS)"
    assert predictions[2].error == predictions[1].error
    assert main([str(files["png"]), str(large), "--model", str(saved_model)]) == 1
    assert f"{large}: too large: 100 x 40 pixels" in capsys.readouterr().err


def test_an_image_without_ink_is_named_blank(saved_model, files, tmp_path):
    transparent, uniform = tmp_path / "transparent.png", tmp_path / "uniform.jpg"
    Image.fromarray(np.zeros((30, 90, 4), np.uint8)).save(transparent)  # fully transparent: white paper, nothing on it
    Image.fromarray(np.full((30, 90, 3), 140, np.uint8)).save(uniform)
    model, vocabulary = load_reader(saved_model)
    predictions = predict_images(model, [transparent, files["png"], uniform, np.full((30, 90), 0.5)], vocabulary)
    blank = "blank image: no ink found"
    assert [p.error for p in predictions] == [blank, None, blank, blank]


def test_an_inverted_image_is_read_like_the_original(tmp_path):
    original = config.TEST_DATA_DIR / "10_gray_png.png"  # "small", which the shipped model reads right
    inverted = tmp_path / "blackboard.png"
    ImageOps.invert(Image.open(original).convert("L")).save(inverted)
    readings = shipped_reading([original, inverted])
    assert readings[1] == readings[0] == "small"


def test_a_phone_photo_turned_by_its_exif_tag_is_read_upright(tmp_path):
    original = config.TEST_DATA_DIR / "10_gray_png.png"
    exif = Image.Exif()
    exif[0x0112] = 8  # the camera was held turned: the pixels lie sideways, the tag says turn them back
    photo = tmp_path / "phone.jpg"
    Image.open(original).convert("RGB").transpose(Image.Transpose.ROTATE_270).save(photo, exif=exif, quality=95)
    assert shipped_reading([original, photo]) == ["small", "small"]


def test_webp_is_read_like_png(tmp_path):
    original = config.TEST_DATA_DIR / "10_gray_png.png"
    webp = tmp_path / "word.webp"
    Image.open(original).save(webp, lossless=True)
    assert shipped_reading([original, webp]) == ["small", "small"]


@pytest.mark.parametrize("width", ["0", "101", "100000", "-3", "٣", "10_0", "+3", " 3"])
def test_a_beam_width_outside_its_range_or_not_in_digits_is_a_usage_error(saved_model, files, capsys, width):
    with pytest.raises(SystemExit) as exit_info:
        main([str(files["png"]), "--model", str(saved_model), "--beam", width])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    reason = f"{width} is outside 1 to {config.MAX_BEAM_WIDTH}" if width.isascii() and width.isdigit() else f"{width!r} is not a whole number"
    assert "argument --beam" in err and reason in err


def test_the_api_refuses_the_same_beam_widths_and_takes_the_widest(saved_model, files):
    model, vocabulary = load_reader(saved_model)
    for width in (0, -1):
        with pytest.raises(ValueError, match="beam width"):
            predict_images(model, [files["png"]], vocabulary, beam_width=width)
    with pytest.raises(ValueError, match="beam width"):
        predict_images(model, [files["png"]], vocabulary, beam_width=config.MAX_BEAM_WIDTH + 1)
    assert main([str(files["png"]), "--model", str(saved_model), "--beam", str(config.MAX_BEAM_WIDTH)]) == 0


def test_a_name_with_a_tab_or_newline_is_printed_escaped(saved_model, files, tmp_path, capsys):
    tab, newline = tmp_path / "two\twords.png", tmp_path / "two\nlines.png"
    tab.write_bytes(files["png"].read_bytes())
    newline.write_bytes(files["png"].read_bytes())
    assert main([str(tab), str(files["png"]), str(newline), "--model", str(saved_model)]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    assert len(lines) == 3 and all(line.count("\t") == 1 for line in lines)
    assert [line.split("\t")[0] for line in lines] == [repr(str(tab)), str(files["png"]), repr(str(newline))]


def test_an_unreadable_image_gets_one_line_on_stderr_and_no_tensorflow_log(saved_model, files, tmp_path):
    truncated = tmp_path / "truncated.png"  # Pillow reads its header; TensorFlow's decoder fails on its data
    data = files["png"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "utils.predict", str(truncated), str(files["png"]), "--model", str(saved_model)],
        cwd=config.REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "local_rendezvous" not in result.stderr and "Traceback" not in result.stderr
    named = [line for line in result.stderr.splitlines() if "truncated.png" in line]
    assert len(named) == 1 and named[0].startswith(f"{truncated}: not a readable image (")
    assert result.stdout.startswith(f"{files['png']}\t")


def test_what_is_not_a_regular_file_is_named_for_what_it_is_and_never_opened(saved_model, files, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it would wait for a writer for ever
    model, vocabulary = load_reader(saved_model)
    predictions = predict_images(model, [tmp_path, fifo, "/dev/null", files["png"]], vocabulary)
    assert [p.error for p in predictions] == ["a folder, not a file", "a named pipe (FIFO), not a file",
                                              "a device, not a file", None]  # fmt: skip


def test_a_large_file_is_refused_from_its_size_or_its_first_bytes_before_it_is_read(saved_model, tmp_path):
    video, junk = tmp_path / "X.mp4", tmp_path / "junk.png"
    with open(video, "wb") as file:  # sparse: 1.5 GB on paper, nothing on disk
        file.write(b"\x00\x00\x00\x18ftypmp42")
        file.truncate(1_500_000_000)
    with open(junk, "wb") as file:
        file.write(b"RIFF\x00\x00\x00\x00AVI LIST")  # a video's header, under the size limit
        file.truncate(config.MAX_IMAGE_FILE_BYTES - 1)
    model, vocabulary = load_reader(saved_model)
    tracemalloc.start()
    predictions = predict_images(model, [video, junk], vocabulary)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert predictions[0].error == (f"too large: 1,500,000,000 bytes, more than the limit of {config.MAX_IMAGE_FILE_BYTES:,} "
                                    "bytes (config.MAX_IMAGE_FILE_BYTES)")  # fmt: skip
    assert predictions[1].error.startswith("not a readable image (not PNG, JPEG, BMP, GIF or WebP: it starts b'RIFF")
    assert peak < 10_000_000  # neither file was read


def _lexicon_error(saved_model, files, lexicon, capsys) -> str:
    assert main([str(files["png"]), "--model", str(saved_model), "--lexicon", str(lexicon)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and "Traceback" not in captured.err
    return captured.err


def test_a_lexicon_that_is_no_regular_file_of_text_is_one_error_line(saved_model, files, tmp_path, capsys):
    zero, fifo, large, latin = tmp_path / "zero.txt", tmp_path / "fifo.txt", tmp_path / "large.txt", tmp_path / "latin.txt"
    zero.symlink_to("/dev/zero")  # read without a limit, it grew past 3 GB
    os.mkfifo(fifo)  # read, it hung
    with open(large, "wb") as file:
        file.truncate(config.MAX_LEXICON_BYTES + 1)
    latin.write_bytes("Stra\xdfe\nM\xfchle\n".encode("latin-1"))
    assert _lexicon_error(saved_model, files, zero, capsys) == f"error: --lexicon {zero}: a device, not a file\n"
    assert _lexicon_error(saved_model, files, fifo, capsys) == f"error: --lexicon {fifo}: a named pipe (FIFO), not a file\n"
    assert f"--lexicon {large}: too large: {config.MAX_LEXICON_BYTES + 1:,} bytes" in _lexicon_error(saved_model, files, large, capsys)
    assert _lexicon_error(saved_model, files, latin, capsys) == f"error: --lexicon {latin}: not UTF-8 text (byte 4 is b'\\xdf')\n"


def test_a_vocabulary_that_is_not_the_one_the_model_was_trained_with_is_refused(tmp_path, capsys):
    folder = tmp_path / "model"
    model = save_model(build_crnn("compact", len(VOCABULARY)), folder / "model.keras", vocabulary=VOCABULARY)
    assert saved_vocabulary(model) == VOCABULARY
    assert load_reader(model)[1] == VOCABULARY  # no file beside it: the one inside the model
    swapped = list(VOCABULARY.characters)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    Vocabulary(swapped).save(folder / "vocabulary.txt")  # two lines swapped: it read "the" as "tha"
    with pytest.raises(ValueError, match="id 1 is 'a' in the model and 'b' in the file"):
        load_reader(model)
    assert main([str(config.TEST_DATA_DIR / "01_gray_png.png"), "--model", str(model)]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and "is not the vocabulary" in error and "they do not belong together" in error
    VOCABULARY.save(folder / "vocabulary.txt")
    assert load_reader(model)[1] == VOCABULARY


def test_the_shipped_models_hold_the_shipped_vocabulary():
    shipped = Vocabulary.load(config.SHIPPED_MODELS_DIR / config.VOCABULARY_FILE)
    assert saved_vocabulary(config.SHIPPED_MODEL) == shipped == saved_vocabulary(config.SHIPPED_SYNTHETIC_MODEL)
