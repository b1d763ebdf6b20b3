"""Dataset resolution (HTR_DATA_DIR, data/, Kaggle opt-in, mini-IAM) and the saved index."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from conftest import png_bytes
from utils import config, dataset, iam

GOOD = "a01-000u-00-00 ok 154 408 768 27 51 AT A"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data/ and artifacts/ for the test, and no user settings."""
    monkeypatch.setattr(config, "DATA_DIR", tmp_path / "data")
    monkeypatch.setenv("HTR_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    for name in ("HTR_DATA_DIR", "HTR_DOWNLOAD", "HTR_KAGGLE_DIR", "HTR_QUICK", "HTR_SEED", "HTR_SPLIT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


def fake_kagglehub(monkeypatch, download):
    module = types.ModuleType("kagglehub")
    module.dataset_download = download
    monkeypatch.setitem(sys.modules, "kagglehub", module)


def test_htr_data_dir_wins(data_dir, make_iam, monkeypatch, capsys):
    root = make_iam([GOOD])
    monkeypatch.setenv("HTR_DATA_DIR", str(root))
    resolution = dataset.resolve_dataset()
    assert resolution.source == "HTR_DATA_DIR" and resolution.layout.root == root / "iam_words"
    assert "HTR_DATA_DIR" in capsys.readouterr().out


def test_real_iam_in_data_is_used(data_dir, make_iam):
    make_iam([GOOD], root=data_dir)
    assert dataset.resolve_dataset(verbose=False).source == "data"


def test_real_words_cut_by_the_series_in_data_are_no_iam(data_dir, make_iam, monkeypatch):
    """python -m utils.realwords ... data/copiste writes a mini-IAM of real words: it is not IAM, so the default stays
    the generated one; HTR_DATA_DIR still reads it, and says what it is."""
    make_iam([GOOD], root=data_dir)
    (data_dir / "iam_words" / iam.REAL_WORDS_MARKER).write_text("{}", encoding="utf-8")
    resolution = dataset.resolve_dataset(words=60, verbose=False)
    assert resolution.source == "synthetic"
    monkeypatch.setenv("HTR_DATA_DIR", str(data_dir / "iam_words"))
    chosen = dataset.resolve_dataset(verbose=False).layout
    assert chosen.real_words and chosen.describe().startswith("real-words mini-IAM at ")


def test_without_iam_the_mini_iam_is_generated_once_and_reused(data_dir, capsys):
    first = dataset.resolve_dataset(words=60)
    assert first.source == "synthetic" and first.layout.synthetic
    assert first.layout.root == data_dir / "mini-iam-60w-seed42"
    assert "synthetic mini-IAM" in capsys.readouterr().out
    stamp = first.layout.words_file.stat().st_mtime_ns
    second = dataset.resolve_dataset(words=60, verbose=False)
    assert second.layout.root == first.layout.root and second.layout.words_file.stat().st_mtime_ns == stamp


def test_quick_mode_makes_a_smaller_mini_iam(data_dir, monkeypatch):
    monkeypatch.setenv("HTR_QUICK", "1")
    resolution = dataset.resolve_dataset(verbose=False)
    assert resolution.layout.root.name == f"mini-iam-{config.SYNTHETIC_WORDS_QUICK}w-seed42"


def test_kaggle_download_offline_fails_fast_with_a_hint(data_dir, monkeypatch):
    def offline(handle, output_dir=None):
        raise ConnectionError("Failed to resolve 'api.kaggle.com' (Name or service not known)")

    fake_kagglehub(monkeypatch, offline)
    monkeypatch.setenv("HTR_DOWNLOAD", "kaggle")
    with pytest.raises(dataset.DownloadError) as error:
        dataset.resolve_dataset(verbose=False)
    message = str(error.value)
    assert config.KAGGLE_DATASET in message and "are you offline?" in message
    assert "iam_words/words.txt" in message and "HTR_DATA_DIR" in message and "python -m utils.iam check" in message


def test_kaggle_refusal_says_to_set_credentials(data_dir, monkeypatch):
    def refused(handle, output_dir=None):
        raise RuntimeError("401 Client Error: Unauthorized")

    fake_kagglehub(monkeypatch, refused)
    with pytest.raises(dataset.DownloadError, match="KAGGLE_USERNAME and KAGGLE_KEY"):
        dataset.download_from_kaggle()


def test_kaggle_download_goes_to_the_configured_folder_and_is_found(data_dir, make_iam, monkeypatch, tmp_path):
    calls = []

    def download(handle, output_dir=None):
        calls.append((handle, output_dir))
        return str(make_iam([GOOD], root=tmp_path / "kaggle-cache" / "nested"))

    fake_kagglehub(monkeypatch, download)
    monkeypatch.setenv("HTR_KAGGLE_DIR", str(tmp_path / "kaggle-cache"))
    resolution = dataset.resolve_dataset(download=True, verbose=False)
    assert calls == [(config.KAGGLE_DATASET, str(tmp_path / "kaggle-cache"))]
    assert resolution.source == "kaggle" and resolution.layout.words_file.is_file()


def test_missing_kagglehub_is_explained(data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # import fails
    with pytest.raises(dataset.DownloadError, match="pip install kagglehub"):
        dataset.download_from_kaggle()


def test_index_is_rebuilt_for_a_new_dataset_and_has_absolute_paths(data_dir, make_iam, monkeypatch):
    root = make_iam([GOOD, "a01-000u-00-01 ok 154 1 1 1 1 NN NA"], {"a01-000u-00-00": png_bytes(), "a01-000u-00-01": png_bytes(30, 12)})
    monkeypatch.setenv("HTR_DATA_DIR", str(root))
    frame = dataset.load_index()
    assert list(frame["text"]) == ["A", "NA"]  # "NA" is a word, not a missing value
    assert all(path.startswith(str(root.resolve())) for path in frame["path"])
    assert list(frame["image_width"]) == [40, 30]
    other = make_iam([GOOD], {"a01-000u-00-00": png_bytes()}, root=root.parent / "other")
    monkeypatch.setenv("HTR_DATA_DIR", str(other))
    assert len(dataset.load_index()) == 1


def test_index_is_rebuilt_when_the_split_folder_changes(data_dir, make_iam, tmp_path, monkeypatch):
    ids = ["a01-000u-00-00", "b01-000-00-00", "c01-000-00-00"]
    root = make_iam([f"{i} ok 154 1 1 1 1 NN w" for i in ids], {i: png_bytes() for i in ids})
    monkeypatch.setenv("HTR_DATA_DIR", str(root))
    default = dataset.load_index().set_index("word_id")["split"]
    split_dir = tmp_path / "published"
    split_dir.mkdir()
    for name, form in (("train.txt", "a01-000u"), ("valid.txt", "b01-000"), ("test.txt", "c01-000")):
        (split_dir / name).write_text(form + "\n", encoding="utf-8")
    monkeypatch.setenv("HTR_SPLIT_DIR", str(split_dir))
    published = dataset.load_index().set_index("word_id")["split"]
    assert published.to_dict() == {"a01-000u-00-00": "train", "b01-000-00-00": "validation", "c01-000-00-00": "test"}
    assert json.loads((tmp_path / "artifacts" / dataset.INDEX_META_FILE).read_text(encoding="utf-8"))["split_dir"] == str(split_dir.resolve())
    monkeypatch.delenv("HTR_SPLIT_DIR")
    assert dataset.load_index().set_index("word_id")["split"].to_dict() == default.to_dict()


# --- Issue 12: leftovers and blank settings ---------------------------------------------
def test_a_leftover_partial_folder_is_not_taken_for_iam(data_dir, make_iam, monkeypatch):
    """An interrupted generation leaves <folder>.partial with words/ and words.txt but no mini_iam.json."""
    make_iam([GOOD], root=data_dir / "a-mini-iam-300w-seed42.partial")
    make_iam([GOOD], root=data_dir / "b-real")
    resolution = dataset.resolve_dataset(verbose=False)
    assert resolution.source == "data" and resolution.layout.root == data_dir / "b-real" / "iam_words"


@pytest.mark.parametrize("blank", ["", " ", "\t \n"])
def test_blank_settings_mean_unset(data_dir, make_iam, monkeypatch, blank):
    make_iam([GOOD], root=data_dir / "iam")
    for name in ("HTR_DATA_DIR", "HTR_SEED", "HTR_ARTIFACTS_DIR", "HTR_KAGGLE_DIR", "HTR_SPLIT_DIR", "HTR_DOWNLOAD"):
        monkeypatch.setenv(name, blank)
    resolution = dataset.resolve_dataset(verbose=False)
    assert resolution.source == "data" and resolution.layout.root == data_dir / "iam" / "iam_words"
    assert config.seed() == 42
    assert config.artifacts_dir() in (config.REPO_ROOT / "artifacts", config.REPO_ROOT / "artifacts" / "quick")
    assert dataset.kaggle_dir() == data_dir / "kaggle"
    assert config.data_dir_setting() is None and iam.split_dir_setting() is None


def test_a_relative_data_dir_from_the_repository_root_is_found_from_notebooks(monkeypatch, tmp_path):
    monkeypatch.setenv("HTR_DATA_DIR", "copiste")
    monkeypatch.chdir(config.REPO_ROOT / "notebooks")  # where a chapter's kernel runs
    assert config.data_dir_setting() == config.REPO_ROOT / "copiste"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "copiste").mkdir()  # one there from here is the one meant
    assert config.data_dir_setting() == Path("copiste")
    monkeypatch.setenv("HTR_DATA_DIR", "no-such-folder")
    assert config.data_dir_setting() == Path("no-such-folder")  # left as given: the error names it


@pytest.mark.parametrize("value", ["abc", "-1", "4.2", "٤٢", str(2**32), "1e3"])
def test_an_htr_seed_that_is_not_a_seed_is_an_error_naming_it(monkeypatch, value):
    monkeypatch.setenv("HTR_SEED", value)
    with pytest.raises(ValueError, match=r"^HTR_SEED=.* is not a seed: use a whole number from 0 to 4294967295"):
        config.seed()


def test_htr_seed_and_data_dir_are_read_stripped(data_dir, make_iam, monkeypatch):
    monkeypatch.setenv("HTR_SEED", " 7 ")
    assert config.seed() == 7
    root = make_iam([GOOD])
    monkeypatch.setenv("HTR_DATA_DIR", f"  {root}  ")
    assert dataset.resolve_dataset(verbose=False).source == "HTR_DATA_DIR"


@pytest.mark.parametrize("validation", ["", "z09-999\n"])
def test_an_empty_or_unmatched_split_file_stops_the_index_and_saves_nothing(data_dir, make_iam, tmp_path, monkeypatch, validation):
    ids = ["a01-000u-00-00", "b01-000-00-00", "c01-000-00-00"]
    monkeypatch.setenv("HTR_DATA_DIR", str(make_iam([f"{i} ok 154 1 1 1 1 NN w" for i in ids], {i: png_bytes() for i in ids})))
    split_dir = tmp_path / "published"
    split_dir.mkdir()
    for name, text in (("train.txt", "a01-000u\n"), ("validation.txt", validation), ("test.txt", "c01-000\n")):
        (split_dir / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("HTR_SPLIT_DIR", str(split_dir))
    with pytest.raises(iam.SplitFileError, match="validation.txt"):
        dataset.load_index()
    artifacts = tmp_path / "artifacts"
    assert not artifacts.exists() or not any(artifacts.rglob("*"))
