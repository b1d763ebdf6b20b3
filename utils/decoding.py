"""CTC decoding: per-step logits -> text, greedily or by beam search, then optionally a lexicon.

Greedy takes the most likely class at each of the 31 steps, merges repeats and drops blanks.
Beam search keeps the ``beam_width`` most likely prefixes instead, summing over the paths that
give the same text. The lexicon step replaces a prediction by the nearest known word when the
edit is small (``config.LEXICON_MAX_EDIT_FRACTION``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from utils import config
from utils.encoding import BLANK, Vocabulary


def decode_ids(logits: np.ndarray, beam_width: int | None = None) -> list[list[int]]:
    """Label ids of each sequence of ``logits`` [B, T, classes]; ``beam_width`` None or 1 means greedy."""
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 3:
        raise ValueError(f"expected logits of shape [batch, steps, classes], got {logits.shape}")
    lengths = np.full(len(logits), logits.shape[1], dtype=np.int32)
    if beam_width is None or beam_width <= 1:
        decoded, _ = keras.ops.ctc_decode(logits, lengths, strategy="greedy", mask_index=BLANK)
    else:
        decoded, _ = keras.ops.ctc_decode(
            logits, lengths, strategy="beam_search", beam_width=beam_width, top_paths=1, mask_index=BLANK
        )
    ids = keras.ops.convert_to_numpy(decoded)[0]  # the best path; -1 pads the end
    return [[int(i) for i in row if i > 0] for row in ids]


def decode(logits: np.ndarray, vocabulary: Vocabulary, beam_width: int | None = None) -> list[str]:
    """Texts read from ``logits`` [B, T, classes] (greedy, or beam search of ``beam_width``)."""
    return [vocabulary.decode(ids) for ids in decode_ids(logits, beam_width)]


def lexicon_max_distance(text: str, fraction: float | None = None) -> int:
    """Most edits the lexicon step may make to ``text``: a fraction of its length, at least one.

    ``fraction`` None reads ``config.LEXICON_MAX_EDIT_FRACTION`` now, so a notebook can change it.
    """
    fraction = config.LEXICON_MAX_EDIT_FRACTION if fraction is None else fraction
    return max(1, int(len(text) * fraction))


class Lexicon:
    """Known words; :meth:`correct` snaps a prediction to the nearest one when it is close enough.

    Order the words by frequency, most frequent first: among equally near words the first wins.
    ``fraction`` None follows ``config.LEXICON_MAX_EDIT_FRACTION`` at each correction.
    """

    def __init__(self, words: Iterable[str], fraction: float | None = None):
        self.words = list(dict.fromkeys(w for w in words if w))  # unique, order kept
        self._known = set(self.words)
        self.fraction = fraction
        if not self.words:
            raise ValueError("a lexicon needs at least one word")

    def __len__(self) -> int:
        return len(self.words)

    def correct(self, text: str) -> str:
        """``text`` itself when known or when no word is near enough, else the nearest word."""
        if text in self._known or not text:
            return text
        limit = lexicon_max_distance(text, self.fraction)
        match = process.extractOne(text, self.words, scorer=Levenshtein.distance, score_cutoff=limit)
        return text if match is None else match[0]

    def correct_all(self, texts: Sequence[str]) -> list[str]:
        return [self.correct(text) for text in texts]
