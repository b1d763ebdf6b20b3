"""Characters <-> integer ids for CTC, and which words CTC can fit in the model's 31 time steps.

Keras 3's CTC reserves id 0 for the blank (``mask_index=0``), so characters are numbered
from 1. Labels are padded with :data:`PAD` (also 0); the loss reads each label's true length,
so padding never counts as a character.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from utils import config

BLANK = 0  # the CTC blank: "no new character at this time step"
PAD = 0  # label padding; ignored because the loss gets the true label lengths
BLANK_TOKEN = "<blank>"  # how the blank is written on line 0 of the vocabulary file


class UnknownCharacterError(ValueError):
    """A text holds a character that the vocabulary does not have."""


class VocabularyFileError(ValueError):
    """A vocabulary file is not one token per line with the blank on line 0."""


@dataclass
class EncodedTexts:
    """Texts as a padded id matrix, their true lengths, and what could not be encoded."""

    ids: np.ndarray  # int32 [N, width], PAD after each label
    lengths: np.ndarray  # int32 [N]: characters per label, what the CTC loss needs
    unknown: Counter = field(default_factory=Counter)  # character -> occurrences not in the vocabulary
    unknown_rows: list[int] = field(default_factory=list)  # rows whose text had one: their ids are not valid


class Vocabulary:
    """The ordered characters a model can write; id k is ``characters[k - 1]``, id 0 the blank."""

    def __init__(self, characters: Iterable[str]):
        characters = list(characters)
        if any(len(c) != 1 for c in characters):
            raise ValueError(f"every vocabulary entry must be one character: {[c for c in characters if len(c) != 1]}")
        if len(set(characters)) != len(characters):
            raise ValueError(f"repeated characters: {sorted(c for c, n in Counter(characters).items() if n > 1)}")
        self.characters = characters
        self._ids = {c: i + 1 for i, c in enumerate(characters)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "Vocabulary":
        """Every character that occurs in ``texts``, in code-point order (build it from training texts only)."""
        return cls(sorted(set("".join(texts))))

    def __len__(self) -> int:
        return len(self.characters)

    def __contains__(self, character: str) -> bool:
        return character in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.characters == self.characters

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} characters: {''.join(self.characters)!r})"

    @property
    def num_classes(self) -> int:
        """Outputs per time step of a model over this vocabulary: the characters and the blank."""
        return len(self.characters) + 1

    def encode(self, text: str) -> list[int]:
        """Text -> ids (from 1). A character outside the vocabulary raises, naming it and the text."""
        try:
            return [self._ids[c] for c in text]
        except KeyError as error:
            raise UnknownCharacterError(f"{error.args[0]!r} in {text!r} is not in the vocabulary") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text, skipping the blank/padding (0) and anything negative (ctc_decode's filler)."""
        return "".join(self.characters[i - 1] for i in (int(i) for i in ids) if 0 < i <= len(self.characters))

    def encode_batch(self, texts: Sequence[str], width: int = config.LABEL_WIDTH) -> EncodedTexts:
        """Encode many texts into a [N, width] matrix padded with PAD; count unknown characters."""
        ids = np.full((len(texts), width), PAD, dtype=np.int32)
        lengths = np.zeros(len(texts), dtype=np.int32)
        unknown: Counter = Counter()
        unknown_rows = []
        for row, text in enumerate(texts):
            missing = [c for c in text if c not in self._ids]
            if missing:
                unknown.update(missing)
                unknown_rows.append(row)
                continue
            if len(text) > width:
                raise ValueError(f"text {row} ({text!r}) has {len(text)} characters, more than the label width {width}")
            ids[row, : len(text)] = self.encode(text)
            lengths[row] = len(text)
        return EncodedTexts(ids, lengths, unknown, unknown_rows)

    def to_text(self) -> str:
        """One token per line: line 0 is the blank, line k the character with id k (the vocabulary file's text)."""
        return "\n".join([BLANK_TOKEN, *self.characters]) + "\n"

    def save(self, path: Path | str) -> Path:
        """Write :meth:`to_text` to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_text(), encoding="utf-8", newline="\n")
        return path

    @classmethod
    def from_text(cls, text: str, where: str) -> "Vocabulary":
        """Parse :meth:`to_text`'s format; errors name ``where`` (a file) and the line."""
        if not text.endswith("\n"):
            raise VocabularyFileError(f"{where}: the last line has no newline; was the file cut short?")
        lines = text[:-1].split("\n")  # not splitlines(): a space is a character, and must survive
        if lines[0] != BLANK_TOKEN:
            raise VocabularyFileError(f"{where}, line 1: expected {BLANK_TOKEN!r} (id 0, the CTC blank), found {lines[0]!r}")
        first: dict[str, int] = {}
        for number, line in enumerate(lines[1:], start=2):
            if len(line) != 1:
                raise VocabularyFileError(f"{where}, line {number}: expected exactly one character, found {line!r}")
            if line in first:
                raise VocabularyFileError(f"{where}, line {number}: {line!r} repeats line {first[line]}")
            first[line] = number
        return cls(lines[1:])

    @classmethod
    def load(cls, path: Path | str) -> "Vocabulary":
        """Read a file written by :meth:`save`; errors name the file and the line."""
        path = Path(path)
        return cls.from_text(path.read_text(encoding="utf-8"), str(path))


# --- CTC feasibility -------------------------------------------------------------------
def ctc_steps_needed(text: str) -> int:
    """Time steps CTC needs to write ``text``: one per character, plus a blank between doubled letters.

    "committee" needs 9 + 3 = 12 (mm, tt, ee): without a blank between them, two steps of
    "m" collapse into one.
    """
    return len(text) + sum(a == b for a, b in zip(text, text[1:]))


def ctc_feasible(text: str, time_steps: int = config.TIME_STEPS) -> bool:
    """True when CTC can fit ``text`` in ``time_steps`` (and it is not empty)."""
    return 0 < ctc_steps_needed(text) <= time_steps


def label_lengths(labels: np.ndarray) -> np.ndarray:
    """True lengths of labels padded with PAD: the count of non-padding ids per row."""
    return np.count_nonzero(np.asarray(labels) != PAD, axis=-1).astype(np.int32)
