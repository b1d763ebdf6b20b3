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
