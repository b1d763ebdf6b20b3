"""Error rates on decoded text: CER, WER, word accuracy, and which characters get confused.

Edit distances come from RapidFuzz (Levenshtein, in C). Rates are totals over the whole set
(all edits / all reference characters), as the IAM literature reports them, not a mean of
per-word rates, so a long word weighs more than a short one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein


def _check(references: Sequence[str], predictions: Sequence[str]) -> None:
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    if not references:
        raise ValueError("no texts to compare")


def character_error_rate(references: Sequence[str], predictions: Sequence[str]) -> float:
    """Character edits (insertions, deletions, substitutions) / reference characters."""
    _check(references, predictions)
    characters = sum(len(r) for r in references)
    if characters == 0:
        raise ValueError("the references have no characters: CER is undefined")
    return sum(Levenshtein.distance(r, p) for r, p in zip(references, predictions)) / characters


def word_error_rate(references: Sequence[str], predictions: Sequence[str]) -> float:
    """Word edits / reference words, words split on whitespace (an IAM word image holds one word)."""
    _check(references, predictions)
    words = sum(len(r.split()) for r in references)
    if words == 0:
        raise ValueError("the references have no words: WER is undefined")
    return sum(Levenshtein.distance(r.split(), p.split()) for r, p in zip(references, predictions)) / words


def word_accuracy(references: Sequence[str], predictions: Sequence[str], ignore_case: bool = False) -> float:
    """Fraction of texts read exactly (optionally ignoring upper/lower case)."""
    _check(references, predictions)
    fold = str.casefold if ignore_case else str
    return sum(fold(r) == fold(p) for r, p in zip(references, predictions)) / len(references)


def evaluate_texts(references: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """CER, WER and word accuracy (case-sensitive and not) of one set of predictions."""
    return {
        "cer": character_error_rate(references, predictions),
        "wer": word_error_rate(references, predictions),
        "word_accuracy": word_accuracy(references, predictions),
        "word_accuracy_nocase": word_accuracy(references, predictions, ignore_case=True),
    }


def character_confusions(references: Sequence[str], predictions: Sequence[str]) -> Counter:
    """(true character, predicted character) -> count of substitutions, deletions ('' predicted) and insertions ('' true)."""
    _check(references, predictions)
    counts: Counter = Counter()
    for reference, prediction in zip(references, predictions):
        for op in Levenshtein.editops(reference, prediction):
            if op.tag == "replace":
                counts[reference[op.src_pos], prediction[op.dest_pos]] += 1
            elif op.tag == "delete":
                counts[reference[op.src_pos], ""] += 1
            else:
                counts["", prediction[op.dest_pos]] += 1
    return counts
