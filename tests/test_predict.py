"""Prediction on users' files: any format, bad files reported one by one, the command line, test_data/."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from utils import config
from utils.encoding import Vocabulary
from utils.model import build_crnn
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
