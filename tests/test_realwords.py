"""utils.realwords: Copiste pages into a mini-IAM that the IAM loader reads as it is."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from utils import realwords
from utils.iam import WORD_ID_PATTERN, parse_words_file, read_split_file, read_writers

SAMPLE = Path(__file__).parent / "fixtures" / "alto_sample"


def test_pages_become_iam_form_ids_and_copies_writers():
    assert realwords.form_id("imp_wikitexte_0022") == "i00-022"
    assert realwords.form_id("wikitexte_0014_2") == "w00-014b"
    assert realwords.form_id("oldbatch_wikitexte_0007") == "o00-007"
    assert realwords.form_id("imp_wikitexte_0172_double") == "i01-172"
    assert realwords.form_id("wikitexte_0221_double_1") == "w01-221a"
    assert realwords.writer_id("wikitexte_0014_1") == realwords.writer_id("wikitexte_0014_2") == "w00-014"
    assert realwords.writer_id("imp_wikitexte_0014") != realwords.writer_id("wikitexte_0014")  # two batches, two people
    with pytest.raises(ValueError, match="page_7: not a Copiste page name"):
        realwords.form_id("page_7")


def test_the_writer_split_is_fixed_and_sized():
    writers = [f"w00-{n:03d}" for n in range(267)]
    split = realwords.writer_split(writers)
    assert split == realwords.writer_split(list(reversed(writers)))  # the order given changes nothing
    counts = {name: list(split.values()).count(name) for name in ("train", "validation", "test")}
    assert counts == {"train": 200, "validation": realwords.VALIDATION_WRITERS, "test": realwords.TEST_WRITERS}
    assert realwords.writer_split(writers, seed=1) != split


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("copiste") / "words-iam"
    messages: list[str] = []
    summary = realwords.build(SAMPLE, out, report=messages.append)
    return out, summary, messages


def test_the_committed_pages_become_a_mini_iam_the_loader_reads(built):
    out, summary, _ = built
    parsed = parse_words_file(out / "words.txt")
    assert not parsed.problems and len(parsed.records) >= 15
    assert all(WORD_ID_PATTERN.match(record.word_id) for record in parsed.records)
    assert {record.form_id for record in parsed.records} == {"w00-014b", "w00-152b"}
    for record in parsed.records:
        image = cv2.imread(str(record.path), cv2.IMREAD_GRAYSCALE)
        assert image is not None and image.shape == (record.h, record.w), record.word_id
        assert image.max() == 255 and 0 < record.gray_level < 255  # paper whitened above the word's gray level
    texts = [record.text for record in parsed.records]
    assert "village" in texts and "2011." in texts and "obtenu" in texts  # "2011 ." is one written word
    assert not any("wikitexte" in text for text in texts)  # the page id lines are left out
    assert read_writers(out / "forms.txt") == {"w00-014b": "w00-014", "w00-152b": "w00-152"}
    listed = set().union(*(read_split_file(out / "splits" / f"{name}.txt") for name in ("train", "validation", "test")))
    assert listed == {"w00-014b", "w00-152b"}
    assert summary["words_in_transcriptions"] == 24 and summary["ok"] == sum(r.status == "ok" for r in parsed.records)
    assert json.loads((out / "realwords.json").read_text(encoding="utf-8"))["ok"] == summary["ok"]


def test_a_folder_with_files_is_never_written_over(tmp_path):
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not empty"):
        realwords.build(SAMPLE, tmp_path)
    assert (tmp_path / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_the_download_offline_fails_at_once_saying_what_to_do(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(realwords.DownloadError, match="are you offline") as error:
        realwords.main([str(tmp_path / "source"), str(tmp_path / "out"), "--download"])
    assert "github.com/banq-dcn/Copiste-d-un-jour" in str(error.value) and "unzip its alto/ and jpg/" in str(error.value)
    assert not (tmp_path / "out").exists()


# --- The shipped subset (copiste/) and the words test_data/ copies from it ------------------------------------
def test_the_shipped_subset_is_a_mini_iam_within_its_size_with_whole_writers():
    from utils import config
    from utils.iam import load_iam

    dataset = load_iam(config.COPISTE_DIR)
    assert not dataset.parse_problems and not dataset.duplicates and not dataset.image_report.problems
    images = sum(path.stat().st_size for path in (config.COPISTE_DIR / "words").rglob("*.png"))
    assert images <= config.COPISTE_MAX_BYTES
    splits: dict[str, set[str]] = {}
    for record in dataset.records:
        splits.setdefault(dataset.splits[record.word_id], set()).add(record.writer_id)
    assert len(splits["test"]) == realwords.TEST_WRITERS and len(splits["validation"]) == realwords.VALIDATION_WRITERS
    assert not (splits["train"] & splits["test"]) and not (splits["train"] & splits["validation"])
    assert all(record.status == "ok" for record in dataset.records if dataset.splits[record.word_id] == "train")
    ok_test = sum(record.status == "ok" and dataset.splits[record.word_id] == "test" for record in dataset.records)
    assert ok_test >= 3000
    assert "CC BY 4.0" in (config.COPISTE_DIR / "README.md").read_text(encoding="utf-8")
    assert (config.COPISTE_DIR / "LICENSE").is_file()


def test_test_data_copiste_rows_are_everyday_words_of_the_test_writers(tmp_path):
    import csv

    from utils import config
    from utils.iam import load_iam
    from utils.testdata import COPISTE_FONT_PREFIX, COPISTE_WORDS, LABELS_FILE, copy_copiste_words

    with (config.TEST_DATA_DIR / LABELS_FILE).open(encoding="utf-8", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["font"].startswith(COPISTE_FONT_PREFIX)]
    assert len(rows) == COPISTE_WORDS
    dataset = load_iam(config.COPISTE_DIR, validate=False)
    for row in rows:
        writer = row["font"].removeprefix(COPISTE_FONT_PREFIX)
        sources = [record for record in dataset.records if record.writer_id == writer and record.text == row["text"]
                   and record.status == "ok" and dataset.splits[record.word_id] == "test"]  # fmt: skip
        assert row["text"].isalpha() and row["text"].islower(), row
        assert (config.TEST_DATA_DIR / row["file"]).read_bytes() in {record.path.read_bytes() for record in sources}, row
    assert len({row["text"] for row in rows}) == len(rows) and len({row["font"] for row in rows}) == len(rows)
    first = int(rows[0]["file"].split("_")[0])
    assert [list(row) for row in copy_copiste_words(tmp_path, first)] == [[row["file"], row["text"], row["font"]] for row in rows]
