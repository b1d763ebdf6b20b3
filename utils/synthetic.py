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
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from utils import config
from utils.iam import SYNTHETIC_MARKER, IamLayout, find_dataset, image_path

GENERATOR_VERSION = 1  # bump when the output for a given seed changes
WORDS_PER_LINE = (3, 9)
LINES_PER_FORM = (6, 11)
PUNCTUATION_TOKENS = {",": 0.42, ".": 0.38, "-": 0.03, "'": 0.03, '"': 0.05, "!": 0.02, "?": 0.02,
                      ";": 0.015, ":": 0.015, "(": 0.01, ")": 0.01, "&": 0.005, "#": 0.005}  # fmt: skip
# How often a token is punctuation, a number, all capitals or capitalised (close to IAM's mix).
TOKEN_MIX = {"punctuation": 0.10, "number": 0.015, "upper": 0.015, "capitalised": 0.12}
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
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


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
def render_word(text: str, style: WriterStyle, rng: np.random.Generator, err: bool = False) -> np.ndarray:
    """A gray uint8 image of ``text`` in ``style``, with the variation of a real hand.

    Size, slant, stroke width, baseline wobble, ink and paper tone, noise and blur vary
    per word around the writer's habits. ``err`` mimics a bad segmentation: a cut word.
    """
    font_path = str(config.FONTS_DIR / style.font)
    size = int(round(100 * style.x_height * rng.uniform(0.88, 1.12) / _x_height(font_path)))
    font = _font(font_path, max(size, 8))
    left, top, right, bottom = font.getbbox(text)
    pad = 12 + size // 3
    width, height = right - left + 2 * pad, bottom - top + 2 * pad
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), text, font=font, fill=255)
    ink = np.asarray(canvas, dtype=np.uint8)

    # Slant: shear about the vertical centre; the canvas grows to keep the word.
    shear = style.slant + rng.normal(0, 0.05)
    extra = int(abs(shear) * height) + 2
    matrix = np.float32([[1, -shear, extra / 2 + shear * height / 2], [0, 1, 0]])
    ink = cv2.warpAffine(ink, matrix, (width + extra, height), flags=cv2.INTER_LINEAR, borderValue=0)

    # Baseline wobble and a little elastic drift: a smooth vertical displacement along x.
    h, w = ink.shape
    xs = np.arange(w, dtype=np.float32)
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(40, 120)
    dy = style.wobble * rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * xs / period + phase)
    map_x, map_y = np.meshgrid(xs, np.arange(h, dtype=np.float32))
    ink = cv2.remap(ink, map_x, map_y + dy[None, :].astype(np.float32), cv2.INTER_LINEAR, borderValue=0)

    # Stroke width: the pen of the writer, sometimes thinner or thicker for one word.
    stroke = style.stroke + int(rng.choice([-1, 0, 0, 0, 1]))
    kernel = np.ones((2, 2), np.uint8)
    if stroke > 0:
        ink = cv2.dilate(ink, kernel, iterations=min(stroke, 2))
    elif stroke < 0 and size > 30:
        ink = cv2.erode(ink, kernel, iterations=1)

    # Crop to the ink with a small margin, as IAM's word boxes are.
    ys, xs_ = np.nonzero(ink > 40)
    if len(xs_):
        margin = int(rng.integers(2, 8))
        y0, y1 = max(ys.min() - margin, 0), min(ys.max() + margin + 1, h)
        x0, x1 = max(xs_.min() - margin, 0), min(xs_.max() + margin + 1, w)
        if err:  # a bad segmentation: a slice of the word is lost
            cut = int((x1 - x0) * rng.uniform(0.15, 0.35))
            x0, x1 = (x0 + cut, x1) if rng.random() < 0.5 else (x0, x1 - cut)
        ink = ink[y0:y1, x0:x1]

    # Paper and ink tones, scanner noise and blur.
    alpha = ink.astype(np.float32) / 255.0
    paper = rng.uniform(215, 255)
    ink_tone = np.clip(style.ink + rng.normal(0, 12), 0, 140)
    image = paper * (1 - alpha) + ink_tone * alpha
    image += rng.normal(0, rng.uniform(0, 6), image.shape)
    sigma = rng.uniform(0, 0.9)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    return np.clip(image, 0, 255).astype(np.uint8)


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


def _render_chunk(args: tuple[list[_Word], list[WriterStyle], int, str]) -> list[tuple[str, int, int, int]]:
    """Render and write a chunk of words; returns (word id, gray level, width, height)."""
    words, styles, seed, images_dir = args
    out = []
    for word in words:
        rng = np.random.default_rng([seed, 2, int(word.word_id[1:3]), int(word.word_id[4:7]),
                                     int(word.word_id[-5:-3]), int(word.word_id[-2:])])  # fmt: skip
        image = render_word(word.text, styles[word.writer], rng, err=word.status == "err")
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
) -> IamLayout:
    """Write a mini-IAM of ``words`` words into ``out_dir`` and return its layout.

    An existing mini-IAM made with the same parameters is reused (a cache); any other
    non-empty folder is left untouched and raises FileExistsError.
    """
    out_dir = Path(out_dir)
    params = {"version": GENERATOR_VERSION, "words": words, "seed": seed, "writers": writers, "err_fraction": err_fraction}
    marker = out_dir / SYNTHETIC_MARKER
    if marker.is_file():
        if json.loads(marker.read_text(encoding="utf-8")).get("params") == params:
            return find_dataset(out_dir, max_depth=0)
        raise FileExistsError(f"{out_dir} holds a mini-IAM made with other parameters ({marker}); choose another folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty and is not a mini-IAM: refusing to write into it")
    if words < 10:
        raise ValueError("a mini-IAM needs at least 10 words")

    styles = make_writers(seed, writers)
    plan, form_writer = _plan(words, styles, seed, err_fraction)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    images_dir = partial / "words"
    images_dir.mkdir(parents=True)

    workers = workers or min(os.cpu_count() or 1, 8)
    chunks = [plan[i : i + 250] for i in range(0, len(plan), 250)]
    jobs = [(chunk, styles, seed, str(images_dir)) for chunk in chunks]
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
    except (FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    print(f"{layout.describe()}: {args.words} words in {seconds:.1f} s ({args.words / seconds:.0f} words/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
