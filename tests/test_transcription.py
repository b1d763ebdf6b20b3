"""utils.transcription: CREMMA-style line transcriptions into IAM's spelling, each left-out word with its reason."""

from __future__ import annotations

import pytest

from utils import config
from utils.transcription import (
    count_reasons,
    is_page_id,
    join_punctuation,
    line_words,
    without_accents,
)


def texts(line: str) -> list[str | None]:
    return [word.text for word in line_words(line)]


def test_accents_are_dropped_and_typographic_marks_spelled_as_iam_s():
    assert without_accents("Éléonore à Montréal, ça œuvre « déjà » l’été") == "Eleonore a Montreal, ca oeuvre \" deja \" l'ete"
    assert set(without_accents("ÀÂÄÇÈÉÊËÎÏÔÖÙÛÜàâäçèéêëîïôöùûüÿñ")) <= set(config.IAM_CHARSET)


def test_punctuation_alone_joins_its_word():
    assert join_punctuation(["population", "de", "527", "habitants", "en", "2011", "."]) == ["population", "de", "527", "habitants", "en", "2011."]
    assert join_punctuation(["dit", "«", "Concert", "»", ":", "oui", "?"]) == ["dit", "«Concert»:", "oui?"]
    assert join_punctuation(["(", "voir", ")"]) == ["(voir)"]
    assert join_punctuation(["«"]) == ["«"]  # nothing to join: kept
    assert join_punctuation([">", "<"]) == [">", "<"]  # markup is never punctuation


def test_words_get_iam_s_spelling_and_accents_are_counted():
    words = line_words("La région d’Aquitaine . Nouvelle-")
    assert [word.text for word in words] == ["La", "region", "d'Aquitaine.", "Nouvelle-"]  # hyphenated at the line's end
    assert [word.accents for word in words] == [False, True, False, False]  # an apostrophe is no accent
    assert all(set(word.text) <= set(config.IAM_CHARSET) for word in words)


@pytest.mark.parametrize(
    "line, position, reason",
    [
        ("mort le 2 >mai< mai 2014", 3, "crossed out (>...<)"),
        ("Émile Sari>e<, né le 27", 1, "crossed out (>...<)"),
        ("aussi dit Efrem ><", 3, "unreadable (><)"),
        ("Volkswagen Ind-stria e", 1, "replaced character (-)"),
        ("formule f(A) -displaystyle x", 2, "replaced character (-)"),
        ("Wi-niew-Kolonia est", 0, "replaced character (-)"),
        ("la Nouvelle- Aquitaine", 1, "replaced character (-)"),  # a trailing hyphen mid-line: not a line-end hyphenation
        ("A_{i} est", 0, "underscore (_)"),
        ("d{-displaystyle", 0, "braces ({})"),
        ("[Quand], elle", 0, "brackets ([])"),
        ("soit 51,6% des voix", 1, "other character (%)"),
        ("coûte 3 €.", 2, "other character (€)"),
    ],
)
def test_words_that_cannot_be_learned_are_kept_as_placeholders_with_their_reason(line, position, reason):
    words = line_words(line)
    assert words[position].text is None and words[position].reason == reason
    assert sum(word.text is None for word in words) == 1  # the others are kept


def test_real_hyphens_are_kept():
    assert texts("nord-sud, aux États-Unis, franco-marocain Auzances-Bellegarde") == [
        "nord-sud,", "aux", "Etats-Unis,", "franco-marocain", "Auzances-Bellegarde"]  # fmt: skip


def test_page_id_lines_are_recognised():
    assert is_page_id("wikitexte-0014", "wikitexte_0014_2")
    assert is_page_id("imp_wikitexte_0022", "imp_wikitexte_0022")
    assert is_page_id("2", "wikitexte_0014_2") and is_page_id("(3)", "x")
    assert not is_page_id("Rome en 1995.", "wikitexte_0152_2") and not is_page_id("1995", "x")


def test_reasons_are_counted():
    counts = count_reasons([line_words("Le >vieux< été à Paris"), line_words("51,6% ><")])
    assert counts == {"kept as written": 2, "accents dropped": 2, "crossed out (>...<)": 1, "other character (%)": 1, "unreadable (><)": 1}
