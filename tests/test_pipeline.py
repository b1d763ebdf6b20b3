"""The tf.data pipeline on a small generated mini-IAM: shapes, drops, shuffling, augmentation, cache."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from utils import config
from utils.dataset import load_index
from utils.encoding import PAD, Vocabulary, label_lengths
from utils.pipeline import (
    DROP_TOO_LONG,
    DROP_UNKNOWN,
    _cache_prefix,
    make_dataset,
    make_datasets,
    select_words,
    vocabulary_for,
)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """The index of a 300-word mini-IAM, built in a temporary data and artifacts folder."""
    base = tmp_path_factory.mktemp("pipeline")
    patch = pytest.MonkeyPatch()
    patch.setattr(config, "DATA_DIR", base / "data")
    patch.setattr(config, "synthetic_word_count", lambda: 300)
    patch.setenv("HTR_ARTIFACTS_DIR", str(base / "artifacts"))
    for name in ("HTR_DATA_DIR", "HTR_DOWNLOAD", "HTR_SEED"):
        patch.delenv(name, raising=False)
    yield load_index()
    patch.undo()


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("HTR_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts"


def first_words(dataset, vocabulary, batches=10):
    return [vocabulary.decode(label) for _, labels in dataset.take(batches) for label in labels.numpy()]


def test_datasets_have_the_right_shapes_dtypes_and_labels(frame, artifacts):
    data = make_datasets(frame, batch_size=16, verbose=False)
    for split in config.SPLITS:
        images, labels = next(iter(data[split]))
        assert images.dtype == tf.float32 and labels.dtype == tf.int32
        assert images.shape[1:] == (config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1)
        assert labels.shape[1:] == (config.LABEL_WIDTH,)
        assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    # Validation and test keep their order: their labels are the selected words, in order, padded with 0.
    words = data.words["validation"]["text"].tolist()
    labels = np.concatenate([labels.numpy() for _, labels in data["validation"]])
    assert [data.vocabulary.decode(row) for row in labels] == words
    assert list(label_lengths(labels)) == [len(word) for word in words]
    assert (labels[np.arange(labels.shape[1]) >= label_lengths(labels)[:, None]] == PAD).all()


def test_training_batches_are_full_and_cover_the_words(frame, artifacts):
    data = make_datasets(frame, batch_size=16, verbose=False)
    sizes = [len(labels) for _, labels in data["train"]]
    assert set(sizes) == {16} and sum(sizes) == len(data.words["train"]) // 16 * 16


def test_training_reshuffles_between_epochs_and_only_training(frame, artifacts):
    data = make_datasets(frame, batch_size=16, verbose=False)
    epoch_1, epoch_2 = (first_words(data["train"], data.vocabulary) for _ in range(2))
    assert sorted(epoch_1) != epoch_1 and epoch_1 != epoch_2
    assert first_words(data["validation"], data.vocabulary) == first_words(data["validation"], data.vocabulary)


def test_augmentation_changes_training_images_only_and_is_seeded(frame, artifacts):
    vocabulary = vocabulary_for(frame, verbose=False)
    train, _ = select_words(frame, "train", vocabulary)
    plain = make_dataset(train, vocabulary, training=True, augment=False, batch_size=8, cache="none", seed=1)
    augmented = make_dataset(train, vocabulary, training=True, augment=True, batch_size=8, cache="none", seed=1)
    again = make_dataset(train, vocabulary, training=True, augment=True, batch_size=8, cache="none", seed=1)
    (x_plain, y_plain), (x_aug, y_aug), (x_again, _) = (next(iter(d)) for d in (plain, augmented, again))
    np.testing.assert_array_equal(y_plain, y_aug)  # same words in the same order: only pixels change
    assert np.abs(x_plain.numpy() - x_aug.numpy()).mean() > 0.01
    np.testing.assert_array_equal(x_aug, x_again)  # a seed gives the same augmented batch
    data = make_datasets(frame, batch_size=8, cache="none", seed=1, verbose=False)
    validation, _ = select_words(frame, "validation", vocabulary)
    reference = make_dataset(validation, vocabulary, training=False, augment=False, batch_size=8, cache="none")
    np.testing.assert_array_equal(next(iter(data["validation"]))[0], next(iter(reference))[0])


def test_disk_cache_is_written_once_reused_and_gives_the_same_images(frame, artifacts):
    vocabulary = vocabulary_for(frame, verbose=False)
    test, _ = select_words(frame, "test", vocabulary)
    uncached = np.concatenate([x for x, _ in make_dataset(test, vocabulary, training=False, cache="none")])
    cached = make_dataset(test, vocabulary, training=False, cache="disk", name="test")
    first = np.concatenate([x for x, _ in cached])
    files = sorted(p.name for p in (artifacts / "cache").iterdir())
    assert any(name.endswith(".index") for name in files) and not any("lockfile" in name for name in files)
    np.testing.assert_array_equal(first, uncached)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in cached]), first)


def test_a_killed_cold_pass_does_not_block_the_next_run(frame, artifacts):
    vocabulary = vocabulary_for(frame, verbose=False)
    test, _ = select_words(frame, "test", vocabulary)
    prefix = _cache_prefix(test, vocabulary, "test", config.CONTRAST, config.PAD_POSITION)
    prefix.parent.mkdir(parents=True)
    # What a process killed during its first epoch leaves behind: a lock and a temporary shard.
    (prefix.parent / f"{prefix.name}_0.lockfile").write_text("")
    (prefix.parent / f"{prefix.name}_0.data-00000-of-00001.tempstate123").write_text("")
    dataset = make_dataset(test, vocabulary, training=False, cache="disk", name="test")
    assert sum(len(x) for x, _ in dataset) == len(test)
    files = [p.name for p in prefix.parent.iterdir()]
    assert f"{prefix.name}.index" in files and not any("lockfile" in f or "tempstate" in f for f in files)


def test_words_with_unknown_characters_or_too_long_for_ctc_are_dropped_and_counted(frame):
    vocabulary = Vocabulary([c for c in config.IAM_CHARSET if c != "e"])  # a vocabulary without "e"
    test = frame[frame["split"] == "test"].copy()
    test.loc[test.index[0], "text"] = "a" * 17  # 33 CTC steps
    selected, report = select_words(test, "test", vocabulary)
    with_e = int(test.loc[test["image_problem"].isna() & (test["status"] == "ok"), "text"].str.contains("e").sum())
    assert report.dropped[DROP_UNKNOWN] == with_e and report.unknown["e"] >= with_e
    assert report.dropped[DROP_TOO_LONG] == 1
    assert report.kept == len(selected) == report.usable - with_e - 1
    assert not selected["text"].str.contains("e").any()
    assert "dropped" in str(report) and "'e'" in str(report)


def test_vocabulary_comes_from_training_words_and_a_changed_one_is_kept_aside(frame, artifacts, capsys):
    vocabulary = vocabulary_for(frame)
    train_chars = set("".join(frame.loc[frame["split"] == "train", "text"]))
    assert set(vocabulary.characters) <= train_chars
    assert Vocabulary.load(artifacts / config.VOCABULARY_FILE) == vocabulary
    changed = frame.copy()
    changed.loc[changed["split"] == "train", "text"] = "abc"
    vocabulary_for(changed)
    assert Vocabulary.load(artifacts / "vocabulary.previous.txt") == vocabulary
    assert Vocabulary.load(artifacts / config.VOCABULARY_FILE).characters == ["a", "b", "c"]
    assert "moved to" in capsys.readouterr().out


def test_an_image_broken_after_indexing_is_skipped_not_fatal(frame, artifacts, tmp_path):
    vocabulary = vocabulary_for(frame, verbose=False)
    test, _ = select_words(frame, "test", vocabulary)
    test = test.copy()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but cut short")
    test.loc[test.index[3], "path"] = str(broken)
    dataset = make_dataset(test, vocabulary, training=False, cache="none", batch_size=8)
    labels = np.concatenate([y for _, y in dataset])
    assert len(labels) == len(test) - 1
    assert [vocabulary.decode(row) for row in labels] == test["text"].drop(test.index[3]).tolist()


def test_cache_name_changes_with_every_preprocessing_setting(frame, monkeypatch):
    vocabulary = Vocabulary(config.IAM_CHARSET)
    words = frame.head(5)
    name = _cache_prefix(words, vocabulary, "x", "normalize", "left")
    assert _cache_prefix(words, vocabulary, "x", "normalize", "left") == name
    assert _cache_prefix(words, vocabulary, "x", "normalize", "center") != name
    monkeypatch.setattr(config, "MAX_UPSCALE", 3.0)
    assert _cache_prefix(words, vocabulary, "x", "normalize", "left") != name


# --- Issue 12: empty splits ------------------------------------------------------------------
def test_an_empty_split_selects_nothing_without_crashing(frame):
    vocabulary = Vocabulary(config.IAM_CHARSET)
    selected, report = select_words(frame[frame["split"] != "validation"], "validation", vocabulary)
    assert len(selected) == 0 and report.usable == report.kept == 0 and not report.dropped


@pytest.mark.parametrize("emptied", ["validation", "train"])
def test_make_datasets_refuses_an_empty_split_and_saves_nothing(frame, artifacts, emptied):
    without = frame.copy()
    without.loc[without["split"] == emptied, "split"] = None
    with pytest.raises(ValueError, match=f"no usable word .* in the split\\(s\\) {emptied} of this index"):
        make_datasets(without, batch_size=16, verbose=False)
    assert not artifacts.exists() or not any(artifacts.rglob("*"))


def test_no_vocabulary_file_is_saved_without_training_words(frame, artifacts):
    without = frame[frame["split"] != "train"]
    with pytest.raises(ValueError, match="the train split has no usable word"):
        vocabulary_for(without, verbose=False)
    assert not (artifacts / config.VOCABULARY_FILE).exists()
