"""Checks that a handwriting font can be a "writer" of the synthetic mini-IAM.

A font is accepted when it draws every character of IAM's charset with a glyph of its own
and when its lower-case letters are not capitals in another size (small capitals cannot
teach a reader the case of a letter). ``font_problems`` says what is wrong with a font;
``tests/test_fonts.py`` runs it on every bundled font, and new fonts are chosen with it.

Command line (prints each font's problems; exit status 1 if any)::

    python -m utils.fonts_check utils/fonts/*.woff
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from utils import config

RENDER_SIZE = 96  # pixels per em: glyphs big enough that a stroke is several pixels wide
# Characters no handwriting font draws: what they render to is the font's ".notdef" glyph
# (often an empty box, sometimes nothing at all).
MISSING_PROBES = ("\uffff", "\ue000", "\U0010fffd")
# The letters whose cases differ in shape in ordinary handwriting are a/A, b/B, d/D, e/E, g/G, h/H, n/N,
# q/Q, r/R, t/T and y/Y (c/C, o/O, s/S, v/V, w/W, x/X, z/Z do not: a capital is the small letter made bigger).
# Two checks cover them: b, d, h rise above the x-height and g, q, y sink below the baseline, which small
# capitals never do; and a, e, n, r must not be small capitals (their capital's shape at nearly its height).
X_HEIGHT_LETTERS = "acemnorsuvwxz"  # small letters with neither ascender nor descender: they set the x-height
ASCENDER_LETTERS = "bdhkl"
DESCENDER_LETTERS = "gpqy"
# b, d, h, k, l must rise, and g, p, q, y must sink, by this share of the x-height (medians of the letters).
# A font of small capitals draws them all between baseline and x-height: Permanent Marker, Rock Salt and
# Walter Turncoat measure at most 0.03 above and 0.03 below; every bundled font at least 0.31 above
# (Sedgwick Ave) and 0.28 below (Yomogi). 0.15 lies between with room on both sides.
MIN_ASCENDER = 0.15
MIN_DESCENDER = 0.15
SHAPE_SIZE = 24  # pixels: both ink bitmaps are cropped and stretched to this square to compare shapes
# A small a, e, n or r is a small capital when its ink, cropped and stretched to one square and blurred
# by a pixel, overlaps its capital's by SAME_SHAPE_IOU or more (intersection over union) AND it is at least
# SMALL_CAPITAL_HEIGHT of the capital's height. Gochi Hand, whose b, d, g, q, y are true small letters but
# whose a, e, n (and r) are small capitals, has 3 such letters (IoU 0.52-0.74 at 0.84-0.89 of the height);
# no accepted font has more than 1 (a school "a" is often a small "A"-like bowl, but then much shorter).
# Shape alone does not separate them (cursive capitals A and N are often a big "a" and "n": IoU up to 0.74),
# nor height alone (Long Cang's true small letters reach 0.92 of the capitals' height).
CASE_SHAPE_LETTERS = "aenr"
SAME_SHAPE_IOU = 0.5
SMALL_CAPITAL_HEIGHT = 0.8
MAX_SMALL_CAPITALS = 1


@lru_cache(maxsize=None)
def _font(path: str, size: int = RENDER_SIZE) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def render_glyph(path: Path | str, char: str, size: int = RENDER_SIZE) -> np.ndarray:
    """The ink of one character as a float array in [0, 1].

    The baseline is at the same row for every character (3 em from the top, 2 em above the bottom:
    room for Playwrite's tall ascenders and the swashes of script fonts), so rows compare across glyphs.
    """
    font = _font(str(path), size)
    canvas = Image.new("L", (4 * size, 5 * size), 0)
    ImageDraw.Draw(canvas).text((size, 3 * size), char, font=font, fill=255, anchor="ls")
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _crop(ink: np.ndarray, level: float = 0.5) -> np.ndarray:
    """The ink's bounding box (empty array for no ink)."""
    ys, xs = np.nonzero(ink > level)
    if len(xs) == 0:
        return ink[:0, :0]
    return ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _shape(ink: np.ndarray) -> np.ndarray:
    """The ink cropped, stretched to SHAPE_SIZE x SHAPE_SIZE, blurred by a pixel and binarised."""
    crop = _crop(ink)
    image = Image.fromarray((crop * 255).astype(np.uint8)).resize((SHAPE_SIZE, SHAPE_SIZE), Image.Resampling.BOX)
    small = np.asarray(image, dtype=np.float32) / 255.0
    padded = np.pad(small, 1)
    blurred = sum(padded[dy : dy + SHAPE_SIZE, dx : dx + SHAPE_SIZE] for dy in range(3) for dx in range(3)) / 9
    return blurred > 0.15


def shape_iou(lower: np.ndarray, upper: np.ndarray) -> float:
    """Intersection over union of two glyphs' ink, each cropped and stretched to one square."""
    a, b = _shape(lower), _shape(upper)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _rows(ink: np.ndarray) -> tuple[int, int]:
    """First and last row holding ink."""
    rows = np.nonzero((ink > 0.5).any(axis=1))[0]
    return int(rows[0]), int(rows[-1])


def missing_characters(path: Path | str, charset: str = config.IAM_CHARSET) -> list[str]:
    """Characters of ``charset`` the font draws with no ink, or with its ".notdef" glyph."""
    probes = [render_glyph(path, probe) for probe in MISSING_PROBES]
    missing = []
    for char in charset:
        ink = render_glyph(path, char)
        if ink.max() < 0.5 or any(np.array_equal(ink, probe) for probe in probes):
            missing.append(char)
    return missing


def ascender_descender(path: Path | str) -> tuple[float, float]:
    """How far b, d, h, k, l rise above the x-height and g, p, q, y sink below the baseline (medians, in x-heights).

    Every glyph is drawn from the same origin, so their rows compare: the x-height and the baseline are
    the median top and bottom of the letters without ascender or descender (a, c, e, m, n, o, ...).
    """
    x_rows = [_rows(render_glyph(path, c)) for c in X_HEIGHT_LETTERS]
    top, baseline = float(np.median([r[0] for r in x_rows])), float(np.median([r[1] for r in x_rows]))
    x_height = max(baseline - top + 1, 1.0)
    rise = np.median([top - _rows(render_glyph(path, c))[0] for c in ASCENDER_LETTERS])
    sink = np.median([_rows(render_glyph(path, c))[1] - baseline for c in DESCENDER_LETTERS])
    return float(rise / x_height), float(sink / x_height)


def small_capitals(path: Path | str) -> list[tuple[str, float, float]]:
    """(letter, shape IoU, height ratio) of each of a, e, n, r drawn as a small capital.

    A small letter is a small capital when, cropped and stretched to one size, its ink overlaps its
    capital's by SAME_SHAPE_IOU or more and it is at least SMALL_CAPITAL_HEIGHT of the capital's height.
    """
    found = []
    for letter in CASE_SHAPE_LETTERS:
        lower, upper = render_glyph(path, letter), render_glyph(path, letter.upper())
        (lower_top, lower_bottom), (upper_top, upper_bottom) = _rows(lower), _rows(upper)
        iou = shape_iou(lower, upper)
        ratio = (lower_bottom - lower_top + 1) / (upper_bottom - upper_top + 1)
        if iou >= SAME_SHAPE_IOU and ratio >= SMALL_CAPITAL_HEIGHT:
            found.append((letter, iou, ratio))
    return found


def font_problems(path: Path | str) -> list[str]:
    """What keeps the font at ``path`` from being a writer of the mini-IAM (empty list: none).

    Checked: Pillow opens it; every character of ``config.IAM_CHARSET`` has a glyph of its own (ink
    that is not the ".notdef" glyph); and its small letters are not small capitals: b, d, h, k, l rise
    above the x-height and g, p, q, y sink below the baseline (by MIN_ASCENDER and MIN_DESCENDER of the
    x-height), and at most MAX_SMALL_CAPITALS of a, e, n, r look like their capital at nearly its height.
    """
    try:
        _font(str(path))
    except OSError as error:
        return [f"Pillow cannot open it: {error}"]
    problems = []
    missing = missing_characters(path)
    if missing:
        problems.append(f"no glyph for {''.join(missing)!r}")
    if set(missing) & set(X_HEIGHT_LETTERS + ASCENDER_LETTERS + DESCENDER_LETTERS + CASE_SHAPE_LETTERS.upper()):
        return problems  # the case checks need these letters
    rise, sink = ascender_descender(path)
    if rise < MIN_ASCENDER:
        problems.append(f"b, d, h, k, l do not rise above the x-height ({rise:.2f} x-heights): small capitals")
    if sink < MIN_DESCENDER:
        problems.append(f"g, p, q, y do not sink below the baseline ({sink:.2f} x-heights): small capitals")
    capitals = small_capitals(path)
    if len(capitals) > MAX_SMALL_CAPITALS:
        letters = ", ".join(
            f"{letter} (IoU {iou:.2f}, {ratio:.0%} of the height)"
            for letter, iou, ratio in capitals
        )
        problems.append(f"small capitals for {letters}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(argv if argv is not None else sys.argv[1:])
    paths = paths or [str(path) for path in sorted(config.FONTS_DIR.glob("*.woff"))]
    bad = 0
    for path in paths:
        problems = font_problems(path)
        bad += bool(problems)
        print(f"{Path(path).name}: {'; '.join(problems) or 'ok'}")
    return 1 if bad else 0


if __name__ == "__main__":
    from utils import cli

    cli.run(main)
