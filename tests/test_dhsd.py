"""The real handwriting shipped in dhsd/: loader, writer split, preprocessing of its RGBA files, test_data/'s real rows."""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils import config
from utils.dhsd import (
    CSV_COLUMNS, FRAME_COLUMNS, SPLITS_FOLDER, TEST_MIN_WORDS, TEST_MIN_WRITERS, VALIDATION_MAX_WORDS,
    VALIDATION_MIN_WORDS, VALIDATION_MIN_WRITERS, WORDS_FILE, DhsdError, dhsd_split, load_dhsd,
    make_writer_split, read_writer_split, summary, write_writer_split,
)  # fmt: skip
from utils.encoding import Vocabulary, ctc_feasible
from utils.pipeline import select_words
from utils.testdata import LABELS_FILE, REAL_FONT_PREFIX, REAL_MAX_LENGTH, copy_real_words, read_labels

DHSD_WORDS = 1710
DHSD_WRITERS = 35


@pytest.fixture(scope="module")
def frame():
    return load_dhsd()


def test_the_loader_reads_every_row_of_words_csv(frame):
    with (config.DHSD_DIR / WORDS_FILE).open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(frame) == DHSD_WORDS and frame["writer"].nunique() == DHSD_WRITERS
    assert tuple(frame.columns) == FRAME_COLUMNS
    assert list(frame["text"]) == [row["iam_text"] for row in rows]
    assert list(frame["published_text"]) == [row["text"] for row in rows]
    first = frame.iloc[0]
    assert first["word_id"] == "1_0" and first["writer"] == "1" and first["published_text"] == "Königshain-Wiederau"
    assert first["text"] == "Konigshain-Wiederau"
    assert first["path"] == str((config.DHSD_DIR / "german_hw_data" / "writer1" / "1_0.png").resolve())
    assert (frame["gray_level"] == -1).all() and (frame["status"] == "ok").all() and frame["split"].notna().all()
    assert set(frame["split"]) == set(config.DHSD_SPLITS) and frame["word_id"].is_unique
    shipped = {path.resolve() for path in (config.DHSD_DIR / "german_hw_data").rglob("*.png")}
    assert shipped == {Path(p) for p in frame["path"]}  # no image without a row


def test_split_files_are_disjoint_and_cover_every_writer(frame):
    split = read_writer_split()
    assert set(split) == set(frame["writer"])  # read_writer_split raises on a writer named twice
    words = {name: dhsd_split(frame, name) for name in config.DHSD_SPLITS}
    writers = {name: set(part["writer"]) for name, part in words.items()}
    assert not writers["test"] & writers["validation"] and not writers["finetune"] & (writers["test"] | writers["validation"])
    assert sum(len(part) for part in words.values()) == DHSD_WORDS
    assert len(words["test"]) >= TEST_MIN_WORDS and len(writers["test"]) >= TEST_MIN_WRITERS
    assert VALIDATION_MIN_WORDS <= len(words["validation"]) <= VALIDATION_MAX_WORDS
    assert len(writers["validation"]) >= VALIDATION_MIN_WRITERS
    sizes = words["test"]["writer"].value_counts()
    assert sizes.max() >= 100 and sizes.min() <= 15  # large and small writers mixed
    with pytest.raises(ValueError, match="unknown DHSD split 'train'"):
        dhsd_split(frame, "train")


def test_make_writer_split_reproduces_the_committed_files(tmp_path):
    for path in write_writer_split(out=tmp_path):
        committed = config.DHSD_DIR / SPLITS_FOLDER / path.name
        assert path.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8"), path.name
    assert committed.read_text(encoding="utf-8").startswith("# DHSD writers")


def test_make_writer_split_is_deterministic_and_splits_writers_only(frame):
    first, again = make_writer_split(frame), make_writer_split(frame)
    assert first == again and make_writer_split(frame, seed=7) != first
    assert sorted(w for ws in first.values() for w in ws) == sorted(set(frame["writer"]))
    with pytest.raises(ValueError, match="too few writers"):
        make_writer_split(frame[frame["writer"].isin(["1", "2"])])


def test_rgba_images_preprocess_to_dark_ink_on_white(frame):
    from utils.preprocess import load_image

    for path in dhsd_split(frame, "test")["path"].iloc[::60]:
        assert Image.open(path).mode == "RGBA"
        image = load_image(path).numpy()
        assert image.shape == (config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1)
        assert image.mean() > 0.7 and image.min() < 0.3, path


def test_a_transparent_background_is_laid_on_white(frame, tmp_path):
    """The shipped files are opaque; made transparent around the ink, they must still read as ink on white."""
    from utils.preprocess import load_image

    rgba = np.asarray(Image.open(frame["path"].iloc[0])).copy()
    rgba[..., 3] = np.where(rgba[..., :3].mean(axis=-1) > 200, 0, 255)
    rgba[rgba[..., 3] == 0, :3] = 0  # black under the transparency: compositing on black would show it
    Image.fromarray(rgba).save(tmp_path / "transparent.png")
    opaque, transparent = load_image(frame["path"].iloc[0]).numpy(), load_image(tmp_path / "transparent.png").numpy()
    assert transparent.mean() > 0.7 and transparent.min() < 0.3
    assert np.abs(opaque - transparent).mean() < 0.05


# --- Broken copies: clear errors naming the file and the line ------------------------------------------
@pytest.fixture
def small_dhsd(tmp_path):
    """A copy of three writers' first words, with words.csv and split files of its own."""
    folder = tmp_path / "dhsd"
    with (config.DHSD_DIR / WORDS_FILE).open(encoding="utf-8", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["writer_id"] in {"1", "2", "3"}][::40]
    for row in rows:
        (folder / row["file_name"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config.DHSD_DIR / row["file_name"], folder / row["file_name"])
    with (folder / WORDS_FILE).open("w", encoding="utf-8", newline="") as file:
        out = csv.DictWriter(file, CSV_COLUMNS)
        out.writeheader()
        out.writerows(rows)
    (folder / SPLITS_FOLDER).mkdir()
    for name, writer in zip(config.DHSD_SPLITS, ("1", "2", "3")):
        (folder / SPLITS_FOLDER / f"{name}.txt").write_text(f"# a test split\n{writer}\n", encoding="utf-8")
    return folder, rows


def rewrite(folder, lines: list[str]) -> None:
    (folder / WORDS_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def csv_lines(folder) -> list[str]:
    return (folder / WORDS_FILE).read_text(encoding="utf-8").splitlines()


def test_a_small_copy_loads(small_dhsd):
    folder, rows = small_dhsd
    frame = load_dhsd(folder)
    assert len(frame) == len(rows) and Counter(frame["split"]) == Counter(
        dict(zip(config.DHSD_SPLITS, (sum(r["writer_id"] == w for r in rows) for w in "123")))
    )


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("german_hw_data/writer1/1_0.png,Foo", "line 3: expected 4 fields"),
        ("german_hw_data/writer1/1_0.png,Foo,Foo,1,extra", "line 3: expected 4 fields"),
        ("../outside.png,Foo,Foo,1", "line 3: file_name '../outside.png' is not a .png path"),
        ("german_hw_data/writer1/1_0.png,,Foo,1", "line 3: german_hw_data/writer1/1_0.png has an empty text"),
        ("german_hw_data/writer1/1_0.png,Straße,Straße,1", "line 3: iam_text 'Straße' has characters outside IAM's"),
        ("german_hw_data/writer1/1_0.png,Foo,Foo,one", "line 3: writer_id 'one' is not a number"),
    ],
)
def test_a_malformed_row_names_the_file_and_line(small_dhsd, bad_line, message):
    folder, _ = small_dhsd
    lines = csv_lines(folder)
    rewrite(folder, [lines[0], lines[1], bad_line, *lines[2:]])
    with pytest.raises(DhsdError, match=f"words.csv, {message}"):
        load_dhsd(folder)


def test_a_repeated_word_names_both_lines(small_dhsd):
    folder, _ = small_dhsd
    lines = csv_lines(folder)
    rewrite(folder, [*lines, lines[1]])
    with pytest.raises(DhsdError, match=f"line {len(lines) + 1}: .* repeats the word id of line 2"):
        load_dhsd(folder)


def test_a_missing_header_column_is_named(small_dhsd):
    folder, _ = small_dhsd
    lines = csv_lines(folder)
    rewrite(folder, ["file_name,text,writer_id", *lines[1:]])
    with pytest.raises(DhsdError, match="words.csv, line 1: the header lacks the column.s. iam_text"):
        load_dhsd(folder)


@pytest.mark.parametrize("damage, kind", [("delete", "missing"), ("empty", "empty"), ("truncate", "unreadable")])
def test_a_missing_empty_or_damaged_image_is_named_with_its_line_and_left_out(small_dhsd, damage, kind, capsys):
    folder, rows = small_dhsd
    image = folder / rows[1]["file_name"]
    data = image.read_bytes()
    if damage == "delete":
        image.unlink()
    else:
        image.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    frame = load_dhsd(folder)
    out = capsys.readouterr().out
    assert "words.csv, line 3: the image " in out and f"{rows[1]['file_name']} is {kind} (" in out and "left out" in out
    assert frame["image_problem"].isna().tolist() == [True, False] + [True] * (len(rows) - 2) and frame["image_problem"][1] == kind
    assert "(1 left out: image missing, empty or damaged)" in summary(frame).splitlines()[0]  # the split of rows[1]
    split, vocabulary = frame["split"][1], Vocabulary(config.IAM_CHARSET)
    kept = select_words(frame, split, vocabulary)[0]["word_id"].tolist()
    whole = select_words(frame.assign(image_problem=None), split, vocabulary)[0]["word_id"].tolist()
    assert kept == [word for word in whole if word != frame["word_id"][1]] and len(kept) == len(whole) - 1


def test_words_csv_saved_by_excel_with_a_bom_is_read(small_dhsd):
    folder, rows = small_dhsd
    (folder / WORDS_FILE).write_bytes(b"\xef\xbb\xbf" + (folder / WORDS_FILE).read_bytes())
    assert len(load_dhsd(folder)) == len(rows)


def test_words_csv_in_latin_1_names_the_file_and_line(small_dhsd):
    folder, _ = small_dhsd
    lines = csv_lines(folder)
    lines = [line for line in lines if line.isascii()] + ["german_hw_data/writer1/x.png,Möhren,Mohren,1"]
    (folder / WORDS_FILE).write_bytes("\n".join([*lines, ""]).encode("latin-1"))
    with pytest.raises(DhsdError, match=rf"words.csv, line {len(lines)}: not UTF-8 \(byte b'\\xf6'\); save it as UTF-8"):
        load_dhsd(folder)


@pytest.mark.parametrize("writer", ["³", "٣", "+3", "3.0", " "])
def test_a_writer_id_that_is_not_ascii_digits_is_refused_naming_the_line(small_dhsd, writer):
    folder, _ = small_dhsd
    lines = csv_lines(folder)
    rewrite(folder, [lines[0], lines[1], lines[2].rsplit(",", 1)[0] + f",{writer}", *lines[3:]])
    with pytest.raises(DhsdError, match=f"words.csv, line 3: writer_id '{re.escape(writer.strip())}' is not a number"):
        load_dhsd(folder)
    (folder / SPLITS_FOLDER / "test.txt").write_text("٣\n", encoding="utf-8")
    with pytest.raises(DhsdError, match="test.txt, line 1: '٣' is not a writer id"):
        read_writer_split(folder)


def test_split_file_problems_are_named(small_dhsd):
    folder, _ = small_dhsd
    splits = folder / SPLITS_FOLDER
    (splits / "test.txt").write_text("# header\n3\n1\n", encoding="utf-8")
    with pytest.raises(DhsdError, match="test.txt, line 3: writer 1 is already in .*finetune.txt, line 2"):
        load_dhsd(folder)
    (splits / "test.txt").write_text("# header\nw3\n", encoding="utf-8")
    with pytest.raises(DhsdError, match="test.txt, line 2: 'w3' is not a writer id"):
        load_dhsd(folder)
    (splits / "test.txt").write_text("# no writer\n", encoding="utf-8")
    with pytest.raises(DhsdError, match="writer.s. 3 of .*words.csv are in no split file"):
        load_dhsd(folder)
    (splits / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test.txt does not exist: make the split"):
        load_dhsd(folder)


# --- test_data/'s real words ------------------------------------------------------------------------------
def real_rows() -> list[dict[str, str]]:
    with (config.TEST_DATA_DIR / LABELS_FILE).open(encoding="utf-8", newline="") as file:
        return [row for row in csv.DictReader(file) if row["font"].startswith(REAL_FONT_PREFIX)]


def test_test_data_real_rows_exist_and_are_by_test_writers(frame):
    rows = real_rows()
    test_writers = set(dhsd_split(frame, "test")["writer"])
    assert 15 <= len(rows) <= 25
    assert len({row["font"] for row in rows}) >= 4  # several writers
    for row in rows:
        writer = row["font"].removeprefix(REAL_FONT_PREFIX)
        assert writer in test_writers, row
        assert len(row["text"]) <= REAL_MAX_LENGTH and ctc_feasible(row["text"]) and set(row["text"]) <= set(config.IAM_CHARSET)
        assert row["file"].startswith(tuple(f"{n:02d}_dhsd_w{writer}_" for n in range(19, 19 + len(rows))))
        # a DHSD image of that writer with that text, byte for byte
        sources = frame.loc[(frame["writer"] == writer) & (frame["text"] == row["text"]), "path"]
        assert (config.TEST_DATA_DIR / row["file"]).read_bytes() in {Path(p).read_bytes() for p in sources}, row
    real_files = [path.name for path, _ in read_labels(real=True)]
    assert real_files[: len(rows)] == [row["file"] for row in rows]  # Copiste's words come after (test_realwords.py)
    assert len(read_labels(real=False)) + len(real_files) == len(read_labels())


def test_test_data_real_words_are_what_the_documented_command_copies(tmp_path):
    rows = real_rows()
    first = int(rows[0]["file"].split("_")[0])
    copied = copy_real_words(tmp_path, first)
    assert [list(row) for row in copied] == [[row["file"], row["text"], row["font"]] for row in rows]
    for name, _, _ in copied:
        assert (tmp_path / name).read_bytes() == (config.TEST_DATA_DIR / name).read_bytes(), name


def test_make_datasets_takes_dhsd_s_own_splits_with_finetune_as_the_training_split(frame):
    from utils.encoding import Vocabulary
    from utils.pipeline import DROP_UNKNOWN, make_datasets

    data = make_datasets(frame, vocabulary=Vocabulary(config.IAM_CHARSET), batch_size=8, eval_batch_size=16, cache="none",
                         splits=config.DHSD_SPLITS, training_split="finetune", verbose=False)  # fmt: skip
    assert set(data.datasets) == set(config.DHSD_SPLITS)
    for split in config.DHSD_SPLITS:
        report = data.reports[split]
        assert report.usable == int((frame["split"] == split).sum()) and report.kept == len(data.words[split])
        assert set(report.unknown) <= {" "}  # only the names of two words (a space) cannot be written
    assert data.reports["test"].dropped[DROP_UNKNOWN] > 0
    images, labels = next(iter(data["finetune"]))
    assert images.shape == (8, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1)  # the training split comes in training batches
    images, labels = next(iter(data["test"]))
    assert images.shape[0] == 16
