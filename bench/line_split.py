"""How often the line splitter finds the right number of words on real handwritten lines.

    python bench/line_split.py [--dev N] [--show]

Reads the 50 real lines of ``tests/fixtures/copiste_lines/`` (Copiste d'un jour, cut by their ALTO boxes: bits of
the neighbouring lines, underlines and ruled lines included) and splits each with
``utils.handwriting.split_line_into_words``. A line counts as right when the number of boxes equals its
transcription's word count, with or without the tokens that are only punctuation (``lines.csv``). ``--dev N`` also
measures N other lines drawn (seed 99) from the writers of ``../shared/copiste`` that the fixture does not hold: the
lines the splitter's settings were chosen on. ``--show`` prints each line's count.

It also counts the *separable* lines: those whose word gaps are all at least 1.2 times as wide as their widest gap
inside a word: those that a rule on gap widths can split with a 20% margin (the splitter finds the gaps; the true
count says which are word gaps).

Prints a table, then one JSON line with: lines, right, right_share, too_few, too_many, separable_share,
seconds_per_line, and for the development lines (dev_lines, dev_right, dev_right_share, dev_separable_share) when asked.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "fixtures" / "copiste_lines"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "copiste_lines"
SEPARATION = 1.2  # a word gap this many times a letter gap (plus a pixel) is one that gap widths can tell apart
COPISTE = REPO_ROOT.parent / "shared" / "copiste"
DEV_SEED = 99


def separable(gray, counts: tuple[int, int], margin: float = SEPARATION) -> bool:
    """Whether the line's k - 1 widest gaps between pieces (k: its true word count, either way of counting) are all
    at least ``margin`` times as wide as every other gap (a pixel added to each): what gap widths alone can split."""
    from utils.handwriting import line_pieces

    found = line_pieces(gray)
    gaps = sorted(found[3] if found else [], reverse=True) + [0.0]
    return any(words == 1 or (words - 1 <= len(gaps) - 1 and gaps[words - 2] + 1 >= margin * (gaps[words - 1] + 1))
               for words in counts)  # fmt: skip


def measure(lines: list[tuple[str, "object", int, int]], show: bool) -> dict:
    """Counts of right, too few and too many words over (name, gray image, words, words without marks)."""
    import numpy as np

    from utils.handwriting import split_line_into_words

    right = too_few = too_many = clear = 0
    seconds = 0.0
    for name, image, words, without_marks in lines:
        started = time.perf_counter()
        found = len(split_line_into_words(np.asarray(image)))
        seconds += time.perf_counter() - started
        clear += separable(np.asarray(image), (words, without_marks))
        right += found in (words, without_marks)
        too_few += found < min(words, without_marks)
        too_many += found > words
        if show:
            print(f"  {name:40} {found:3} boxes, {words:3} words{'' if found in (words, without_marks) else '   <- wrong'}")
    return {"lines": len(lines), "right": right, "too_few": too_few, "too_many": too_many, "separable": clear,
            "seconds_per_line": seconds / max(1, len(lines))}  # fmt: skip


def fixture_lines() -> list:
    from PIL import Image

    with (FIXTURE / "lines.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return [(row["file"], Image.open(FIXTURE / row["file"]), int(row["words"]), int(row["words_without_marks"])) for row in rows]


def development_lines(count: int) -> list:
    """``count`` lines of the Copiste writers that the fixture does not hold (one per writer at most)."""
    import make  # tests/fixtures/copiste_lines/make.py

    with (FIXTURE / "lines.csv").open(encoding="utf-8", newline="") as file:
        held = {make.writer(row["file"].split("_", 1)[1].removesuffix(".png")) for row in csv.DictReader(file)}
    lines = [(page, box, text) for name, found in sorted(make.candidate_lines(COPISTE).items()) if name not in held
             for page, box, text in found]  # fmt: skip
    chosen = random.Random(DEV_SEED).sample(lines, count)
    return [(f"{page} {box}", make.cut(COPISTE, page, box), *make.word_counts(text).values()) for page, box, text in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dev", type=int, default=0, metavar="N", help="also N development lines from ../shared/copiste")
    parser.add_argument("--show", action="store_true", help="print each line's count")
    args = parser.parse_args()
    results = {"fixture (50 lines, 50 writers)": measure(fixture_lines(), args.show)}
    if args.dev:
        if not COPISTE.is_dir():
            print(f"--dev needs {COPISTE}: not here", file=sys.stderr)
            return 2
        results[f"development ({args.dev} other lines)"] = measure(development_lines(args.dev), args.show)
    print("Line splitter on real Copiste lines cut by their ALTO boxes: the right number of words")
    print(f"{'lines':34}{'right':>8}{'share':>8}{'too few':>9}{'too many':>10}{'separable':>11}{'ms/line':>9}")
    for name, result in results.items():
        print(f"{name:34}{result['right']:8}{result['right'] / result['lines']:8.0%}{result['too_few']:9}"
              f"{result['too_many']:10}{result['separable'] / result['lines']:11.0%}{1000 * result['seconds_per_line']:9.0f}")  # fmt: skip
    print(f"separable: lines whose word gaps are all at least {SEPARATION} times their widest gap inside a word "
          "(those a rule on gap widths can split with a 20% margin)")
    fixture = next(iter(results.values()))
    summary = {"lines": fixture["lines"], "right": fixture["right"], "right_share": round(fixture["right"] / fixture["lines"], 3),
               "too_few": fixture["too_few"], "too_many": fixture["too_many"], "separable_share": round(fixture["separable"] / fixture["lines"], 3),
               "seconds_per_line": round(fixture["seconds_per_line"], 4)}  # fmt: skip
    if args.dev:
        dev = list(results.values())[1]
        summary.update(dev_lines=dev["lines"], dev_right=dev["right"], dev_right_share=round(dev["right"] / dev["lines"], 3),
                       dev_separable_share=round(dev["separable"] / dev["lines"], 3))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
