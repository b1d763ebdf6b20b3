"""Load the real handwriting shipped in ``dhsd/``: a subset of DHSD (CC BY 4.0), split by writer.

DHSD (Deutscher Handschriften-Datensatz, Riaz et al., DFKI) holds handwritten German place names;
``dhsd/`` keeps the 1,710 words of 35 writers whose text fits IAM's characters once umlauts lose their
dots (credit and changes in ``dhsd/README.md``). Its layout is not IAM's: ``words.csv`` lists
``file_name, text, iam_text, writer_id``, and ``splits/{finetune,validation,test}.txt`` name the writers
of each split, one id per line. :func:`load_dhsd` returns one row per word, with the columns the
tf.data pipeline of :mod:`utils.pipeline` reads (``path``, ``text``, ``gray_level``, ``status``, ``split``).

Command line::

    python -m utils.dhsd            # words and writers per split
    python -m utils.dhsd split      # rewrite dhsd/splits/ with make_writer_split (seed 42)
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from utils import cli, config
from utils.iam import inspect_image

WORDS_FILE = "words.csv"
SPLITS_FOLDER = "splits"
CSV_COLUMNS = ("file_name", "text", "iam_text", "writer_id")
FRAME_COLUMNS = ("word_id", "path", "text", "published_text", "writer", "split", "gray_level", "status", "image_problem")
IAM_TEXT_CHARACTERS = set(config.IAM_CHARSET) | {" "}  # a few DHSD names are two or more words

# The writer split (make_writer_split): test first, then validation, the rest fine-tunes.
SPLIT_SEED = 42
TEST_MIN_WORDS, TEST_MAX_WORDS, TEST_MIN_WRITERS = 300, 400, 6
VALIDATION_MIN_WORDS, VALIDATION_MAX_WORDS, VALIDATION_MIN_WRITERS = 200, 250, 5


class DhsdError(ValueError):
    """words.csv or a split file is malformed: the message names the file and the line."""


def _folder(folder: Path | str | None) -> Path:
    return Path(folder) if folder is not None else config.DHSD_DIR


# --- words.csv --------------------------------------------------------------------------
def _text_of(path: Path) -> str:
    """A UTF-8 file's text, with or without the BOM that Excel writes; DhsdError naming the line of a byte that is not
    UTF-8 (a file saved as Latin-1 or Windows-1252)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DhsdError(f"{config.display_path(path)}, line {line}: not UTF-8 (byte {data[error.start:error.start + 1]!r}); "
                        "save it as UTF-8") from None  # fmt: skip


def _writer_id(text: str) -> str:
    """A writer id as written in words.csv or a split file: ASCII digits (cli.whole_number), leading zeros dropped."""
    return str(cli.whole_number(text))


def read_words(folder: Path | str | None = None, verbose: bool = True) -> pd.DataFrame:
    """Every row of ``words.csv``, checked, without the split; a bad row raises, naming its line.

    Each image is decoded once (:func:`utils.iam.inspect_image`): one that is missing, empty or damaged gets its
    ``image_problem`` (and is printed, with its line, when ``verbose``), and the pipeline leaves it out, as IAM's.
    """
    folder = _folder(folder)
    words_file = folder / WORDS_FILE
    if not words_file.is_file():
        raise FileNotFoundError(f"{config.display_path(words_file)} does not exist: no DHSD words here")
    where = config.display_path(words_file)
    rows, seen, lines = [], {}, []
    with io.StringIO(_text_of(words_file), newline="") as file:
        reader = csv.DictReader(file)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DhsdError(f"{where}, line 1: the header lacks the column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            if None in row or any(row[c] is None for c in CSV_COLUMNS):
                raise DhsdError(f"{where}, line {line}: expected {len(reader.fieldnames)} fields: {row}")
            name, text, iam_text, writer = (row[c].strip() for c in CSV_COLUMNS)
            relative = Path(name)
            if not name or relative.is_absolute() or ".." in relative.parts or relative.suffix.lower() != ".png":
                raise DhsdError(f"{where}, line {line}: file_name {name!r} is not a .png path inside {config.display_path(folder)}")
            if not text or not iam_text:
                raise DhsdError(f"{where}, line {line}: {name} has an empty text or iam_text")
            unknown = sorted(set(iam_text) - IAM_TEXT_CHARACTERS)
            if unknown:
                raise DhsdError(f"{where}, line {line}: iam_text {iam_text!r} has characters outside IAM's: {unknown}")
            try:
                writer = _writer_id(writer)
            except ValueError:
                raise DhsdError(f"{where}, line {line}: writer_id {writer!r} is not a number (digits 0-9 only)") from None
            word_id = relative.stem
            if word_id in seen:
                raise DhsdError(f"{where}, line {line}: {name} repeats the word id of line {seen[word_id]}")
            seen[word_id] = line
            rows.append((word_id, str((folder / relative).resolve()), iam_text, text, writer))
            lines.append(line)
    if not rows:
        raise DhsdError(f"{where}: no words")
    frame = pd.DataFrame(rows, columns=["word_id", "path", "text", "published_text", "writer"])
    with ThreadPoolExecutor(max_workers=4) as pool:
        inspected = list(pool.map(lambda path: inspect_image(Path(path)), frame["path"]))
    frame["image_problem"] = [kind for _, kind, _ in inspected]
    for line, path, (_, kind, detail) in zip(lines, frame["path"], inspected):
        if kind is not None and verbose:
            print(f"{where}, line {line}: the image {config.display_path(path)} is {kind} ({detail}): left out")
    return frame


# --- The writer split ------------------------------------------------------------------------
def _writer_order(writer: str) -> tuple[int, str]:
    return (int(writer), writer) if writer.isascii() and writer.isdigit() else (sys.maxsize, writer)


def make_writer_split(words: pd.DataFrame | None = None, seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """Split the writers (never the words) into finetune / validation / test, deterministically.

    Writers sorted by id are shuffled with ``numpy.random.default_rng(seed)``. In that order a writer
    goes to test while test holds fewer than 300 words or 6 writers, unless it would take test past
    400 words; else to validation while validation holds fewer than 200 words or 5 writers, unless it
    would pass 250; else to finetune. ``words`` needs a ``writer`` column (default: dhsd/'s words).
    """
    words = read_words() if words is None else words
    counts = Counter(words["writer"].astype(str))
    order = [str(w) for w in np.random.default_rng(seed).permutation(sorted(counts, key=_writer_order))]
    rules = (("test", TEST_MIN_WORDS, TEST_MIN_WRITERS, TEST_MAX_WORDS),
             ("validation", VALIDATION_MIN_WORDS, VALIDATION_MIN_WRITERS, VALIDATION_MAX_WORDS))  # fmt: skip
    split: dict[str, list[str]] = {name: [] for name in config.DHSD_SPLITS}
    for writer in order:
        for name, min_words, min_writers, max_words in rules:
            held = sum(counts[w] for w in split[name])
            if (held < min_words or len(split[name]) < min_writers) and held + counts[writer] <= max_words:
                split[name].append(writer)
                break
        else:
            split["finetune"].append(writer)
    for name, min_words, min_writers, _ in rules:
        held = sum(counts[w] for w in split[name])
        if held < min_words or len(split[name]) < min_writers:
            raise ValueError(f"the {name} split holds {held} words of {len(split[name])} writers: "
                             f"too few writers to reach {min_words} words and {min_writers} writers")  # fmt: skip
    return {name: sorted(writers, key=_writer_order) for name, writers in split.items()}


def split_file_text(name: str, writers: Sequence[str], counts: Counter, seed: int = SPLIT_SEED) -> str:
    """The text of one split file: a ``#`` header saying how it was made, then one writer id per line."""
    words = sum(counts[w] for w in writers)
    header = f"""\
# DHSD writers of the {name} split: {len(writers)} writers, {words} words of {sum(counts.values())}.
# Made by utils.dhsd.make_writer_split(seed={seed}) (python -m utils.dhsd split); writers, never words, are split.
# Writers sorted by id are shuffled with numpy.random.default_rng({seed}). In that order a writer goes to test
# while test has fewer than {TEST_MIN_WORDS} words or {TEST_MIN_WRITERS} writers (unless it would pass {TEST_MAX_WORDS} words), else to
# validation while it has fewer than {VALIDATION_MIN_WORDS} words or {VALIDATION_MIN_WRITERS} writers (unless it would pass {VALIDATION_MAX_WORDS}), else to finetune.
# One writer id (words.csv's writer_id) per line.
"""
    return header + "".join(f"{writer}\n" for writer in writers)


def write_writer_split(folder: Path | str | None = None, out: Path | str | None = None, seed: int = SPLIT_SEED) -> list[Path]:
    """Write the split files of ``folder``'s words into ``out`` (default: ``folder``/splits); return their paths."""
    folder = _folder(folder)
    out = Path(out) if out is not None else folder / SPLITS_FOLDER
    words = read_words(folder)
    counts = Counter(words["writer"])
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, writers in make_writer_split(words, seed).items():
        path = out / f"{name}.txt"
        path.write_text(split_file_text(name, writers, counts, seed), encoding="utf-8", newline="\n")
        paths.append(path)
    return paths


def read_writer_split(folder: Path | str | None = None) -> dict[str, str]:
    """Writer id -> split, from ``folder``/splits/*.txt; a writer named twice or a bad line raises, naming it."""
    splits_dir = _folder(folder) / SPLITS_FOLDER
    writers: dict[str, str] = {}
    where: dict[str, str] = {}
    for name in config.DHSD_SPLITS:
        path = splits_dir / f"{name}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{config.display_path(path)} does not exist: make the split with python -m utils.dhsd split")
        for line, raw in enumerate(_text_of(path).splitlines(), start=1):
            token = raw.split("#", 1)[0].strip()
            if not token:
                continue
            try:
                writer = _writer_id(token)
            except ValueError:
                raise DhsdError(f"{config.display_path(path)}, line {line}: {token!r} is not a writer id") from None
            if writer in writers:
                raise DhsdError(f"{config.display_path(path)}, line {line}: writer {writer} is already in {where[writer]}")
            writers[writer] = name
            where[writer] = f"{config.display_path(path)}, line {line}"
    return writers


# --- The loader -------------------------------------------------------------------------------
def load_dhsd(folder: Path | str | None = None) -> pd.DataFrame:
    """One row per word of ``folder`` (default ``config.DHSD_DIR``): ids, absolute path, texts, writer, split."""
    folder = _folder(folder)
    frame = read_words(folder)
    split = read_writer_split(folder)
    orphans = sorted(set(frame["writer"]) - set(split), key=_writer_order)
    if orphans:
        raise DhsdError(f"writer(s) {', '.join(orphans)} of {config.display_path(folder / WORDS_FILE)} are in no split file "
                        f"of {config.display_path(folder / SPLITS_FOLDER)}")  # fmt: skip
    frame["split"] = frame["writer"].map(split)
    frame["gray_level"] = -1  # no IAM binarization threshold: contrast comes from the image itself
    frame["status"] = "ok"  # image_problem (read_words) leaves a bad image out: utils.dataset.usable_words reads it
    return frame[list(FRAME_COLUMNS)]


def dhsd_split(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of one split (finetune, validation or test), re-indexed from 0."""
    if split not in config.DHSD_SPLITS:
        raise ValueError(f"unknown DHSD split {split!r}: expected one of {', '.join(config.DHSD_SPLITS)}")
    return frame[frame["split"] == split].reset_index(drop=True)


def summary(frame: pd.DataFrame) -> str:
    """Words and writers per split, one line each."""
    lines = []
    for name in config.DHSD_SPLITS:
        part = dhsd_split(frame, name)
        counts = part["writer"].value_counts()
        writers = ", ".join(f"{w} ({counts[w]})" for w in sorted(counts.index, key=_writer_order))
        bad = int(part["image_problem"].notna().sum())
        left_out = f" ({bad} left out: image missing, empty or damaged)" if bad else ""
        lines.append(f"{name:<10} {len(part):>5} words{left_out}, {len(counts):>2} writers: {writers}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.dhsd", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", choices=("summary", "split"), default="summary")
    parser.add_argument("--folder", type=Path, default=config.DHSD_DIR)
    parser.add_argument("--seed", type=cli.argument(cli.whole_number), default=SPLIT_SEED)
    args = parser.parse_args(argv)
    if args.command == "split":
        for path in write_writer_split(args.folder, seed=args.seed):
            print(f"wrote {config.display_path(path)}")
    print(summary(load_dhsd(args.folder)))
    return 0


if __name__ == "__main__":
    from utils import cli

    cli.run(main)
