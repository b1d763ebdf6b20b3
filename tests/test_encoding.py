"""Vocabulary, label ids and padding, and CTC feasibility, on hand-made words."""

from __future__ import annotations

import numpy as np
import pytest

from utils import config
from utils.encoding import (
    BLANK,
    PAD,
    UnknownCharacterError,
    Vocabulary,
    VocabularyFileError,
    ctc_feasible,
    ctc_steps_needed,
    label_lengths,
)

IAM = Vocabulary(config.IAM_CHARSET)


def test_ids_start_at_one_because_zero_is_the_ctc_blank():
    assert BLANK == 0 and PAD == 0
    assert IAM.encode(config.IAM_CHARSET[0]) == [1]
    assert len(IAM) == 78 and IAM.num_classes == 79


def test_round_trip_is_exact_for_every_iam_character():
    for character in config.IAM_CHARSET:
        assert IAM.decode(IAM.encode(character)) == character
    everything = config.IAM_CHARSET + config.IAM_CHARSET[::-1]
    assert IAM.decode(IAM.encode(everything)) == everything
    assert sorted(IAM.encode(config.IAM_CHARSET)) == list(range(1, 79))


def test_decode_skips_blank_padding_and_ctc_decode_filler():
    ids = IAM.encode("Hi") + [PAD, PAD, -1]
    assert IAM.decode(ids) == "Hi"


def test_unknown_characters_raise_with_the_character_and_the_text():
    with pytest.raises(UnknownCharacterError, match="'é' in 'café'"):
        IAM.encode("café")


def test_encode_batch_pads_counts_lengths_and_reports_unknown_characters():
    encoded = IAM.encode_batch(["a", "hello", "naïve", "", "déjà"], width=8)
    assert encoded.ids.shape == (5, 8) and encoded.ids.dtype == np.int32
    assert list(encoded.lengths) == [1, 5, 0, 0, 0]
    assert list(encoded.ids[1]) == IAM.encode("hello") + [PAD] * 3
    assert encoded.unknown == {"ï": 1, "é": 1, "à": 1}
    assert encoded.unknown_rows == [2, 4]
    np.testing.assert_array_equal(label_lengths(encoded.ids), encoded.lengths)


def test_a_label_wider_than_the_padding_is_refused():
    with pytest.raises(ValueError, match="label width 3"):
        IAM.encode_batch(["four"], width=3)


def test_vocabulary_from_training_texts_is_sorted_and_unique():
    vocabulary = Vocabulary.from_texts(["bca", "ab", "c!"])
    assert vocabulary.characters == ["!", "a", "b", "c"]


def test_save_and_load_round_trip_keeps_a_space(tmp_path):
    vocabulary = Vocabulary.from_texts(["a b", "#&"])
    path = vocabulary.save(tmp_path / "vocabulary.txt")
    assert path.read_text(encoding="utf-8").splitlines()[0] == "<blank>"
    assert Vocabulary.load(path) == vocabulary
    assert " " in Vocabulary.load(path)


@pytest.mark.parametrize(
    "content, message",
    [("a\nb\n", "line 1: expected '<blank>'"), ("<blank>\nab\n", "line 2: expected exactly one character"), ("<blank>\na", "no newline")],
)
def test_broken_vocabulary_files_name_the_line(tmp_path, content, message):
    path = tmp_path / "vocabulary.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(VocabularyFileError, match=message):
        Vocabulary.load(path)


def test_repeated_characters_are_refused():
    with pytest.raises(ValueError, match="repeated"):
        Vocabulary(["a", "b", "a"])


def test_a_repeated_character_in_a_file_names_the_file_and_both_lines(tmp_path):
    path = tmp_path / "vocabulary.txt"
    path.write_text("<blank>\na\nb\na\n", encoding="utf-8")
    with pytest.raises(VocabularyFileError, match=f"{path}, line 4: 'a' repeats line 2"):
        Vocabulary.load(path)


# --- CTC feasibility ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, steps",
    [("a", 1), ("committee", 12), ("ll", 3), ("aaa", 5), ("abc", 3), ("", 0), ("Mississippi", 14)],
)
def test_steps_are_length_plus_adjacent_repeats(text, steps):
    assert ctc_steps_needed(text) == steps


def test_feasibility_on_the_31_step_model():
    assert config.TIME_STEPS == 31
    assert ctc_feasible("committee")
    assert ctc_feasible("a" * 16)  # 16 + 15 = 31 steps: just fits
    assert not ctc_feasible("a" * 17)  # 17 + 16 = 33
    assert not ctc_feasible("a" * 31)  # 31 repeated letters: 61 steps
    assert ctc_feasible("counterrevolutionary")  # 20 letters, one repeat
    assert ctc_feasible("abcdefghijklmnopqrstu")  # 21 letters: IAM's longest word length
    assert not ctc_feasible("")  # nothing to learn
    assert ctc_feasible("abcdefghij" * 3 + "k")  # 31 distinct neighbours: exactly 31
    assert not ctc_feasible("abcdefghij" * 3 + "kk")
