"""A line's transcription (CREMMA's conventions, as in Copiste d'un jour) into the words a word reader can learn.

IAM's 78 characters are the model's alphabet, so each written word gets IAM's spelling or is left out, with the
reason counted:

- accents are dropped, as DHSD's umlauts were (é -> e, à -> a, ç -> c, É -> E); typographic quotes and apostrophes
  become IAM's (« » “ ” -> ", ’ -> '), ligatures are written out (œ -> oe);
- left out, but kept as a placeholder because their ink is on the line: ``>crossed out<`` words and ``><``
  (unreadable), words with ``-`` standing for a character outside French (``Ind-stria``), ``_``, ``{}``, ``[]``, and
  words with any other character outside IAM's;
- French sets ``:``, ``;``, ``?``, ``!`` and ``« »`` apart with a space, which a hand rarely leaves: a token of
  punctuation alone joins its neighbour (an opening quote or bracket the next word, the rest the previous one), so
  ``2011 .`` is the one written word ``2011.``;
- a page's id line (``wikitexte_0014``, its page number ``2``) is no handwriting of the text: the whole line goes.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from utils import config

IAM_CHARACTERS = frozenset(config.IAM_CHARSET)
SPELLED_OUT = {"«": '"', "»": '"', "“": '"', "”": '"', "„": '"', "’": "'", "‘": "'", "œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE"}
OPENING = frozenset('«“„(["\'')  # a lone opening mark joins the next word; any other lone punctuation the previous one
KNOWN_WORD_ZIPF = 1.0  # wordfreq's frequency from which a part of a hyphenated word counts as a French word


@dataclass(frozen=True)
class Word:
    """One written word of a line: ``written`` as transcribed, ``text`` its IAM spelling or None, ``reason`` why not."""

    written: str
    text: str | None
    reason: str | None = None
    accents: bool = False  # IAM's spelling needed an accent dropped


def without_accents(text: str) -> str:
    """``text`` with accents dropped and typographic marks spelled as IAM's (é -> e, « -> ", œ -> oe)."""
    text = "".join(SPELLED_OUT.get(character, character) for character in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _known_french(part: str) -> bool:
    from wordfreq import zipf_frequency

    return zipf_frequency(part.lower(), "fr") >= KNOWN_WORD_ZIPF


def _replacement_hyphen(word: str, last: bool) -> bool:
    """Whether a ``-`` in ``word`` stands for a character outside French (CREMMA's convention) rather than a hyphen.

    A hyphen joins letters (``nord-sud``, ``Etats-Unis``) or ends the line's last word (``Nouvelle-``, hyphenated at the
    line's end); each part it joins is a French word or a name (a capital, then small letters). Anything else
    (``-displaystyle``, ``A--j``, ``Ind-stria``, ``Wi-niew-Kolonia``) is a replacement."""
    core = word.strip("\"'().,;:!?").split("'")[-1]  # d'Auzances-Bellegarde: the name after the apostrophe
    if "-" not in core:
        return False
    if last and core.endswith("-") and core.count("-") == 1 and core[:-1].isalpha():
        return False
    parts = core.split("-")
    if any(not part.isalpha() for part in parts):
        return True
    return not all(_known_french(part) or (part[0].isupper() and part[1:].islower()) for part in parts)


def _reason(word: str, last: bool) -> str | None:
    """Why ``word`` (as transcribed) cannot be learned, or None."""
    if word == "><" or ("><" in word):
        return "unreadable (><)"
    if ">" in word or "<" in word:
        return "crossed out (>...<)"
    if "_" in word:
        return "underscore (_)"
    if "{" in word or "}" in word:
        return "braces ({})"
    if "[" in word or "]" in word:
        return "brackets ([])"
    if _replacement_hyphen(word, last):
        return "replaced character (-)"
    return None


def _punctuation_only(token: str) -> bool:
    return all(unicodedata.category(character).startswith("P") for character in token)


def join_punctuation(tokens: list[str]) -> list[str]:
    """Tokens of punctuation alone joined to their word: an opening mark to the next, the rest to the previous."""
    joined: list[str] = []
    pending = ""
    for token in tokens:
        if _punctuation_only(token) and not any(mark in token for mark in "<>[]{}"):
            if all(character in OPENING for character in token):
                pending += token
                continue
            if joined:
                joined[-1] += token
                continue
        joined.append(pending + token)
        pending = ""
    if pending:
        if joined:
            joined[-1] += pending
        else:
            joined.append(pending)
    return joined


def _squeezed(text: str) -> str:
    return re.sub(r"[-_\s]", "", text.lower())


def is_page_id(text: str, page: str) -> bool:
    """Whether a line's text is its page's id (the copy's name, ``-`` or ``_`` either way) or a page number."""
    copy = re.sub(r"^(imp|oldbatch)_", "", re.sub(r"_\d$", "", page))  # imp_wikitexte_0014_2 -> wikitexte_0014
    return _squeezed(text) in (_squeezed(page), _squeezed(copy)) or bool(re.fullmatch(r"\(?\d{1,2}\)?", text.strip()))


def line_words(text: str) -> list[Word]:
    """The written words of a line's transcription, each with its IAM spelling or the reason it has none."""
    tokens = join_punctuation(text.split())
    words = []
    for number, written in enumerate(tokens):
        reason = _reason(written, last=number == len(tokens) - 1)
        if reason:
            words.append(Word(written, None, reason))
            continue
        spelled = without_accents(written)
        outside = sorted(set(spelled) - IAM_CHARACTERS)
        if outside:
            words.append(Word(written, None, f"other character ({''.join(outside)})"))
            continue
        accents = spelled != "".join(SPELLED_OUT.get(character, character) for character in written)
        words.append(Word(written, spelled, None, accents))
    return words


def count_reasons(lines: list[list[Word]]) -> Counter:
    """How many words each reason left out, and how many words dropping accents kept (``"accents dropped"``)."""
    counts: Counter = Counter()
    for words in lines:
        for word in words:
            counts[word.reason or ("accents dropped" if word.accents else "kept as written")] += 1
    return counts
