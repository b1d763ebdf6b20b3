"""CTC decoding of hand-made logits, the lexicon step, and error rates on worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from utils import config
from utils.decoding import Lexicon, decode, decode_ids, lexicon_max_distance
from utils.encoding import Vocabulary
from utils.metrics import character_confusions, character_error_rate, evaluate_texts, word_accuracy, word_error_rate

VOCABULARY = Vocabulary("abc")  # ids: blank 0, a 1, b 2, c 3


def logits_for(path: list[int], classes: int = 4, sure: float = 8.0) -> np.ndarray:
    """Logits [1, T, classes] whose most likely class at step t is path[t]."""
    logits = np.zeros((1, len(path), classes), np.float32)
    logits[0, np.arange(len(path)), path] = sure
    return logits


def test_greedy_merges_repeats_then_drops_blanks():
    # a a _ a b b _ _ c  ->  merge: a _ a b _ c  ->  drop blanks: a a b c
    logits = logits_for([1, 1, 0, 1, 2, 2, 0, 0, 3])
    assert decode_ids(logits) == [[1, 1, 2, 3]]
    assert decode(logits, VOCABULARY) == ["aabc"]


def test_a_doubled_letter_needs_a_blank_between():
    assert decode(logits_for([2, 2, 2, 2]), VOCABULARY) == ["b"]
    assert decode(logits_for([2, 0, 2, 0]), VOCABULARY) == ["bb"]
    assert decode(logits_for([0, 0, 0]), VOCABULARY) == [""]


def test_beam_search_sums_the_paths_greedy_misses():
    # Two steps, P(blank) = 0.6 and P(a) = 0.4 at each. Greedy takes blank, blank: "".
    # But P("a") = P(aa) + P(a_) + P(_a) = 0.16 + 0.24 + 0.24 = 0.64 > P("") = 0.36.
    logits = np.log(np.array([[[0.6, 0.4, 1e-6, 1e-6]] * 2], np.float32))
    assert decode(logits, VOCABULARY) == [""]
    assert decode(logits, VOCABULARY, beam_width=5) == ["a"]


def test_beam_search_agrees_with_greedy_on_confident_logits_and_handles_a_batch():
    logits = np.concatenate([logits_for([1, 0, 1, 2, 0]), logits_for([3, 3, 0, 0, 2])])
    assert decode(logits, VOCABULARY, beam_width=4) == decode(logits, VOCABULARY) == ["aab", "cb"]


def test_decode_refuses_logits_of_the_wrong_rank():
    with pytest.raises(ValueError, match="batch, steps, classes"):
        decode_ids(np.zeros((5, 4)))


def test_lexicon_snaps_near_misses_and_leaves_the_rest():
    lexicon = Lexicon(["the", "they", "house", "horse", "garden"])
    assert lexicon.correct("hause") == "house"  # one edit in five letters
    assert lexicon.correct("garden") == "garden"  # known words stay
    assert lexicon.correct("xyzzy") == "xyzzy"  # nothing near enough: kept as read
    assert lexicon.correct("hovse") == "house"  # house and horse are both one edit away: the first listed wins
    assert lexicon.correct("") == ""
    assert lexicon.correct_all(["tha", "gardne"]) == ["the", "gardne"]  # a swap is two edits, more than 6 // 4 = 1
    assert lexicon_max_distance("ab") == 1 and lexicon_max_distance("abcdefgh") == 2
    with pytest.raises(ValueError, match="at least one word"):
        Lexicon([])


def test_character_error_rate_counts_edits_over_all_reference_characters():
    assert character_error_rate(["kitten"], ["sitting"]) == pytest.approx(3 / 6)  # k->s, e->i, +g
    assert character_error_rate(["ab", "cdef"], ["ab", "cxef"]) == pytest.approx(1 / 6)  # a total, not a mean of rates
    assert character_error_rate(["word"], [""]) == 1.0
    assert character_error_rate(["a"], ["abc"]) == 2.0  # insertions can exceed 100%


def test_word_error_rate_and_accuracy():
    assert word_error_rate(["the cat sat"], ["the cat sit"]) == pytest.approx(1 / 3)
    assert word_error_rate(["House", "of", "Lords"], ["house", "of", "Lords"]) == pytest.approx(1 / 3)
    assert word_error_rate(["one"], ["one two"]) == 1.0  # an inserted word
    assert word_accuracy(["House", "of"], ["house", "of"]) == 0.5
    assert word_accuracy(["House", "of"], ["house", "of"], ignore_case=True) == 1.0
    scores = evaluate_texts(["House", "of"], ["house", "ox"])
    assert scores == pytest.approx({"cer": 2 / 7, "wer": 1.0, "word_accuracy": 0.0, "word_accuracy_nocase": 0.5})


def test_metrics_refuse_what_they_cannot_measure():
    with pytest.raises(ValueError, match="2 references but 1 predictions"):
        character_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no texts"):
        word_error_rate([], [])
    with pytest.raises(ValueError, match="no characters"):
        character_error_rate([""], ["a"])


def test_character_confusions_count_substitutions_deletions_and_insertions():
    confusions = character_confusions(["cat", "dog", "in"], ["cut", "do", "inn"])
    assert confusions == {("a", "u"): 1, ("g", ""): 1, ("", "n"): 1}


def test_the_lexicon_threshold_set_after_import_is_the_one_used(monkeypatch):
    # Chapter 04's exercise changes config.LEXICON_MAX_EDIT_FRACTION on a lexicon it already built.
    lexicon = Lexicon(["people"])
    assert lexicon.correct("pxople") == "people"  # one edit in 6 characters: within 6 // 4 = 1
    assert lexicon.correct("pxaple") == "pxaple"  # two edits: too many at a quarter
    monkeypatch.setattr(config, "LEXICON_MAX_EDIT_FRACTION", 0.1)
    assert lexicon_max_distance("pxaple") == 1  # at least one edit is always allowed
    monkeypatch.setattr(config, "LEXICON_MAX_EDIT_FRACTION", 0.5)
    assert lexicon.correct("pxaple") == "people"  # 6 // 2 = 3 edits allowed now
    assert Lexicon(["people"], fraction=0.25).correct("pxaple") == "pxaple"  # an explicit fraction stays fixed
