"""The word images of ``test_data/``: written by the test writers, saved the way users' files come.

    python -m utils.testdata [FOLDER] [--seed 42]

Each word is drawn by one of the mini-IAM's *test* fonts (writers the training split never
sees), then saved in a format of its own: 8- and 16-bit gray PNG, gray and colour JPEG, RGB and
RGBA PNG, enlarged and small, on white, tinted or ruled paper, one like a phone photo.
``labels.csv`` (file, text) holds the truth. The same seed gives the same files.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from utils import config
from utils.synthetic import make_writers, render_word

LABELS_FILE = "labels.csv"
# Chosen before any model read them: everyday words of several lengths, capitals, a digit
# group, an apostrophe, one in capitals, as a learner's own notes would have.
WORDS = (
    "the", "House", "letter", "morning", "garden", "people", "water", "London",
    "through", "small", "said", "thought", "young", "night", "1962", "don't", "there", "AND",
)  # fmt: skip

INK_BLUE, INK_BLACK = np.array([30, 45, 140.0]), np.array([25, 25, 30.0])
CREAM, GRAPH_BLUE = np.array([246, 238, 208.0]), np.array([170, 190, 225.0])


def _ink(word: np.ndarray) -> np.ndarray:
    """Ink coverage in [0, 1] of a rendered gray word (0 = paper)."""
    word = word.astype(np.float32)
    paper = np.median(word) - 15
    return np.clip((paper - word) / max(paper - word.min(), 1.0), 0, 1)[..., None]


def _on_paper(word: np.ndarray, paper: np.ndarray, ink: np.ndarray, margin: int = 0) -> np.ndarray:
    coverage = _ink(word)
    page = np.ones((word.shape[0] + 2 * margin, word.shape[1] + 2 * margin, 3)) * paper
    inside = page[margin : margin + word.shape[0], margin : margin + word.shape[1]]
    page[margin : margin + word.shape[0], margin : margin + word.shape[1]] = inside * (1 - coverage) + ink * coverage
    return page


def _gray_png(word, rng):
    return word, "png"


def _gray16_png(word, rng):
    return word.astype(np.uint16) * 257, "png"


def _gray_jpeg(word, rng):
    return word, "jpg"


def _blue_on_cream_jpeg(word, rng):
    return np.clip(_on_paper(word, CREAM, INK_BLUE), 0, 255).astype(np.uint8), "jpg"


def _ruled_paper_png(word, rng):
    coverage = _ink(word)
    page = np.ones((*word.shape, 3)) * [252, 252, 248]
    page[int(0.85 * word.shape[0]) :: 28] = GRAPH_BLUE  # a ruled line under the word, like a notebook
    page = page * (1 - coverage) + INK_BLACK * coverage
    return np.clip(page, 0, 255).astype(np.uint8), "png"


def _transparent_png(word, rng):
    coverage = _ink(word)[..., 0]
    rgba = np.dstack([np.broadcast_to(INK_BLUE, (*word.shape, 3)), coverage * 255])
    return rgba.astype(np.uint8), "png"


def _enlarged_png(word, rng):
    return cv2.resize(word, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC), "png"


def _small_png(word, rng):
    return cv2.resize(word, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA), "png"


def _photo_jpeg(word, rng):
    """A phone photo: cream paper with a margin, a shadow towards the lower right, sensor noise."""
    page = _on_paper(word, CREAM, INK_BLUE, margin=10)
    rows, cols = np.mgrid[0 : page.shape[0], 0 : page.shape[1]]
    page *= 1 - 0.25 * (cols / cols.max() * (0.4 + 0.6 * rows / rows.max()))[..., None]
    page += rng.normal(0, 3, page.shape)
    return np.clip(page, 0, 255).astype(np.uint8), "jpg"


FORMATS: tuple[Callable, ...] = (
    _gray_png, _blue_on_cream_jpeg, _ruled_paper_png, _gray16_png, _transparent_png, _gray_jpeg,
    _enlarged_png, _photo_jpeg, _small_png,
)  # fmt: skip


def make_test_data(folder: Path | str = config.TEST_DATA_DIR, seed: int = 42) -> Path:
    """Write the images and ``labels.csv`` into ``folder``; return the labels file. Replaces earlier images."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    writers = [style for style in make_writers(seed) if style.split == "test"]
    if not writers:
        raise ValueError("no test writers: config.SYNTHETIC_TEST_FONTS names no font in utils/fonts/")
    rows = []
    for index, text in enumerate(WORDS):
        rng = np.random.default_rng([seed, 11, index])
        writer = writers[index % len(writers)]
        save = FORMATS[index % len(FORMATS)]
        array, extension = save(render_word(text, writer, rng), rng)
        name = f"{index + 1:02d}_{save.__name__.strip('_')}.{extension}"
        image = Image.fromarray(array)
        if extension == "jpg":
            image.save(folder / name, quality=88)
        else:
            image.save(folder / name)
        rows.append((name, text, writer.font))
    labels = folder / LABELS_FILE
    with labels.open("w", encoding="utf-8", newline="") as file:
        out = csv.writer(file)
        out.writerow(["file", "text", "font"])
        out.writerows(rows)
    return labels


def read_labels(folder: Path | str = config.TEST_DATA_DIR) -> list[tuple[Path, str]]:
    """(image path, true text) of every row of ``labels.csv``; a row naming a missing file raises, with its line."""
    folder = Path(folder)
    labels = folder / LABELS_FILE
    pairs = []
    with labels.open(encoding="utf-8", newline="") as file:
        for line, row in enumerate(csv.DictReader(file), start=2):
            path = folder / row["file"]
            if not path.is_file():
                raise FileNotFoundError(f"{labels}, line {line}: {row['file']} does not exist")
            pairs.append((path, row["text"]))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.testdata", description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=config.TEST_DATA_DIR)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    labels = make_test_data(args.folder, args.seed)
    print(f"{len(WORDS)} images and {labels.name} written to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
