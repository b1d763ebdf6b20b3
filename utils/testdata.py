"""The word images of ``test_data/``: written by the test writers, saved the way users' files come.

    python -m utils.testdata [FOLDER] [--seed 42]

Each word is drawn by one of the mini-IAM's *test* fonts (writers the training split never
sees), then saved in a format of its own: 8- and 16-bit gray PNG, gray and colour JPEG, RGB and
RGBA PNG, enlarged and small, on white, tinted or ruled paper, one like a phone photo.
After them come real handwritten words copied unchanged from ``dhsd/`` (DHSD, CC BY 4.0), by
its *test* writers only (see :func:`real_words`), then everyday French words from ``copiste/`` (Copiste d'un
jour, CC BY 4.0), by its test writers only (see :func:`copiste_words`). ``labels.csv`` (file, text, font;
``font`` is ``dhsd-writerN`` or ``copiste-<writer>`` for a real word) holds the truth. The same seed gives the
same files.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from utils import config
from utils.dhsd import dhsd_split, load_dhsd
from utils.iam import load_iam
from utils.encoding import ctc_feasible
from utils.synthetic import make_writers, render_word

LABELS_FILE = "labels.csv"
REAL_WORDS = 20  # real handwritten words from dhsd/'s test writers, after the rendered ones
REAL_MAX_LENGTH = 12  # characters: a real word's text is at most this long (and fits 31 CTC steps)
REAL_FONT_PREFIX = "dhsd-writer"  # the font column of a real word: dhsd-writer27
COPISTE_WORDS = 10  # real everyday French words from copiste/'s test writers, after DHSD's
COPISTE_FONT_PREFIX = "copiste-"  # the font column of a Copiste word: copiste-w00-014 (its writer)
COPISTE_MIN_ZIPF = 4.5  # wordfreq's French frequency from which a word counts as everyday (le: 7.5, maison: 5.2)
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


def real_words(count: int = REAL_WORDS, seed: int = 42, dhsd_folder: Path | str | None = None) -> pd.DataFrame:
    """The DHSD words that ``test_data/`` copies, as a DataFrame in file order: chosen by a seeded rule, not by eye.

    Only words of the DHSD *test* writers whose text has at most ``REAL_MAX_LENGTH`` characters of IAM's
    set (no space) and fits ``config.TIME_STEPS`` CTC steps. Each test writer's words, by file number,
    are shuffled with ``numpy.random.default_rng([seed, 23, writer])``; then the writers, by id, take
    turns giving their next word until ``count`` are chosen.
    """
    test = dhsd_split(load_dhsd(dhsd_folder), "test")
    charset = set(config.IAM_CHARSET)
    eligible = test[test["text"].map(lambda t: len(t) <= REAL_MAX_LENGTH and set(t) <= charset and ctc_feasible(t))]
    queues = []
    for writer in sorted(eligible["writer"].unique(), key=int):
        words = eligible[eligible["writer"] == writer]
        words = words.iloc[np.argsort([int(w.split("_")[-1]) for w in words["word_id"]], kind="stable")]  # 27_2 before 27_10
        order = np.random.default_rng([seed, 23, int(writer)]).permutation(len(words))
        queues.append([words.iloc[i] for i in order])
    chosen = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    if len(chosen) < count:
        raise ValueError(f"the DHSD test writers have only {len(chosen)} words that fit; {count} were asked for")
    return pd.DataFrame(chosen).reset_index(drop=True)


def copy_real_words(folder: Path | str, first_number: int, count: int = REAL_WORDS, seed: int = 42,
                    dhsd_folder: Path | str | None = None) -> list[tuple[str, str, str]]:  # fmt: skip
    """Copy the :func:`real_words` images unchanged into ``folder``, numbered from ``first_number``; return their rows."""
    rows = []
    for number, word in enumerate(real_words(count, seed, dhsd_folder).itertuples(), start=first_number):
        source = Path(word.path)
        name = f"{number:02d}_dhsd_w{word.writer}_{re.sub(r'[^A-Za-z0-9-]', '', word.text)}{source.suffix}"
        shutil.copyfile(source, Path(folder) / name)
        rows.append((name, word.text, f"{REAL_FONT_PREFIX}{word.writer}"))
    return rows


def copiste_words(count: int = COPISTE_WORDS, seed: int = 42, copiste_folder: Path | str | None = None) -> list:
    """The Copiste words that ``test_data/`` copies, in file order: chosen by a seeded rule, not by eye.

    Only ``ok`` words of the shipped subset's *test* writers, in lower-case letters alone, 3 to ``REAL_MAX_LENGTH``
    long, that fit ``config.TIME_STEPS`` CTC steps and are everyday French (wordfreq's frequency at least
    ``COPISTE_MIN_ZIPF``). The writers, by id, are shuffled with ``numpy.random.default_rng([seed, 29])``, each
    one's words with ``default_rng([seed, 29, n])`` (n: the writer's place by id); then the writers take turns
    giving their next word whose text is not chosen yet.
    """
    from wordfreq import zipf_frequency

    dataset = load_iam(copiste_folder or config.COPISTE_DIR, validate=False)
    by_writer: dict[str, list] = {}
    for record in dataset.records:
        text = record.text
        if (record.status == "ok" and dataset.splits.get(record.word_id) == "test" and text.isalpha() and text.islower()
                and 3 <= len(text) <= REAL_MAX_LENGTH and set(text) <= set(config.IAM_CHARSET) and ctc_feasible(text)
                and zipf_frequency(text, "fr") >= COPISTE_MIN_ZIPF):  # fmt: skip
            by_writer.setdefault(record.writer_id, []).append(record)
    queues = []
    writers = sorted(by_writer)
    for number in np.random.default_rng([seed, 29]).permutation(len(writers)):
        words = sorted(by_writer[writers[number]], key=lambda record: record.word_id)
        queues.append([words[i] for i in np.random.default_rng([seed, 29, number]).permutation(len(words))])
    chosen: list = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            while queue and queue[0].text in {record.text for record in chosen}:
                queue.pop(0)
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    if len(chosen) < count:
        raise ValueError(f"the Copiste test writers have only {len(chosen)} everyday words; {count} were asked for")
    return chosen


def copy_copiste_words(folder: Path | str, first_number: int, count: int = COPISTE_WORDS, seed: int = 42,
                       copiste_folder: Path | str | None = None) -> list[tuple[str, str, str]]:  # fmt: skip
    """Copy the :func:`copiste_words` images unchanged into ``folder``, numbered from ``first_number``; return their rows."""
    rows = []
    for number, word in enumerate(copiste_words(count, seed, copiste_folder), start=first_number):
        name = f"{number:02d}_copiste_{word.writer_id}_{word.text}{Path(word.path).suffix}"
        shutil.copyfile(word.path, Path(folder) / name)
        rows.append((name, word.text, f"{COPISTE_FONT_PREFIX}{word.writer_id}"))
    return rows


def make_test_data(folder: Path | str = config.TEST_DATA_DIR, seed: int = 42, real: int = REAL_WORDS,
                   copiste: int = COPISTE_WORDS) -> Path:  # fmt: skip
    """Write the images and ``labels.csv`` into ``folder``, then ``real`` DHSD words and ``copiste`` Copiste words;
    return the labels file.

    Replaces earlier images.
    """
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
        array, extension = save(render_word(text, writer, rng, realism={}), rng)  # each format brings its own realism
        name = f"{index + 1:02d}_{save.__name__.strip('_')}.{extension}"
        image = Image.fromarray(array)
        if extension == "jpg":
            image.save(folder / name, quality=88)
        else:
            image.save(folder / name)
        rows.append((name, text, writer.font))
    if real:
        rows += copy_real_words(folder, len(rows) + 1, real, seed)
    if copiste:
        rows += copy_copiste_words(folder, len(rows) + 1, copiste, seed)
    labels = folder / LABELS_FILE
    with labels.open("w", encoding="utf-8", newline="") as file:
        out = csv.writer(file)
        out.writerow(["file", "text", "font"])
        out.writerows(rows)
    return labels


def is_real(font: str) -> bool:
    """True when a ``font`` value of labels.csv names a real writer (DHSD's or Copiste's), not a rendered font."""
    return font.startswith((REAL_FONT_PREFIX, COPISTE_FONT_PREFIX))


def read_labels(folder: Path | str = config.TEST_DATA_DIR, real: bool | None = None) -> list[tuple[Path, str]]:
    """(image path, true text) of the rows of ``labels.csv``; a row naming a missing file raises, with its line.

    ``real``: None keeps every row, True only the real handwritten words (DHSD's and Copiste's), False only the
    rendered ones.
    """
    folder = Path(folder)
    labels = folder / LABELS_FILE
    pairs = []
    with labels.open(encoding="utf-8", newline="") as file:
        for line, row in enumerate(csv.DictReader(file), start=2):
            if real is not None and is_real(row.get("font") or "") != real:
                continue
            path = folder / row["file"]
            if not path.is_file():
                raise FileNotFoundError(f"{labels}, line {line}: {row['file']} does not exist")
            pairs.append((path, row["text"]))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.testdata", description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=config.TEST_DATA_DIR)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--real", type=int, default=REAL_WORDS, help="real DHSD words to copy (default %(default)s)")
    parser.add_argument("--copiste", type=int, default=COPISTE_WORDS, help="real Copiste words to copy (default %(default)s)")
    args = parser.parse_args(argv)
    labels = make_test_data(args.folder, args.seed, args.real, args.copiste)
    print(f"{len(WORDS)} rendered, {args.real} DHSD and {args.copiste} Copiste images and {labels.name} written to {args.folder}")
    return 0


if __name__ == "__main__":
    from utils import cli

    cli.run(main)
