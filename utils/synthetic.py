"""The embedded default dataset: a synthetic mini-IAM drawn from handwriting fonts.

It has IAM's exact layout (``words/z00/z00-000/z00-000-00-00.png`` and a ``words.txt``
in IAM's format) plus IAM's ``forms.txt`` (form -> writer) and ``splits/`` files, so
every line of the loader runs on it as on the real IAM. One font is one writer; the
fonts named in ``config`` are held out for validation and test (unseen writers). A few
rows are ``err``, one image is an empty file and one listed image is missing, so the
cleaning code has something to clean. The same seed gives the same dataset.

Command line::

    python -m utils.synthetic DIR --words N --seed S
    python -m utils.synthetic DIR --iam-size     # IAM's size: 115,320 words, 657 writers, 16.4% err
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
from PIL import ImageFont, features

from utils import config
from utils.iam import PARTIAL_SUFFIX, SYNTHETIC_MARKER, IamLayout, find_dataset, image_path

GENERATOR_VERSION = 2  # bump when the output for a given seed changes
WORDS_PER_LINE = (3, 9)
LINES_PER_FORM = (6, 11)
PUNCTUATION_TOKENS = {",": 0.42, ".": 0.38, "-": 0.03, "'": 0.03, '"': 0.05, "!": 0.02, "?": 0.02,
                      ";": 0.015, ":": 0.015, "(": 0.01, ")": 0.01, "&": 0.005, "#": 0.005}  # fmt: skip
# How often a token is punctuation, a number, all capitals or capitalised (close to IAM's mix), or a
# long word: what people write on their own notes and forms (names, places, compounds) is longer than
# IAM's running text, whose words average 4 letters.
TOKEN_MIX = {"punctuation": 0.10, "number": 0.015, "upper": 0.015, "capitalised": 0.12, "long": 0.12}
# Long words come from these languages (wordfreq, offline), with umlauts written without dots as
# IAM's alphabet has none; half of them capitalised, as names and German nouns are.
LONG_WORD_LANGUAGES = ("en", "de")
LONG_WORD_LENGTH = (7, 16)
UMLAUTS = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "Ä": "A", "Ö": "O", "Ü": "U", "ß": "ss"})
# Frequent web words a class should not be handed as handwriting samples.
BLOCKED_WORDS = frozenset("fuck fucking fucked shit bullshit sex sexy sexual porn bitch ass asshole dick cock pussy "
                          "naked crap rape piss pissed wtf lmao damn".split())  # fmt: skip
TAGS = {"the": "ATI", "a": "AT", "an": "AT", "of": "IN", "in": "IN", "to": "TO", "and": "CC", "is": "BEZ",
        "was": "BEDZ", "he": "PP3A", "it": "PP3", "I": "PP1A", "that": "CS", "for": "IN", "with": "IN"}  # fmt: skip


# --- Fonts and writers ------------------------------------------------------------
def font_paths() -> list[Path]:
    """The bundled handwriting fonts, one per writer, in a fixed order."""
    return sorted(config.FONTS_DIR.glob("*.woff"))


@lru_cache(maxsize=None)
def _layout_engine() -> ImageFont.Layout:
    """Raqm (HarfBuzz) applies a font's contextual forms, which join cursive letters; Pillow without it cannot."""
    return ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC


def _fonts_digest() -> str:
    """A short hash of the bundled fonts' names and held-out lists: a cached mini-IAM made with other fonts is not reused."""
    names = [path.name for path in font_paths()] + list(config.SYNTHETIC_VALIDATION_FONTS) + list(config.SYNTHETIC_TEST_FONTS)
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:12]


@lru_cache(maxsize=None)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, layout_engine=_layout_engine())


@lru_cache(maxsize=None)
def _x_height(path: str) -> float:
    """Height of 'x' at size 100: fonts differ a lot, so sizes are set per x-height."""
    left, top, right, bottom = _font(path, 100).getbbox("x")
    return max(bottom - top, 1)


@dataclass(frozen=True)
class WriterStyle:
    """The habits of one synthetic writer: applied to every word they write."""

    writer_id: str
    font: str  # font file name
    split: str
    x_height: float  # pixels
    slant: float  # horizontal shear; positive leans right
    stroke: int  # -1 thinner, 0, 1 or 2 thicker
    ink: int  # gray level of the ink
    wobble: float  # baseline wobble amplitude, pixels


def make_writers(seed: int, writers: int | None = None) -> list[WriterStyle]:
    """One writer per font (or ``writers`` by cycling the fonts), each with a style of its own."""
    fonts = font_paths()
    if not fonts:
        raise FileNotFoundError(f"no .woff fonts in {config.FONTS_DIR}")
    count = writers or len(fonts)
    styles = []
    for index in range(count):
        font = fonts[index % len(fonts)]
        rng = np.random.default_rng([seed, 7, index])
        split = (
            "validation"
            if font.stem in config.SYNTHETIC_VALIDATION_FONTS
            else "test"
            if font.stem in config.SYNTHETIC_TEST_FONTS
            else "train"
        )
        styles.append(
            WriterStyle(
                writer_id=f"{index:03d}",
                font=font.name,
                split=split,
                x_height=float(rng.uniform(24, 36)),  # IAM scans: about 30 px at 300 dpi
                slant=float(rng.normal(0.08, 0.12)),
                stroke=int(rng.choice([-1, 0, 0, 1])),
                ink=int(rng.uniform(10, 90)),
                wobble=float(rng.uniform(0.0, 2.5)),
            )
        )
    return styles


# --- Words ------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _vocabulary() -> tuple[list[str], np.ndarray]:
    """Frequent English words (wordfreq, offline) that IAM's charset can spell, with weights."""
    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list("en", 6000) if w.isascii() and (w.isalpha() or "'" in w)]
    words = [
        w
        for w in words
        if all(c in config.IAM_CHARSET for c in w) and len(w) <= config.IAM_MAX_WORD_LENGTH and w not in BLOCKED_WORDS
    ]
    weights = np.array([word_frequency(w, "en") for w in words]) ** 0.8  # a little flatter than Zipf: more variety
    return words, weights / weights.sum()


@lru_cache(maxsize=1)
def _long_words() -> list[str]:
    """Less frequent, longer words of ``LONG_WORD_LANGUAGES`` that IAM's charset can spell."""
    from wordfreq import top_n_list

    words = set()
    for language in LONG_WORD_LANGUAGES:
        for word in top_n_list(language, 30000):
            word = word.translate(UMLAUTS)
            if LONG_WORD_LENGTH[0] <= len(word) <= LONG_WORD_LENGTH[1] and word.isascii() and word.isalpha():
                words.add(word)
    return sorted(words - BLOCKED_WORDS)


def sample_texts(count: int, seed: int) -> list[str]:
    """``count`` IAM-like tokens: frequent words, some capitalised, punctuation and numbers."""
    rng = np.random.default_rng([seed, 1])
    words, weights = _vocabulary()
    marks, mark_weights = zip(*PUNCTUATION_TOKENS.items())
    mark_weights = np.array(mark_weights) / sum(mark_weights)
    kinds, kind_weights = zip(*TOKEN_MIX.items())
    kind_draw = rng.random(count)
    picks = rng.choice(len(words), size=count, p=weights)
    texts = []
    for i in range(count):
        word = words[picks[i]]
        word = "I" + word[1:] if word == "i" or word.startswith("i'") else word
        threshold = 0.0
        kind = "plain"
        for name, weight in zip(kinds, kind_weights):
            threshold += weight
            if kind_draw[i] < threshold:
                kind = name
                break
        if kind == "punctuation":
            word = str(rng.choice(marks, p=mark_weights))
        elif kind == "number":
            word = str(rng.choice([rng.integers(0, 100), rng.integers(1800, 2000), rng.integers(100, 10000)]))
        elif kind == "upper":
            word = word.upper()
        elif kind == "capitalised":
            word = word[:1].upper() + word[1:]
        elif kind == "long":
            long_words = _long_words()
            word = long_words[rng.integers(len(long_words))]
            word = word[:1].upper() + word[1:] if rng.random() < 0.5 else word
        texts.append(word)
    return texts


def tag_for(text: str) -> str:
    """A plausible IAM grammatical tag: punctuation is its own tag, as in IAM."""
    if text in PUNCTUATION_TOKENS:
        return text
    if text.isdigit():
        return "CD"
    return TAGS.get(text, TAGS.get(text.lower(), "NP" if text[:1].isupper() else "NN"))


# --- Rendering --------------------------------------------------------------------
def _smooth_curve(rng: np.random.Generator, length: int, period: tuple[float, float]) -> np.ndarray:
    """A smooth random curve in [-1, 1] along ``length`` pixels: two sines of random period and phase."""
    xs = np.arange(length, dtype=np.float32)
    curve = np.zeros(length, np.float32)
    for weight in (0.7, 0.3):
        curve += weight * np.sin(2 * np.pi * xs / rng.uniform(*period) + rng.uniform(0, 2 * np.pi))
    return curve


def _draw_ink(text: str, style: WriterStyle, rng: np.random.Generator, realism: Mapping[str, float],
              size: int | None = None) -> tuple[np.ndarray, int]:
    """The word's ink coverage (uint8, 255 = ink) on a roomy canvas, and the baseline's row.

    The writer's slant, baseline wobble and pen, varied per word; with ``realism``, the pen's
    pressure (stroke width and darkness) changes along the word and the baseline drifts.
    """
    font_path = str(config.FONTS_DIR / style.font)
    if size is None:
        size = int(round(100 * style.x_height * rng.uniform(0.88, 1.12) / _x_height(font_path)))
    font = _font(font_path, max(size, 8))
    mask, (left, top) = font.getmask2(text, mode="L", anchor="ls")  # one layout: the glyphs and where the baseline is
    glyphs = np.frombuffer(bytes(mask), np.uint8).reshape(mask.size[1], mask.size[0])
    pad = 6 + size // 6  # room for the wobble, the drift and a thicker pen
    drift_room = glyphs.shape[1] // 20
    height = glyphs.shape[0] + 2 * pad + 2 * drift_room
    shear = style.slant + rng.normal(0, 0.05)
    extra = int(abs(shear) * height) + 2  # the slanted word is wider
    width = glyphs.shape[1] + 2 * pad + extra
    canvas = np.zeros((height, glyphs.shape[1] + 2 * pad), np.uint8)
    canvas[pad + drift_room : pad + drift_room + glyphs.shape[0], pad : pad + glyphs.shape[1]] = glyphs
    baseline = pad + drift_room - top

    # Slant (a shear about the vertical centre), baseline wobble and drift, in one resampling:
    # output (y, x) comes from source row y + dy(x), shifted sideways by the shear at that row.
    xs = np.arange(width, dtype=np.float32)
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(40, 120)
    dy = style.wobble * rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * xs / period + phase)
    if rng.random() < realism.get("drift", 0.0):  # the line climbs or falls across the word
        dy = dy + np.tan(np.radians(rng.normal(0, 2.5))) * (xs - width / 2)
    map_y = np.arange(height, dtype=np.float32)[:, None] + dy[None, :].astype(np.float32)
    map_x = xs[None, :] + shear * (map_y - height / 2) - extra / 2
    ink = cv2.remap(canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    h, w = ink.shape

    # Stroke width: the pen of the writer, sometimes thinner or thicker for one word.
    stroke = style.stroke + (-1, 0, 0, 0, 1)[rng.integers(5)]
    kernel = np.ones((2, 2), np.uint8)
    if stroke > 0:
        ink = cv2.dilate(ink, kernel, iterations=min(stroke, 2))
    elif stroke < 0 and size > 30:
        ink = cv2.erode(ink, kernel, iterations=1)
    if rng.random() < realism.get("pressure", 0.0):
        # Pressure changes along the word: wider and darker strokes where the pen presses, thin and faint where it lifts.
        press = _smooth_curve(rng, w, (30, 160))[None, :]
        wider = cv2.dilate(ink, kernel).astype(np.float32)
        thinner = cv2.erode(ink, kernel).astype(np.float32) if size > 24 else ink.astype(np.float32)
        ink_f = ink.astype(np.float32)
        ink_f = np.where(press > 0, ink_f + press * (wider - ink_f), ink_f - press * (thinner - ink_f))
        ink = np.clip(ink_f * (0.85 + 0.15 * press), 0, 255).astype(np.uint8)  # never fainter than 70%
    return ink, int(round(baseline - dy[w // 2]))


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the ink, or None for a blank canvas."""
    inked = ink > 40
    rows, columns = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if not len(rows):
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


def _loose_crop(ink: np.ndarray, box: tuple[int, int, int, int], text_height: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A generous crop around the word, with the neighbouring lines' descenders and ascenders cut in at its edges.

    Returns the new ink canvas and how far the word's top moved down in it.
    """
    y0, y1, x0, x1 = box
    word = ink[y0:y1, x0:x1]
    top, bottom = (int(rng.uniform(0.2, 0.9) * text_height) for _ in range(2))
    side_l, side_r = (int(rng.uniform(0.1, 0.6) * text_height) for _ in range(2))
    canvas = np.zeros((word.shape[0] + top + bottom, word.shape[1] + side_l + side_r), np.uint8)
    canvas[top : top + word.shape[0], side_l : side_l + word.shape[1]] = word
    line_gap = int(text_height * rng.uniform(1.6, 2.4))  # from baseline to baseline of the next line
    for direction in (-1, 1):
        if rng.random() < 0.6:
            # The writer's other lines look like this one: a shifted copy of the word's ink stands in for them.
            py = top + direction * line_gap
            px = int(rng.uniform(-0.6, 0.6) * word.shape[1]) + side_l
            ys = slice(max(py, 0), min(py + word.shape[0], canvas.shape[0]))
            xs = slice(max(px, 0), min(px + word.shape[1], canvas.shape[1]))
            if ys.start < ys.stop and xs.start < xs.stop:
                part = word[ys.start - py : ys.stop - py, xs.start - px : xs.stop - px]
                canvas[ys, xs] = np.maximum(canvas[ys, xs], part)
    return canvas, top


def _paper(shape: tuple[int, int], baseline: int, text_height: int, rng: np.random.Generator,
           realism: Mapping[str, float]) -> tuple[np.ndarray | float, np.ndarray | None]:
    """The paper under the word: its tone, and with ``realism`` texture, ruled or squared lines and uneven light.

    Returns the paper (a gray level, or an image where it varies) and the light (None, or a factor
    image that multiplies ink and paper alike).
    """
    h, w = shape
    paper: np.ndarray | float = float(rng.uniform(215, 255))
    if rng.random() < realism.get("texture", 0.0):  # fibres and uneven tone of real paper
        paper = paper + cv2.resize(rng.normal(0, 4, (max(h // 8, 2), max(w // 8, 2))).astype(np.float32), (w, h))
    kind = rng.random()
    ruled, squared = realism.get("ruled", 0.0), realism.get("squared", 0.0)
    if kind < ruled + squared:
        lines = np.zeros(shape, np.float32)
        tone = rng.uniform(0.25, 0.6)  # how dark the printed lines are against the ink
        thickness = int(rng.choice([1, 1, 2]))
        spacing = text_height * (rng.uniform(1.6, 2.4) if kind < ruled else rng.uniform(0.6, 1.0))
        first = baseline + int(rng.uniform(-1, 4))
        for y in np.arange(first - spacing * int(first / spacing + 1), h + spacing, spacing):
            cv2.line(lines, (0, int(y)), (w, int(y + rng.normal(0, 1.0))), tone, thickness)
        if kind >= ruled:  # squared paper: vertical lines too
            for x in np.arange(rng.uniform(0, spacing), w, spacing):
                cv2.line(lines, (int(x), 0), (int(x), h), tone, thickness)
        paper = paper * (1 - lines)
    light = None
    if rng.random() < realism.get("shadow", 0.0):  # a phone's shadow or a lamp: light falls off across the word
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * np.arange(w, dtype=np.float32)[None, :] / max(w, 1)
                + np.sin(angle) * np.arange(h, dtype=np.float32)[:, None] / max(h, 1))
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        light = 1.0 - rng.uniform(0.15, 0.45) * ramp
        if rng.random() < 0.4:  # a hard shadow edge
            light = np.where(ramp > rng.uniform(0.2, 0.8), light * rng.uniform(0.7, 0.9), light)
    return paper, light


def render_word(text: str, style: WriterStyle, rng: np.random.Generator, err: bool = False,
                realism: Mapping[str, float] | None = None) -> np.ndarray:
    """A gray uint8 image of ``text`` in ``style``, with the variation of a real hand.

    Size, slant, stroke width, baseline wobble, ink and paper tone, noise and blur vary
    per word around the writer's habits. ``err`` mimics a bad segmentation: a cut word.
    ``realism`` maps each switch of ``config.SYNTHETIC_REALISM`` (its default) to the share of
    words that get it: pressure, drift, texture, ruled, squared, shadow, loose_crop, jpeg, threshold.
    """
    realism = config.SYNTHETIC_REALISM if realism is None else realism
    ink, baseline = _draw_ink(text, style, rng, realism)
    text_height = int(style.x_height * 2.2)  # ascender to descender, roughly
    box = _ink_box(ink)
    if box is None:
        top = 0
    elif rng.random() < realism.get("loose_crop", 0.0) and not err:
        ink, top = _loose_crop(ink, box, text_height, rng)
        baseline -= box[0] - top
    else:  # crop to the ink with a small margin, as IAM's word boxes are
        h, w = ink.shape
        margin = int(rng.integers(2, 8))
        y0, y1 = max(box[0] - margin, 0), min(box[1] + margin, h)
        x0, x1 = max(box[2] - margin, 0), min(box[3] + margin, w)
        if err:  # a bad segmentation: a slice of the word is lost
            cut = int((x1 - x0) * rng.uniform(0.15, 0.35))
            x0, x1 = (x0 + cut, x1) if rng.random() < 0.5 else (x0, x1 - cut)
        ink = ink[y0:y1, x0:x1]
        baseline -= y0

    # Paper and ink tones, light, scanner noise and blur.
    alpha = ink.astype(np.float32) / 255.0
    paper, light = _paper(ink.shape, baseline, text_height, rng, realism)
    ink_tone = np.clip(style.ink + rng.normal(0, 12), 0, 140)
    image = paper + (ink_tone - paper) * alpha
    if light is not None:
        image *= light
    image += rng.uniform(0, 6) * rng.standard_normal(image.shape, dtype=np.float32)
    sigma = rng.uniform(0, 0.9)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < realism.get("threshold", 0.0):  # IAM's look: scanned, then paper set to white above a gray level
        image = np.where(image > otsu_level(image) + rng.uniform(-10, 15), 255, image).astype(np.uint8)
    if rng.random() < realism.get("jpeg", 0.0):  # a phone's or a messenger's compression
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 85))])
        image = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    return image


def otsu_level(image: np.ndarray) -> int:
    """The gray level that separates ink from paper, as IAM's words.txt records it."""
    level, _ = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return int(level)


# --- Writing the dataset --------------------------------------------------------------
@dataclass
class _Word:
    word_id: str
    writer: int
    text: str
    status: str
    x: int
    y: int


def _render_chunk(args: tuple[list[_Word], list[WriterStyle], int, str, dict[str, float]]) -> list[tuple[str, int, int, int]]:
    """Render and write a chunk of words; returns (word id, gray level, width, height)."""
    words, styles, seed, images_dir, realism = args
    out = []
    for word in words:
        rng = np.random.default_rng([seed, 2, int(word.word_id[1:3]), int(word.word_id[4:7]),
                                     int(word.word_id[-5:-3]), int(word.word_id[-2:])])  # fmt: skip
        image = render_word(word.text, styles[word.writer], rng, err=word.status == "err", realism=realism)
        path = image_path(Path(images_dir), word.word_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(".png", image)
        path.write_bytes(encoded.tobytes())
        out.append((word.word_id, otsu_level(image), image.shape[1], image.shape[0]))
    return out


def _plan(words: int, styles: list[WriterStyle], seed: int, err_fraction: float) -> tuple[list[_Word], dict[str, int]]:
    """Which writer writes which words on which form, line and position."""
    rng = np.random.default_rng([seed, 3])
    texts = sample_texts(words, seed)
    by_split = {name: [i for i, s in enumerate(styles) if s.split == name] for name in config.SPLITS}
    quotas = {name: int(round(words * config.SPLIT_FRACTIONS[name])) for name in config.SPLITS}
    quotas["train"] = words - quotas["validation"] - quotas["test"]
    plan: list[_Word] = []
    form_writer: dict[str, int] = {}
    form_number = 0
    for split in config.SPLITS:
        writers = by_split[split] or by_split["train"]
        remaining = quotas[split]
        turn = 0
        while remaining > 0:
            writer = writers[turn % len(writers)]
            turn += 1
            form_id = f"z{form_number // 1000:02d}-{form_number % 1000:03d}"
            form_number += 1
            form_writer[form_id] = writer
            for line in range(int(rng.integers(*LINES_PER_FORM))):
                x = int(rng.integers(300, 420))
                for position in range(int(rng.integers(*WORDS_PER_LINE))):
                    if remaining == 0:
                        break
                    text = texts[len(plan)]
                    status = "err" if rng.random() < err_fraction else "ok"
                    plan.append(_Word(f"{form_id}-{line:02d}-{position:02d}", writer, text, status, x, 700 + 150 * line))
                    x += 60 * len(text) + int(rng.integers(30, 70))
                    remaining -= 1
    return plan, form_writer


WORDS_HEADER = """#--- words.txt: synthetic mini-IAM, same format as IAM's --------------------#
#
# format: z00-000-00-00 ok 154 408 768 27 51 AT A
#
#     z00-000-00-00  -> word id for line 00 in form z00-000
#     ok             -> result of word segmentation (ok / err)
#     154            -> graylevel to binarize the word
#     408 768 27 51  -> bounding box around this word in x,y,w,h format
#     AT             -> the grammatical tag for this word
#     A              -> the transcription for this word
#
"""


def generate_mini_iam(
    out_dir: Path | str,
    words: int = 2000,
    seed: int = 42,
    writers: int | None = None,
    err_fraction: float = 0.03,
    workers: int | None = None,
    realism: Mapping[str, float] | None = None,
) -> IamLayout:
    """Write a mini-IAM of ``words`` words into ``out_dir`` and return its layout.

    ``realism`` overrides ``config.SYNTHETIC_REALISM`` (``bench/realism.py`` turns switches off).
    An existing mini-IAM made with the same parameters is reused (a cache); any other
    non-empty folder is left untouched and raises FileExistsError. It is written into
    ``<out_dir>.partial`` and renamed when complete: a partial folder left by an interrupted run is
    removed when the generator starts again (dataset discovery skips it meanwhile). A folder that
    cannot be written raises OSError naming it.
    """
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    realism = dict(config.SYNTHETIC_REALISM if realism is None else realism)
    unknown = set(realism) - set(config.SYNTHETIC_REALISM)
    if unknown:
        raise ValueError(f"unknown realism switches {sorted(unknown)}: expected some of {sorted(config.SYNTHETIC_REALISM)}")
    params = {"version": GENERATOR_VERSION, "words": words, "seed": seed, "writers": writers, "err_fraction": err_fraction,
              "fonts": _fonts_digest(), "realism": realism}  # fmt: skip
    marker = out_dir / SYNTHETIC_MARKER
    if marker.is_file():
        if json.loads(marker.read_text(encoding="utf-8")).get("params") == params:
            try:
                _remove_partial(partial)  # left by an interrupted run of another process: out_dir is complete
            except OSError:
                pass  # the cache is usable whatever is beside it
            return find_dataset(out_dir, max_depth=0)
        raise FileExistsError(f"{out_dir} holds a mini-IAM made with other parameters ({marker}); choose another folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty and is not a mini-IAM: refusing to write into it")
    if words < 10:
        raise ValueError("a mini-IAM needs at least 10 words")

    styles = make_writers(seed, writers)
    plan, form_writer = _plan(words, styles, seed, err_fraction)
    images_dir = partial / "words"
    try:
        _remove_partial(partial)
        images_dir.mkdir(parents=True)
    except OSError as error:
        raise OSError(f"cannot write the mini-IAM into {out_dir}: {error.strerror or error} ({error.filename or partial})") from error

    workers = workers or min(os.cpu_count() or 1, 8)
    chunks = [plan[i : i + 250] for i in range(0, len(plan), 250)]
    jobs = [(chunk, styles, seed, str(images_dir), realism) for chunk in chunks]
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(workers) as pool:
            rendered = [row for result in pool.map(_render_chunk, jobs) for row in result]
    else:
        rendered = [row for job in jobs for row in _render_chunk(job)]
    info = {word_id: (level, w, h) for word_id, level, w, h in rendered}

    # The defects the cleaning chapter must find: one empty image, one missing image.
    train_words = [w for w in plan if styles[w.writer].split == "train" and w.status == "ok"]
    empty, missing = train_words[-1], train_words[-2]
    image_path(images_dir, empty.word_id).write_bytes(b"")
    image_path(images_dir, missing.word_id).unlink()

    lines = [WORDS_HEADER]
    for word in plan:
        level, w, h = info[word.word_id]
        lines.append(f"{word.word_id} {word.status} {level} {word.x} {word.y} {w} {h} {tag_for(word.text)} {word.text}\n")
    (partial / "words.txt").write_text("".join(lines), encoding="utf-8")
    (partial / "forms.txt").write_text(
        "# form-id writer-id (IAM's forms.txt keeps more columns; the loader reads these two)\n"
        + "".join(f"{form} {styles[writer].writer_id}\n" for form, writer in form_writer.items()),
        encoding="utf-8",
    )
    (partial / "splits").mkdir()
    for split in config.SPLITS:
        forms = [form for form, writer in form_writer.items() if styles[writer].split == split]
        (partial / "splits" / f"{split}.txt").write_text(
            f"# {split}: forms of writers (fonts) {sorted({styles[form_writer[f]].font for f in forms})}\n"
            + "".join(f"{form}\n" for form in forms),
            encoding="utf-8",
        )
    meta = {
        "params": params,
        "defects": {"empty_image": empty.word_id, "missing_image": missing.word_id},
        "writers": [asdict(s) for s in styles],
    }
    (partial / SYNTHETIC_MARKER).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if out_dir.exists():
        out_dir.rmdir()  # empty, checked above
    partial.rename(out_dir)
    return find_dataset(out_dir, max_depth=0)


def _remove_partial(partial: Path) -> None:
    """Remove ``<out_dir>.partial``, what an interrupted generation leaves (OSError when it cannot)."""
    if partial.is_symlink() or partial.is_file():
        partial.unlink()
    elif partial.exists():
        shutil.rmtree(partial)


# A rehearsal of the real thing: IAM's word count, writer count and share of "err" rows. The writers
# cycle through the fonts, each with a style of its own; a font's writers all share its split.
IAM_SIZE = {"words": config.IAM_WORD_COUNT, "writers": config.IAM_WRITERS, "err_fraction": config.IAM_ERR_FRACTION}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, help="where to write the mini-IAM (new or empty folder)")
    parser.add_argument("--words", type=int, default=2000, help="number of words (default 2000)")
    parser.add_argument("--seed", type=int, default=42, help="seed: the same seed gives the same dataset")
    parser.add_argument("--writers", type=int, default=None, help="writers (default: one per font)")
    parser.add_argument("--err-fraction", type=float, default=0.03, help="share of rows marked err")
    parser.add_argument("--iam-size", action="store_true", help="IAM's size: sets --words, --writers and --err-fraction")
    args = parser.parse_args(argv)
    if args.iam_size:
        args.words, args.writers, args.err_fraction = IAM_SIZE["words"], IAM_SIZE["writers"], IAM_SIZE["err_fraction"]
    start = time.perf_counter()
    try:
        layout = generate_mini_iam(args.directory, args.words, args.seed, args.writers, args.err_fraction)
    except (OSError, ValueError) as error:  # a folder in use or not writable, a bad option: one line, nothing written
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    print(f"{layout.describe()}: {args.words} words in {seconds:.1f} s ({args.words / seconds:.0f} words/s)")
    return 0


if __name__ == "__main__":
    from utils import cli

    cli.run(main)
