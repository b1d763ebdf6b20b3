"""The IAM loader: parsing quirks, layout discovery, image validation, splits, the check command."""

from __future__ import annotations

import builtins
import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SHARED_SAMPLE, png_bytes
from utils import config, iam

GOOD = "a01-000u-00-00 ok 154 408 768 27 51 AT A"


# --- Parsing ----------------------------------------------------------------------
def test_parse_line_reads_every_field():
    record = iam.parse_line(GOOD, 7, Path("words"))
    assert record.word_id == "a01-000u-00-00"
    assert (record.form_id, record.line_id) == ("a01-000u", "a01-000u-00")
    assert (record.status, record.gray_level, record.tag, record.text) == ("ok", 154, "AT", "A")
    assert (record.x, record.y, record.w, record.h) == (408, 768, 27, 51)
    assert record.path == Path("words/a01/a01-000u/a01-000u-00-00.png")
    assert record.line_number == 7


def test_comments_and_blank_lines_are_skipped_silently():
    result = iam.parse_words_lines(["#--- words.txt ---", "#", "", "   ", GOOD])
    assert [r.word_id for r in result.records] == ["a01-000u-00-00"]
    assert result.problems == []


def test_err_rows_are_kept_with_their_status():
    result = iam.parse_words_lines(["a01-117-05-02 err 155 -1 -1 -1 -1 NN nothing"])
    assert result.records[0].status == "err"
    assert result.records[0].x == -1


def test_transcription_is_fields_nine_onward_joined_by_a_space():
    result = iam.parse_words_lines(["a01-000u-06-02 ok 159 878 1825 160 68 NPT M P", "a01-003-01-04 ok 176 1252 1102 222 52 NPTS M  Ps"])
    assert [r.text for r in result.records] == ["M P", "M Ps"]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("a01-000u-00-00 ok 154 408 768 27 51 AT", "expected at least 9 fields, found 8"),
        ("a01-000u-00-00 maybe 154 408 768 27 51 AT A", "segmentation result must be 'ok' or 'err'"),
        ("a01-000u-00-00 ok 15x 408 768 27 51 AT A", "must be integers"),
        ("a01-000u-00 ok 154 408 768 27 51 AT A", "does not match IAM's pattern"),
        ("../../etc/passwd ok 154 408 768 27 51 AT A", "could escape the data folder"),
        ("a01/../../x-00-00 ok 154 408 768 27 51 AT A", "could escape the data folder"),
        ("/etc/a01-000u-00-00 ok 154 408 768 27 51 AT A", "could escape the data folder"),
        ("..\\a01-000u-00-00 ok 154 408 768 27 51 AT A", "could escape the data folder"),
    ],
)
def test_malformed_lines_are_reported_with_their_line_number(line, reason):
    result = iam.parse_words_lines(["# header", GOOD, line, "a01-000u-00-01 ok 154 507 766 213 48 NN MOVE"])
    assert [r.word_id for r in result.records] == ["a01-000u-00-00", "a01-000u-00-01"]
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.line_number == 3 and reason in problem.reason
    assert "line 3" in str(problem)


def test_invalid_utf8_is_a_problem_not_a_crash():
    result = iam.parse_words_lines([GOOD.encode(), b"a01-000u-00-01 ok 154 507 766 213 48 NN MOV\xff"])
    assert len(result.records) == 1
    assert result.problems[0].reason == "not valid UTF-8"


def test_repeated_ids_are_kept_and_flagged():
    result = iam.parse_words_lines([GOOD, GOOD.replace(" A", " B")])
    assert len(result.records) == 2
    assert result.duplicates[0].line_number == 2 and "line 1" in result.duplicates[0].reason


def test_parser_on_the_real_iam_ok_lines():
    lines_file = SHARED_SAMPLE / "words_ok_lines.txt"
    if not lines_file.is_file():
        pytest.skip(f"real IAM sample not present: {lines_file.parent} (it lives beside the repo, in ../shared)")
    result = iam.parse_words_file(lines_file)
    raw = [line for line in lines_file.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    assert len(result.records) == len(raw) == 88_015
    assert result.problems == []
    assert all(r.text == " ".join(line.split()[8:]) for r, line in zip(result.records, raw))
    assert sum(len(line.split()) > 9 for line in raw) == sum(" " in r.text for r in result.records) > 0


# --- Finding the dataset ----------------------------------------------------------
def test_finds_the_kaggle_layout(make_iam):
    root = make_iam([GOOD], layout="kaggle")
    layout = iam.find_dataset(root)
    assert layout.root == root / "iam_words"
    assert layout.words_file == root / "iam_words" / "words.txt"


def test_finds_the_kaggle_layout_nested_one_folder_deeper(make_iam, tmp_path):
    make_iam([GOOD], layout="kaggle", root=tmp_path / "download" / "iam-handwriting-word-database")
    layout = iam.find_dataset(tmp_path / "download")
    assert layout.root == tmp_path / "download" / "iam-handwriting-word-database" / "iam_words"


def test_finds_words_new_txt_one_level_up(tmp_path):
    (tmp_path / "iam_words" / "words").mkdir(parents=True)
    (tmp_path / "words_new.txt").write_text(GOOD + "\n", encoding="utf-8")
    layout = iam.find_dataset(tmp_path)
    assert layout.words_file == tmp_path / "words_new.txt"


def test_finds_the_official_layout(make_iam):
    root = make_iam([GOOD], layout="official")
    layout = iam.find_dataset(root)
    assert layout.words_file == root / "ascii" / "words.txt"
    assert layout.images_dir == root / "words"


def test_real_iam_is_preferred_to_a_synthetic_one(make_iam, tmp_path):
    synthetic = make_iam([GOOD], root=tmp_path / "data" / "a-mini")
    (synthetic / "iam_words" / iam.SYNTHETIC_MARKER).write_text("{}", encoding="utf-8")
    make_iam([GOOD], root=tmp_path / "data" / "b-real")
    layout = iam.find_dataset(tmp_path / "data")
    assert not layout.synthetic and "b-real" in str(layout.root)


def test_no_dataset_error_lists_what_was_looked_for(tmp_path):
    (tmp_path / "words").mkdir()  # images without labels are not a dataset
    with pytest.raises(iam.DatasetNotFoundError) as error:
        iam.find_dataset(tmp_path)
    message = str(error.value)
    assert "words.txt" in message and "ascii/words.txt" in message and str(tmp_path) in message


# --- Validating images --------------------------------------------------------------
@pytest.fixture
def corrupt_copy(make_iam):
    """A dataset with one good image and every defect: empty, truncated, missing, 1-pixel, not an image."""
    ids = ["a01-000u-00-00", "a01-000u-00-01", "a01-000u-00-02", "a01-000u-00-03", "a01-000u-00-04", "a01-000u-00-05"]
    lines = [f"{i} ok 154 408 768 27 51 NN word{n}" for n, i in enumerate(ids)]
    lines += ["a01-000u-00-06 ok 154 408 768 27 51 NN", "../a01-000u-00-07 ok 154 408 768 27 51 NN escape"]
    images = {
        ids[0]: png_bytes(),
        ids[1]: b"",
        ids[2]: png_bytes(200, 100)[:120],
        ids[3]: None,
        ids[4]: png_bytes(1, 30),
        ids[5]: b"this is not a png",
    }
    return make_iam(lines, images)


def test_validation_names_every_defect(corrupt_copy):
    parsed = iam.parse_words_file(iam.find_dataset(corrupt_copy).words_file)
    report = iam.validate_images(parsed.records)
    kinds = {p.word_id: p.kind for p in report.problems}
    assert kinds == {
        "a01-000u-00-01": "empty",
        "a01-000u-00-02": "unreadable",
        "a01-000u-00-03": "missing",
        "a01-000u-00-04": "degenerate",
        "a01-000u-00-05": "unreadable",
    }
    assert report.sizes == {"a01-000u-00-00": (40, 20)}
    assert report.counts() == {"missing": 1, "empty": 1, "unreadable": 2, "degenerate": 1}


def test_check_command_reports_a_corrupt_copy_without_crashing(corrupt_copy, capsys):
    # All its words are of one form: split by form, validation and test are empty, which is warned (exit 1).
    assert iam.main(["check", str(corrupt_copy)]) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "warning: the validation split has no usable word" in captured.err
    assert "warning: the test split has no usable word" in captured.err
    for defect in ("a01-000u-00-01: empty", "a01-000u-00-02: unreadable", "a01-000u-00-03: missing",
                   "a01-000u-00-04: degenerate", "line 7: expected at least 9 fields",
                   "line 8: id could escape the data folder"):  # fmt: skip
        assert defect in out
    assert "words listed:         6" in out
    assert "malformed lines:      2" in out
    assert "split:                by form" in out and "train:" in out


def test_check_command_without_a_dataset_fails_clearly(tmp_path, capsys):
    assert iam.main(["check", str(tmp_path)]) == 2
    assert "No IAM word dataset found" in capsys.readouterr().err


def test_check_command_on_the_real_sample(capsys):
    if not SHARED_SAMPLE.is_dir():
        pytest.skip(f"real IAM sample not present: {SHARED_SAMPLE} (it lives beside the repo, in ../shared)")
    assert iam.main(["check", str(SHARED_SAMPLE), "--texts"]) == 0
    out = capsys.readouterr().out
    assert "words listed:         14" in out and "readable:           14" in out
    assert "g07-038-01-02\tok\tbiographies" in out and "d03-112-01-03\tok\tKings" in out


# --- Splits ---------------------------------------------------------------------------
def _records(forms: int, words_per_form: int = 5) -> list[iam.WordRecord]:
    lines = [f"a{f // 100:02d}-{f % 1000:03d}-00-{w:02d} ok 1 1 1 1 1 NN w" for f in range(forms) for w in range(words_per_form)]
    return iam.parse_words_lines(lines).records


def test_split_by_form_is_deterministic_disjoint_and_near_80_10_10():
    records = _records(300)
    first, second = iam.split_by_group(records, seed=1), iam.split_by_group(records, seed=1)
    assert first == second
    forms_of = {name: {r.form_id for r in records if first[r.word_id] == name} for name in ("train", "validation", "test")}
    assert not (forms_of["train"] & forms_of["validation"] or forms_of["train"] & forms_of["test"] or forms_of["validation"] & forms_of["test"])
    shares = {name: len(forms) / 300 for name, forms in forms_of.items()}
    assert shares["train"] == pytest.approx(0.8, abs=0.02) and shares["test"] == pytest.approx(0.1, abs=0.02)
    assert iam.split_by_group(records, seed=2) != first  # the seed matters


def test_split_groups_by_writer_when_writers_are_known():
    records = _records(40)
    for r in records:
        r.writer_id = str(int(r.form_id[4:7]) % 10)  # 10 writers, 4 forms each
    splits = iam.split_by_group(records, seed=0)
    writer_splits = {}
    for r in records:
        writer_splits.setdefault(r.writer_id, set()).add(splits[r.word_id])
    assert all(len(s) == 1 for s in writer_splits.values())


def test_split_files_accept_form_line_and_word_ids(tmp_path):
    records = _records(4)
    (tmp_path / "train.txt").write_text("# forms\na00-000\na00-001-00\n", encoding="utf-8")
    (tmp_path / "validation.txt").write_text("a00-002-00-00  extra columns are ignored\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("a00-003\n", encoding="utf-8")
    splits = iam.split_from_files(records, iam.split_files_in(tmp_path))
    assert splits["a00-000-00-04"] == "train" and splits["a00-001-00-02"] == "train"
    assert splits["a00-002-00-00"] == "validation" and "a00-002-00-01" not in splits
    assert splits["a00-003-00-00"] == "test"


def test_split_file_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_text("a00-000\nnot-an-id\n", encoding="utf-8")
    with pytest.raises(iam.SplitFileError, match=r"bad.txt:2: 'not-an-id'"):
        iam.read_split_file(tmp_path / "bad.txt")
    (tmp_path / "a.txt").write_text("a00-000\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("a00-000-00\n", encoding="utf-8")
    with pytest.raises(iam.SplitFileError, match="more than one split"):
        iam.split_from_files(_records(1), {"train": tmp_path / "a.txt", "test": tmp_path / "b.txt"})
    with pytest.raises(iam.SplitFileError, match=r"has no file for: train \(looked for train.txt, trainset.txt"):
        iam.split_files_in(tmp_path)
    with pytest.raises(iam.SplitFileError, match="does not exist"):
        iam.split_files_in(tmp_path / "nowhere")


def test_the_iam_line_task_split_merges_its_two_validation_sets(tmp_path):
    records = _records(4)
    (tmp_path / "trainset.txt").write_text("a00-000-00\na00-000-01\n", encoding="utf-8")
    (tmp_path / "validationset1.txt").write_text("a00-001-00\n", encoding="utf-8")
    (tmp_path / "validationset2.txt").write_text("a00-002-00\n", encoding="utf-8")
    (tmp_path / "testset.txt").write_text("a00-003-00\n", encoding="utf-8")
    files = iam.split_files_in(tmp_path)
    assert [p.name for p in files["validation"]] == ["validationset1.txt", "validationset2.txt"]
    splits = iam.split_from_files(records, files)
    assert splits["a00-001-00-03"] == "validation" and splits["a00-002-00-00"] == "validation"
    assert splits["a00-000-00-00"] == "train" and splits["a00-003-00-01"] == "test"


def test_the_aachen_lists_of_forms_are_accepted(tmp_path):
    for name, form in (("tr.lst", "a00-000"), ("va.lst", "a00-001"), ("te.lst", "a00-002")):
        (tmp_path / name).write_text(form + "\n", encoding="utf-8")
    splits = iam.split_from_files(_records(4), iam.split_files_in(tmp_path))
    assert {splits["a00-000-00-00"], splits["a00-001-00-00"], splits["a00-002-00-00"]} == {"train", "validation", "test"}
    assert "a00-003-00-00" not in splits  # a form no list names is left out


def test_htr_split_dir_overrides_the_default_split(make_iam, tmp_path, monkeypatch):
    ids = ["a01-000u-00-00", "b01-000-00-00", "c01-000-00-00"]
    root = make_iam([f"{i} ok 154 1 1 1 1 NN w" for i in ids], {i: png_bytes() for i in ids})
    split_dir = tmp_path / "published"
    split_dir.mkdir()
    for name, form in (("trainset.txt", "c01-000"), ("validationset1.txt", "a01-000u"), ("testset.txt", "b01-000")):
        (split_dir / name).write_text(form + "\n", encoding="utf-8")
    monkeypatch.setenv("HTR_SPLIT_DIR", str(split_dir))
    dataset = iam.load_iam(root)
    assert dataset.splits == {"c01-000-00-00": "train", "a01-000u-00-00": "validation", "b01-000-00-00": "test"}
    assert "trainset.txt, validationset1.txt, testset.txt" in dataset.split_method


def test_load_iam_uses_a_split_folder_and_keeps_only_usable_words(make_iam, tmp_path):
    ids = ["a01-000u-00-00", "a01-000u-00-01", "b01-000-00-00", "c01-000-00-00"]
    lines = [f"{i} ok 154 1 1 1 1 NN w" for i in ids] + ["b01-000-00-01 err 154 1 1 1 1 NN w"]
    root = make_iam(lines, {i: png_bytes() for i in ids[:1] + ids[2:] + ["b01-000-00-01"]})
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    for name, form in (("train", "a01-000u"), ("validation", "b01-000"), ("test", "c01-000")):
        (split_dir / f"{name}.txt").write_text(form + "\n", encoding="utf-8")
    dataset = iam.load_iam(root, split_dir=split_dir)
    assert "split files" in dataset.split_method
    assert [r.word_id for r in dataset.usable()] == ["a01-000u-00-00", "b01-000-00-00", "c01-000-00-00"]
    frame = iam.records_to_frame(dataset)
    assert frame.set_index("word_id").loc["a01-000u-00-01", "image_problem"] == "missing"
    assert frame.set_index("word_id").loc["c01-000-00-00", "split"] == "test"
    assert frame["path"].iloc[0] == "words/a01/a01-000u/a01-000u-00-00.png"


# --- Issue 12: hostile and damaged inputs -----------------------------------------------
THREE_FORMS = ["a01-000u-00-00", "b01-000-00-00", "c01-000-00-00"]


def _three_form_iam(make_iam, tmp_path, splits: dict[str, bytes] | None = None) -> Path:
    """A dataset of three forms with readable images and, when given, a splits/ folder of these file contents."""
    root = make_iam([f"{i} ok 154 1 1 1 1 NN w" for i in THREE_FORMS], {i: png_bytes() for i in THREE_FORMS})
    if splits is not None:
        (root / "iam_words" / "splits").mkdir()
        for name, data in splits.items():
            (root / "iam_words" / "splits" / name).write_bytes(data)
    return root


GOOD_SPLITS = {"train.txt": b"a01-000u\n", "validation.txt": b"b01-000\n", "test.txt": b"c01-000\n"}


@pytest.mark.parametrize(
    "validation, message",
    [
        (b"", r"empty split file: .*validation.txt lists no id"),
        (b"# only a comment\n\n", r"empty split file: .*validation.txt lists no id"),
        (b"z09-999\n", r"validation split: none of the 1 ids in .*validation.txt \(like z09-999\)"),
    ],
)
def test_an_empty_or_unmatched_split_file_is_an_error_naming_it(make_iam, tmp_path, capsys, validation, message):
    root = _three_form_iam(make_iam, tmp_path, {**GOOD_SPLITS, "validation.txt": validation})
    with pytest.raises(iam.SplitFileError, match=message):
        iam.load_iam(root)
    assert iam.main(["check", str(root)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and "validation.txt" in captured.err


def test_split_files_of_three_forms_check_cleanly(make_iam, tmp_path, capsys):
    root = _three_form_iam(make_iam, tmp_path, GOOD_SPLITS)
    assert iam.main(["check", str(root)]) == 0
    captured = capsys.readouterr()
    assert "validation:         1" in captured.out and captured.err == ""


def test_a_split_file_with_a_byte_that_is_not_utf8_names_its_line(make_iam, tmp_path, capsys):
    root = _three_form_iam(make_iam, tmp_path, {**GOOD_SPLITS, "validation.txt": b"# forms\nb01-000 \xe9crit\n"})
    with pytest.raises(iam.SplitFileError, match=r"validation.txt:2: not valid UTF-8 \(byte 0xe9 at column 9\)"):
        iam.read_split_file(root / "iam_words" / "splits" / "validation.txt")
    assert iam.main(["check", str(root)]) == 2
    assert "validation.txt:2: not valid UTF-8" in capsys.readouterr().err


def test_a_bom_and_any_line_endings_are_accepted_in_split_files(tmp_path):
    (tmp_path / "train.txt").write_bytes(b"\xef\xbb\xbfa00-000\ra00-001-00\r\na00-002-00-01\n")
    assert iam.read_split_file(tmp_path / "train.txt") == {"a00-000", "a00-001-00", "a00-002-00-01"}


def test_a_listed_image_that_is_a_symlink_loop_is_reported_not_a_crash(make_iam, tmp_path):
    root = _three_form_iam(make_iam, tmp_path, GOOD_SPLITS)
    image = root / "iam_words" / "words" / "b01" / "b01-000" / "b01-000-00-00.png"
    image.unlink()
    image.symlink_to(image)  # a loop: Path.resolve() raises RuntimeError on it
    dataset = iam.load_iam(root)
    assert [(p.word_id, p.kind) for p in dataset.image_report.problems] == [("b01-000-00-00", "unreadable")]
    assert "b01-000-00-00: unreadable" in iam.check_report(dataset)
    assert config.display_path(image).endswith("b01-000-00-00.png")


def test_check_of_a_folder_that_is_a_symlink_loop_fails_clearly(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert iam.main(["check", str(loop)]) == 2
    assert "No IAM word dataset found under" in capsys.readouterr().err


def test_a_words_file_that_cannot_be_read_is_one_error_line(make_iam, tmp_path, monkeypatch, capsys):
    root = _three_form_iam(make_iam, tmp_path)
    words_file = root / "iam_words" / "words.txt"
    words_file.chmod(0)
    if os.geteuid() == 0:  # root reads a chmod-000 file: make open() refuse as the kernel does for a user
        real_open = io.open

        def refusing_open(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and Path(file) == words_file:
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(io, "open", refusing_open)
        monkeypatch.setattr(builtins, "open", refusing_open)
    try:
        with pytest.raises(OSError, match=r"words.txt: cannot be read \(Permission denied\)"):
            iam.parse_words_file(words_file)
        assert iam.main(["check", str(root)]) == 2
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and "error: " in captured.err and "words.txt: cannot be read" in captured.err
    finally:
        words_file.chmod(0o644)


def test_an_invalid_htr_seed_is_one_error_line_and_exit_2(make_iam, tmp_path):
    root = _three_form_iam(make_iam, tmp_path)  # no split files: the split by form needs the seed
    env = {**os.environ, "HTR_SEED": "abc", "PYTHONPATH": str(REPO_ROOT)}
    for name in ("HTR_DEBUG", "HTR_SPLIT_DIR", "HTR_DATA_DIR"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "utils.iam", "check", str(root)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: HTR_SEED='abc' is not a seed")


@pytest.mark.parametrize("ending", [b"\r", b"\r\n", b"\n"])
def test_cr_crlf_and_lf_line_endings_are_read_alike(make_iam, tmp_path, ending, capsys):
    lines = [b"#--- words.txt ---", GOOD.encode(), b"a01-000u-00-01 ok 154 507 766 213 48 NN MOVE", b"b01-000-00-00 ok 1 1 1 1 1 NN stop"]
    root = make_iam([])
    (root / "iam_words" / "words.txt").write_bytes(ending.join(lines) + ending)
    result = iam.parse_words_file(root / "iam_words" / "words.txt")
    assert [(r.word_id, r.text, r.line_number) for r in result.records] == [
        ("a01-000u-00-00", "A", 2), ("a01-000u-00-01", "MOVE", 3), ("b01-000-00-00", "stop", 4)]  # fmt: skip
    assert result.problems == []
    iam.main(["check", str(root)])
    out = capsys.readouterr().out
    assert "words listed:         3" in out and "malformed lines:      0" in out


def test_a_utf8_bom_before_the_first_line_is_dropped(make_iam, tmp_path):
    root = make_iam([])
    (root / "iam_words" / "words.txt").write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\r\nb01-000-00-00 ok 1 1 1 1 1 NN x\r\n")
    result = iam.parse_words_file(root / "iam_words" / "words.txt")
    assert [r.word_id for r in result.records] == ["a01-000u-00-00", "b01-000-00-00"] and result.problems == []
    assert [r.word_id for r in iam.parse_words_lines(["\ufeff" + GOOD]).records] == ["a01-000u-00-00"]


def test_forms_txt_with_a_bom_and_cr_endings_names_every_writer(tmp_path):
    (tmp_path / "forms.txt").write_bytes(b"\xef\xbb\xbfa01-000u 000 2 prt\rb01-000 001\r")
    assert iam.read_writers(tmp_path / "forms.txt") == {"a01-000u": "000", "b01-000": "001"}


@pytest.mark.parametrize("text", ["\x1b[2J\x1b[31mred", "abc\u202etxt.exe", "a\x00b", "tab\x0bbed", "zero\u200bwidth"])
def test_control_and_invisible_characters_in_a_transcription_are_a_problem(text):
    result = iam.parse_words_lines([GOOD, f"a01-000u-00-01 ok 154 507 766 213 48 NN {text}"])
    assert [r.word_id for r in result.records] == ["a01-000u-00-00"]
    assert result.problems[0].line_number == 2 and "control or invisible characters" in result.problems[0].reason
    assert all(c.isprintable() for c in str(result.problems[0]))


def test_check_never_prints_a_raw_control_character(make_iam, tmp_path, capsys):
    lines = [GOOD, "a01-000u-00-01 ok 154 507 766 213 48 NN \x1b[2J\x1b]0;owned\x07", "a01-000u-00-02 ok 1 1 1 1 1 N\u202eN x"]
    root = make_iam(lines, {"a01-000u-00-00": png_bytes()})
    iam.main(["check", str(root), "--texts"])
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert all(c.isprintable() or c in "\n\t" for c in printed)
    assert "malformed lines:      2" in captured.out and "\\x1b" in captured.out


@pytest.mark.parametrize("word_id", ["a٠1-000u-00-09", "a01-٠٠٠-00-00", "a01-000u-00-0９", "a01-000u-٠٢"])
def test_ids_take_ascii_digits_only(word_id, tmp_path):
    assert iam.check_word_id(word_id) is not None
    result = iam.parse_words_lines([f"{word_id} ok 154 1 1 1 1 NN w"])
    assert result.records == [] and "IAM's pattern" in result.problems[0].reason
    (tmp_path / "split.txt").write_text(word_id + "\n", encoding="utf-8")
    with pytest.raises(iam.SplitFileError, match="is not an IAM form, line or word id"):
        iam.read_split_file(tmp_path / "split.txt")


def test_an_id_is_checked_whole():
    assert iam.check_word_id("a01-000u-00-00") is None
    assert iam.check_word_id("a01-000u-00-00\n") is not None  # $ would have let the newline through


@pytest.mark.parametrize("field", ["١٥٤", "+154", "1_54", "154.0"])
def test_gray_level_and_box_take_ascii_integers_only(field):
    result = iam.parse_words_lines([f"a01-000u-00-00 ok {field} 1 1 1 1 NN w"])
    assert result.records == [] and "must be integers" in result.problems[0].reason


def test_check_refuses_a_negative_show(make_iam, capsys):
    root = make_iam([GOOD])
    with pytest.raises(SystemExit) as exit_info:
        iam.main(["check", str(root), "--show", "-3"])
    assert exit_info.value.code == 2
    assert "--show" in capsys.readouterr().err


def test_interrupted_generation_folders_are_never_taken_for_a_dataset(make_iam, tmp_path, capsys):
    data = tmp_path / "data"
    # An IAM layout inside the partial folder and one in it (words/ and words.txt), and no mini_iam.json.
    make_iam([GOOD], root=data / "mini-iam-300w-seed42.partial")
    (data / "mini-iam-300w-seed42.partial" / "words").mkdir()
    (data / "mini-iam-300w-seed42.partial" / "words.txt").write_text(GOOD + "\n", encoding="utf-8")
    assert iam.find_datasets(data) == []
    assert iam.main(["check", str(data)]) == 2
    assert "*.partial" in capsys.readouterr().err
    make_iam([GOOD], root=data / "real")
    assert [layout.root for layout in iam.find_datasets(data)] == [data / "real" / "iam_words"]
