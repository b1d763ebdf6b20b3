"""Turn a word image of any size and format into the model's 128 x 64 input, and augment it.

Everything on the training path is TensorFlow ops, so ``tf.data`` runs it in parallel:
decode -> one gray channel -> crop to the ink -> contrast -> distortion-free resize + paper-coloured padding.
Pixels end in [0, 1] with paper at 1 (white) and ink towards 0. :func:`augment_batch` draws
random, readable distortions for the training split, deterministically from a seed.
``resize_keep_aspect_numpy`` is the NumPy/OpenCV twin that chapter 02 works through by hand.
The crop to the ink (:func:`crop_to_ink`) is NumPy/OpenCV run through ``tf.numpy_function``.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from utils import config
from utils.setup import native_stderr_muted


# --- Decoding -----------------------------------------------------------------------
_EXIF_ORIENTATION = 0x0112
_TF_FLOAT, _TF_UINT8, _PILLOW = 0, 1, 2  # how decode_gray decodes a format (see _DECODERS)
# TensorFlow decodes WebP to uint8 only; it takes the fourth byte of a 32-bit BMP (unused in most) for alpha and
# fails on 1-bit BMPs, which Pillow reads right. Every other format: TensorFlow, to float, 16 bits kept.
_DECODERS = {"WEBP": _TF_UINT8, "BMP": _PILLOW}
_FORMAT_NAMES = "PNG, JPEG, BMP, GIF or WebP"  # what decode_gray reads
_PILLOW_SIZE = re.compile(r"\((\d+) pixels\)")  # the size in Pillow's DecompressionBombError
_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$")  # TensorFlow's node and op names


_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")  # PNG, JPEG, GIF, BMP; WebP below


def check_image_start(start: bytes) -> None:
    """Raise ValueError unless ``start`` (a file's first 12 bytes or more) opens a format :func:`decode_gray` reads."""
    if not (start.startswith(_SIGNATURES) or (start[:4] == b"RIFF" and start[8:12] == b"WEBP")):
        raise ValueError(f"not a readable image (not {_FORMAT_NAMES}: it starts {bytes(start[:8])!r})")


def image_header(contents: bytes) -> tuple[int, int, int, str]:
    """(width, height, EXIF orientation 1-8, Pillow's format name) of encoded image bytes, from the header only.

    Raises ValueError saying what is wrong when Pillow cannot read the header, or when the image has more
    than ``config.MAX_IMAGE_PIXELS`` pixels: no reader decodes a decompression bomb.
    """
    limit = config.MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(contents)) as image:
            width, height, file_format = image.width, image.height, image.format
            if width * height > limit:
                raise ValueError(
                    f"too large: {width} x {height} pixels ({width * height:,}), "
                    f"more than the limit of {limit:,} (config.MAX_IMAGE_PIXELS)"
                )
            try:  # a PNG's eXIf after the pixels would take a full decode to find: the header's is a phone's
                exif = image.getexif() if file_format != "PNG" or "exif" in image.info else {}
                orientation = int(exif.get(_EXIF_ORIENTATION, 1))
            except Exception:  # noqa: BLE001 - a damaged EXIF block only loses the orientation
                orientation = 1
    except Image.DecompressionBombError as error:  # Pillow's own limit, which may be the same or larger
        found = _PILLOW_SIZE.search(str(error))
        size = f"{int(found.group(1)):,} pixels" if found else str(error)
        raise ValueError(f"too large: {size}, more than the limit of {limit:,} (config.MAX_IMAGE_PIXELS)") from None
    except UnidentifiedImageError:
        raise ValueError(f"not a readable image (not {_FORMAT_NAMES})") from None
    except (OSError, SyntaxError, struct.error, EOFError) as error:
        raise ValueError(f"not a readable image ({type(error).__name__}: {error})") from None
    return width, height, orientation if 1 <= orientation <= 8 else 1, file_format


def _as_bytes(contents: bytes | np.ndarray) -> bytes:
    """The bytes ``tf.numpy_function`` hands over (bytes, or a 0-d array), trailing zero bytes kept."""
    if isinstance(contents, bytes):
        return contents
    contents = np.asarray(contents)
    return contents.tobytes() if contents.dtype.kind == "S" else contents.item()  # .item() of "S" drops trailing zeros


def _header_tensor(contents: bytes | np.ndarray) -> np.ndarray:
    """[width, height, orientation, decoder] for :func:`decode_gray`'s graph (see :func:`image_header`)."""
    width, height, orientation, file_format = image_header(_as_bytes(contents))
    return np.array([width, height, orientation, _DECODERS.get(file_format, _TF_FLOAT)], np.int64)


def _decode_with_pillow(contents: bytes | np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] of what TensorFlow misreads (see ``_DECODERS``): gray, RGB, or RGBA where it is transparent."""
    with Image.open(io.BytesIO(_as_bytes(contents))) as image:
        alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        mode = "RGBA" if alpha else "L" if image.mode in ("1", "L") else "RGB"
        return np.asarray(image.convert(mode)).reshape(image.height, image.width, -1)


def _orient(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """[H, W, C] turned upright by its EXIF orientation (1-8), as ``PIL.ImageOps.exif_transpose`` does."""
    return tf.switch_case(
        orientation - 1,
        [
            lambda: image,  # 1: upright
            lambda: image[:, ::-1],  # 2: mirrored
            lambda: image[::-1, ::-1],  # 3: upside down
            lambda: image[::-1],  # 4: flipped
            lambda: tf.transpose(image, [1, 0, 2]),  # 5: transposed
            lambda: tf.image.rot90(image, 3),  # 6: to be turned a quarter clockwise
            lambda: tf.transpose(image, [1, 0, 2])[::-1, ::-1],  # 7: transversed
            lambda: tf.image.rot90(image, 1),  # 8: to be turned a quarter anticlockwise
        ],
    )


def decode_gray(contents: tf.Tensor | bytes) -> tf.Tensor:
    """Encoded PNG/JPEG/BMP/GIF/WebP bytes -> float32 [H, W, 1] in [0, 1], one gray channel, upright.

    8- and 16-bit images both land in [0, 1]; colour becomes luminance; transparency is
    composited on white paper, so a transparent background does not turn black. The header is read
    first (:func:`image_header`): an unreadable one, or more than ``config.MAX_IMAGE_PIXELS`` pixels,
    raises ValueError (InvalidArgumentError inside a graph) before anything is decoded; a phone
    photo's EXIF orientation is applied. Works eagerly and inside ``tf.data`` (graph mode).
    """
    contents = tf.convert_to_tensor(contents, tf.string)
    header = tf.ensure_shape(tf.numpy_function(_header_tensor, [contents], tf.int64, stateful=False), [4])

    def pillow():
        decoded = tf.numpy_function(_decode_with_pillow, [contents], tf.uint8, stateful=False)
        return tf.image.convert_image_dtype(tf.ensure_shape(decoded, [None, None, None]), tf.float32)

    image = tf.switch_case(
        tf.cast(header[3], tf.int32),
        [
            lambda: tf.io.decode_image(contents, channels=0, dtype=tf.float32, expand_animations=False),
            lambda: tf.image.convert_image_dtype(tf.io.decode_image(contents, channels=0, expand_animations=False), tf.float32),
            pillow,
        ],
    )
    return tf.ensure_shape(_orient(to_gray(image), tf.cast(header[2], tf.int32)), [None, None, 1])


def decode_image_bytes(data: bytes) -> tf.Tensor:
    """Gray float [H, W, 1] of an image file's bytes (:func:`decode_gray`), eagerly; ValueError with the reason
    in one line when it cannot be decoded, for every reader of users' files (predict, uploads in chapter 04).

    TensorFlow's own log line about the failed op (``local_rendezvous``, ``jpeg_mem.cc``) is kept off stderr, and so
    is Pillow's warning about a large image: the limit check that follows says it in one line.
    """
    try:
        with native_stderr_muted(), warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return decode_gray(data)
    except tf.errors.OpError as error:
        message = _TF_NOISE.sub("", error.message.splitlines()[0]) if error.message else type(error).__name__
        raise ValueError(f"not a readable image ({message.strip() or type(error).__name__})") from None


def to_gray(image: tf.Tensor) -> tf.Tensor:
    """Float [H, W, C] in [0, 1] with 1 to 4 channels (gray, gray+alpha, RGB, RGBA) -> [H, W, 1] gray."""
    image = tf.convert_to_tensor(image, tf.float32)
    channels = tf.shape(image)[-1]

    def gray_alpha():  # LA: gray + alpha
        return image[..., :1] * image[..., 1:2] + (1.0 - image[..., 1:2])

    def rgb():
        return tf.image.rgb_to_grayscale(image[..., :3])

    def rgba():
        alpha = image[..., 3:4]
        return tf.image.rgb_to_grayscale(image[..., :3]) * alpha + (1.0 - alpha)

    gray = tf.switch_case(channels - 1, [lambda: image[..., :1], gray_alpha, rgb, rgba])
    return tf.ensure_shape(gray, [None, None, 1])


def read_gray(path: tf.Tensor | str | Path) -> tf.Tensor:
    """Read and decode one image file (see :func:`decode_gray`)."""
    return decode_gray(tf.io.read_file(str(path) if isinstance(path, Path) else path))


# --- Contrast -----------------------------------------------------------------------
# dark_ink: how many times further the lightest pixels must lie above a dark ground than the darkest below it for the
# image to be taken for light ink and inverted. Measured on 113,554 images (synthetic mini-IAM, DHSD, the IAM sample,
# test_data): none of them inverted, while their inversions are found (99.9% of DHSD's, 93% of the synthetic ones').
_LIGHT_INK_RATIO = 3.0

def percentile(image: tf.Tensor, q: float) -> tf.Tensor:
    """The q-th percentile of an image in [0, 1], from a 256-bin histogram (linear time).

    Bin k holds the 8-bit level k, so the answer is exact for images decoded from 8 bits.
    """
    counts = tf.histogram_fixed_width(tf.reshape(image, [-1]), [0.0, 1.0], nbins=256)
    cumulative = tf.cumsum(counts)
    rank = tf.cast(tf.math.ceil(q / 100.0 * tf.cast(cumulative[-1], tf.float32)), tf.int32)
    index = tf.argmax(tf.cast(cumulative >= tf.maximum(rank, 1), tf.int32))
    return tf.cast(index, tf.float32) / 255.0


def normalize_contrast(image: tf.Tensor, gray_level: tf.Tensor | int = -1, mode: str | None = None) -> tf.Tensor:
    """Stretch ink..paper to 0..1 (``mode`` from ``config.CONTRAST``: normalize, binarize or none).

    ``gray_level`` is IAM's per-word threshold (0-255; -1 when unknown). Lighter than it is paper;
    without it, the paper and ink colours are estimated from the image's percentiles.
    """
    mode = mode or config.CONTRAST
    if mode == "none":
        return image
    if mode not in ("normalize", "binarize"):
        raise ValueError(f"contrast mode {mode!r}: expected 'normalize', 'binarize' or 'none'")
    gray_level = tf.cast(gray_level, tf.float32)
    paper = percentile(image, config.PAPER_PERCENTILE)
    ink = percentile(image, config.INK_PERCENTILE)
    known = gray_level > 0
    threshold = tf.where(known, gray_level / 255.0, (ink + paper) / 2.0)
    if mode == "binarize":
        return tf.cast(image > threshold, tf.float32)
    paper = tf.where(known, tf.minimum(paper, threshold), paper)
    stretched = tf.clip_by_value((image - ink) / tf.maximum(paper - ink, 1e-6), 0.0, 1.0)
    blank = paper - ink < 2.0 / 255.0  # nothing written: plain paper, not noise stretched to black
    return tf.where(blank, tf.ones_like(image), stretched)


def dark_ink(image: tf.Tensor) -> tf.Tensor:
    """Gray [H, W, 1] with light ink on a dark ground (a blackboard, a dark-mode screenshot) inverted; others as they are.

    A dark ground: the median of the border pixels and the median of the whole image both lie in the darker
    half, and the lightest pixels (the ``100 - config.INK_PERCENTILE`` percentile) stand more than
    ``_LIGHT_INK_RATIO`` times as far above the border's median as the darkest (``config.INK_PERCENTILE``)
    lie below it. Paper is light: a dim photo of it, a shadow, or the lines of a form box at the border do
    not make an image look inverted.
    """
    image = tf.convert_to_tensor(image, tf.float32)
    border = tf.concat([image[0], image[-1], image[:, 0], image[:, -1]], axis=0)
    ground = percentile(border, 50)
    darkest, lightest = percentile(image, config.INK_PERCENTILE), percentile(image, 100 - config.INK_PERCENTILE)
    inverted = (ground < 0.5) & (percentile(image, 50) < 0.5) & (lightest - ground > _LIGHT_INK_RATIO * (ground - darkest))
    return tf.where(inverted, 1.0 - image, image)


# --- Cropping to the ink ------------------------------------------------------------
# Tuning of crop_to_ink (a change here also changes the pipeline's cache key: it hashes this file).
_INK_FRACTION = 0.4  # ink: darker than paper by this share of the paper-to-darkest-ink contrast
_FAINT_FRACTION = 0.15  # faint ink (hairlines, a light pen) counts where it joins clear ink: hysteresis
_MIN_CONTRAST = 40  # gray levels (of 255) between paper and the darkest ink, below which it is blank
_LINE_FRACTION = 0.6  # a ruled line runs straight over at least this share of the width
_MARGIN_LINE_FRACTION = 0.9  # a vertical (margin) line runs over at least this share of the height
_BAND_LEVEL = 0.5  # the word's band: the rows around the densest one with at least this share of its ink
_UNDERLINE_WOBBLE, _UNDERLINE_THICKNESS = 5, 5  # rows: how far a hand-drawn underline wanders, how thick it is


def ink_mask(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """uint8 masks (255 = ink) of pixels clearly and faintly darker than the paper around them; None when blank.

    The paper's light is estimated with a large morphological closing on a small copy (it keeps the
    steps of hard shadows and removes every stroke narrower than the kernel); dividing by it makes
    the paper evenly white, so one threshold serves a shadowed photo as well as a scan. An image with no pixels
    has no ink (None).
    """
    height, width = gray.shape
    if height == 0 or width == 0:
        return None
    image = np.round(gray * 255.0).astype(np.uint8)
    factor = max(1, math.ceil(max(height, width) / 128))  # the background at most 128 px wide
    small = cv2.resize(image, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
    size = max(3, min(small.shape) // 2) | 1
    background = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    flat = image.astype(np.float32) / np.maximum(background, 1).astype(np.float32)
    flat = np.minimum(flat * 255.0, 255.0).astype(np.uint8)  # the paper is now 255 everywhere
    flat = cv2.GaussianBlur(flat, (3, 3), 0)  # single noisy pixels are not the darkest ink
    cumulative = np.cumsum(np.bincount(flat.ravel(), minlength=256))
    paper, darkest = float(np.searchsorted(cumulative, flat.size / 2)), float(flat.min())  # median, minimum
    if paper - darkest < _MIN_CONTRAST:
        return None
    clear = np.where(flat < paper - _INK_FRACTION * (paper - darkest), np.uint8(255), np.uint8(0))
    faint = np.where(flat < paper - _FAINT_FRACTION * (paper - darkest), np.uint8(255), np.uint8(0))
    return clear, faint


def _straight_lines(mask: np.ndarray, axis: int, fraction: float) -> np.ndarray:
    """The thin straight lines of ``mask`` along ``axis`` (1: horizontal, 0: vertical), as a mask.

    A line is straight over at least ``fraction`` of the image along its axis, crosses it from edge to
    edge and is thin (at most an eighth of the image, or 5 pixels): a pen stroke that is long, straight
    and thick, or that ends inside the image (the tail of an "e"), is no line. The mask is first
    thickened by a pixel on each side, so a line that drifts a pixel or two across the image still counts,
    and gaps of up to 4 pixels are closed, so a faint line that the threshold broke up still counts.
    """
    length = int(math.ceil(fraction * mask.shape[axis]))
    if length < 8:
        return np.zeros_like(mask)
    across, gaps, along = ((3, 1), (1, 5), (1, length)) if axis == 1 else ((1, 3), (5, 1), (length, 1))  # (rows, columns)
    wide = cv2.dilate(mask, np.ones(across, np.uint8))
    wide = cv2.morphologyEx(wide, cv2.MORPH_CLOSE, np.ones(gaps, np.uint8))  # faint lines break up in noise
    lines = cv2.morphologyEx(wide, cv2.MORPH_OPEN, np.ones(along, np.uint8))
    if not cv2.countNonZero(lines):
        return lines
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    size = mask.shape[axis]
    if axis == 1:
        start, extent, thickness = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    else:
        start, extent, thickness = stats[1:, cv2.CC_STAT_TOP], stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
    across = (start <= 0.05 * size) & (start + extent >= 0.95 * size)  # from edge to edge, as printed lines are
    line = np.concatenate([[False], across & (thickness <= max(5, mask.shape[1 - axis] // 8))])
    return np.where(line[labels], np.uint8(255), np.uint8(0))


def remove_ruled_lines(mask: np.ndarray) -> np.ndarray:
    """The mask without ruled lines and, in a loose crop, without vertical (margin) lines.

    Horizontal: thin and straight over ``_LINE_FRACTION`` of the width. Vertical: thin and straight
    over ``_MARGIN_LINE_FRACTION`` of the height, and only where the image is at least four times as
    tall as the word's band: in a tight crop an "l" or the stem of an "A" is just as tall and straight.
    A word that is nothing but such strokes (a dash) is kept as it is.
    """
    lines = _straight_lines(mask, 1, _LINE_FRACTION)
    vertical = _straight_lines(mask, 0, _MARGIN_LINE_FRACTION)
    if vertical.any():
        top, bottom = _word_band(cv2.bitwise_and(mask, cv2.bitwise_not(cv2.bitwise_or(lines, vertical))))
        if mask.shape[0] >= 4 * (bottom - top):
            lines = cv2.bitwise_or(lines, vertical)
    if not lines.any():
        return mask
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))  # and their antialiased edges
    rest = cv2.bitwise_and(mask, cv2.bitwise_not(lines))
    return rest if cv2.countNonZero(rest) >= 0.01 * cv2.countNonZero(mask) else mask


def remove_underlines(mask: np.ndarray, length: int) -> np.ndarray:
    """The mask without thin strokes that run on roughly straight for ``length`` pixels or more: underlines, and ruled
    lines that stop short of the image's edges (which :func:`remove_ruled_lines` keeps). A hand-drawn line may wander
    by ``_UNDERLINE_WOBBLE`` rows; only its own pixels go, so a letter that crosses it (a descender) keeps its stroke.
    A faint line that the threshold broke into dashes stays (closing the dashes found more underlines but split the
    150 development lines of ``bench/line_split.py`` worse: 25% right instead of 29%).
    """
    if length < 8 or length > mask.shape[1]:
        return mask
    wide = cv2.dilate(mask, np.ones((_UNDERLINE_WOBBLE, 1), np.uint8))
    lines = cv2.morphologyEx(wide, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    if not lines.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    thickness = stats[1:, cv2.CC_STAT_AREA] / stats[1:, cv2.CC_STAT_WIDTH]  # on average: a slanted line is thin too
    thin = np.concatenate([[False], thickness < _UNDERLINE_WOBBLE + _UNDERLINE_THICKNESS])
    lines = cv2.bitwise_and(np.where(thin[labels], np.uint8(255), np.uint8(0)), mask)
    return cv2.bitwise_and(mask, cv2.bitwise_not(cv2.dilate(lines, np.ones((3, 3), np.uint8))))


def _word_band(mask: np.ndarray) -> tuple[int, int]:
    """Rows [top, bottom) of the densest band of ink: the main word's body (its x-height, roughly).

    Strokes less than 3 pixels tall (what is left of ruled lines, t-bars) do not count: a thin line
    can hold more ink than any row of the word, but not more than a band of rows.
    """
    strokes = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 1), np.uint8))
    if not strokes.any():
        strokes = mask
    return band_around_peak(np.count_nonzero(strokes, axis=1).astype(np.float32))


def band_around_peak(profile: np.ndarray, weights: np.ndarray | None = None) -> tuple[int, int]:
    """Rows [top, bottom) around the peak of a row profile of ink (smoothed over a twentieth of its rows) that hold
    at least ``_BAND_LEVEL`` of the peak's ink; ``weights`` (one per row) may favour some rows in finding the peak."""
    window = max(3, len(profile) // 20) | 1
    profile = np.convolve(profile, np.ones(window, np.float32) / window, mode="same")
    peak = int(np.argmax(profile if weights is None else profile * weights))
    low = profile < _BAND_LEVEL * profile[peak]
    above, below = np.nonzero(low[:peak][::-1])[0], np.nonzero(low[peak:])[0]
    top = peak - int(above[0]) if len(above) else 0
    bottom = peak + int(below[0]) if len(below) else len(profile)
    return top, max(bottom, top + 1)


def _word_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the main word's ink in a float [H, W] image, or None when there is none."""
    height, width = gray.shape
    masks = ink_mask(gray)
    if masks is None:
        return None
    mask, faint = remove_ruled_lines(masks[0]), masks[1]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(mask, np.ones((3, 3), np.uint8)), connectivity=8)
    if count < 2:
        return None
    stats = stats[1:].astype(np.int64)  # label 0 is the paper
    x, y, w, h = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    ink = np.bincount(labels[mask > 0], minlength=count)[1:]  # each component's own ink, undilated
    # Thin, flat pieces (what is left of printed lines, underlines) must not decide where the word is.
    flat = np.concatenate([[False], (w >= 6 * h) & (h <= max(4, height / 12))])
    top, bottom = _word_band(np.where(flat[labels], np.uint8(0), mask) if flat.any() and not flat[1:].all() else mask)
    band = bottom - top
    # How many of the band's rows each component covers, and how far above or below the band it lies.
    covered = np.clip(np.minimum(y + h, bottom) - np.maximum(y, top), 0, None)
    gap = np.maximum(top - (y + h), y - bottom).clip(0)
    # Pieces of the neighbouring lines: they come in at the top or bottom edge and cover little of the band.
    fragment = ((y == 0) | (y + h == height)) & (covered < 0.5 * band)
    # Underlines and pieces of printed lines (a form's boxes): thin and horizontal, above or below the band.
    fragment |= (covered == 0) & (h - 2 <= max(2, 0.3 * band)) & (w - 2 >= np.maximum(band, 5 * (h - 2)))
    small = ink < max(4, 0.05 * band * band, 0.02 * ink.max())  # specks; but also dots, commas and full stops
    word = ~fragment & ~small & ((covered > 0) | (gap <= 2 * band))
    if not word.any():  # nothing but small ink (a full stop) or nothing but fragments: keep what there is
        keep = ~fragment if (~fragment).any() else np.ones_like(fragment)
    else:  # small ink is part of the word where it is near it: dots, commas, a full stop after it
        y0, y1, x0, x1 = y[word].min(), (y + h)[word].max(), x[word].min(), (x + w)[word].max()
        distance = np.maximum.reduce([y0 - (y + h), y - y1, x0 - (x + w), x - x1, np.zeros_like(y)])
        keep = word | (small & ~fragment & (distance <= band))
    # The components were grown by one pixel on each side (not past the image's edges): undo that.
    y0, y1 = int(y[keep].min()), int((y + h)[keep].max())
    x0, x1 = int(x[keep].min()), int((x + w)[keep].max())
    y0, y1, x0, x1 = y0 + (y0 > 0), y1 - (y1 < height), x0 + (x0 > 0), x1 - (x1 < width)
    # Hysteresis: faint strokes joined to the kept ink (a script font's hairlines, a pen pressing lightly)
    # belong to the word, within the word's rows; printed lines are taken out of them first.
    chosen = np.concatenate([[False], keep])[labels] & (mask > 0)
    faint = remove_ruled_lines(faint)
    faint[:y0], faint[y1:] = 0, 0
    count, faint_labels = cv2.connectedComponents(cv2.dilate(faint, np.ones((3, 3), np.uint8)), connectivity=8)
    joined = np.zeros(count, bool)
    joined[np.unique(faint_labels[chosen])] = True
    joined[0] = False
    columns = np.flatnonzero(np.any(joined[faint_labels] & (faint > 0), axis=0))
    if len(columns):
        x0, x1 = min(x0, int(columns[0])), max(x1, int(columns[-1]) + 1)
    return y0, y1, x0, x1


def crop_to_ink(gray: np.ndarray, margin: int | None = None) -> tuple[int, int, int, int]:
    """The box (y0, y1, x0, x1) of the word in a gray image (float [H, W] or [H, W, 1] in [0, 1], paper light).

    The box holds the ink of the main word, plus ``margin`` pixels (default ``config.INK_CROP_MARGIN``,
    read when called) clipped to the image. Not part of it: ruled lines and margin lines, fragments
    of the lines above and below that come in at the top or bottom edge, underlines and specks far
    from the word. Dots, commas and a lone full stop are kept. A blank image gives the whole frame.
    Images larger than 512 x 128 are analysed at a reduced size, and the box is rounded outwards.
    Plain NumPy and OpenCV (integer-exact operations, so OpenCV 4 and 5 agree). Measured with timeit
    (one OpenCV thread, on a busy 2-core machine): 0.9 ms for a 256 x 64 word, 2.5 ms for a 1000 x 300 photo.
    """
    margin = config.INK_CROP_MARGIN if margin is None else int(margin)
    gray = np.asarray(gray, np.float32)
    if gray.ndim == 3 and gray.shape[-1] == 1:
        gray = gray[..., 0]
    if gray.ndim != 2:
        raise ValueError(f"expected a gray image [H, W] or [H, W, 1], got shape {gray.shape}")
    height, width = gray.shape
    if height < 3 or width < 3:
        return (0, height, 0, width)
    factor = max(1, math.ceil(height / 128), math.ceil(width / 512))
    work = gray
    if factor > 1:
        work = cv2.resize(gray, (max(3, width // factor), max(3, height // factor)), interpolation=cv2.INTER_AREA)
    box = _word_box(work)
    if box is None:
        return (0, height, 0, width)
    scale_y, scale_x = height / work.shape[0], width / work.shape[1]
    y0, y1 = math.floor(box[0] * scale_y), math.ceil(box[1] * scale_y)
    x0, x1 = math.floor(box[2] * scale_x), math.ceil(box[3] * scale_x)
    return (max(0, y0 - margin), min(height, y1 + margin), max(0, x0 - margin), min(width, x1 + margin))


def crop_image_to_ink(image: tf.Tensor) -> tf.Tensor:
    """Gray [H, W, 1] -> its crop to the ink (see :func:`crop_to_ink`): a TensorFlow op for tf.data."""
    image = tf.convert_to_tensor(image, tf.float32)
    box = tf.numpy_function(lambda array: np.asarray(crop_to_ink(array), np.int32), [image], tf.int32, stateful=False)
    box = tf.ensure_shape(box, [4])
    return tf.ensure_shape(image[box[0] : box[1], box[2] : box[3]], [None, None, 1])


# --- Distortion-free resize -----------------------------------------------------------
def fit_size(height: tf.Tensor, width: tf.Tensor, target_height: int, target_width: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The largest (height, width) with the image's aspect ratio that fits the target, at least 1 x 1.

    Small crops are enlarged at most ``config.MAX_UPSCALE`` times, so they stay small.
    """
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    scale = tf.minimum(tf.minimum(target_height / height, target_width / width), config.MAX_UPSCALE)
    new_height = tf.clip_by_value(tf.cast(tf.round(height * scale), tf.int32), 1, target_height)
    new_width = tf.clip_by_value(tf.cast(tf.round(width * scale), tf.int32), 1, target_width)
    return new_height, new_width


def resize_keep_aspect(
    image: tf.Tensor,
    height: int = config.IMAGE_HEIGHT,
    width: int = config.IMAGE_WIDTH,
    position: str | None = None,
    paper: tf.Tensor | float | None = None,
) -> tf.Tensor:
    """Scale [H, W, 1] to fit height x width without distortion and pad with the paper colour.

    ``position`` ("left" or "center", default ``config.PAD_POSITION``) places the word
    horizontally; it is always centred vertically. ``paper`` defaults to the image's own paper
    colour (its ``config.PAPER_PERCENTILE``), never black.
    """
    position = position or config.PAD_POSITION
    if position not in ("left", "center"):
        raise ValueError(f"position {position!r}: expected 'left' or 'center'")
    paper = percentile(image, config.PAPER_PERCENTILE) if paper is None else tf.cast(paper, tf.float32)
    shape = tf.shape(image)
    new_height, new_width = fit_size(shape[0], shape[1], height, width)
    resized = tf.image.resize(image, [new_height, new_width], method="bilinear", antialias=True)
    top = (height - new_height) // 2
    left = 0 if position == "left" else (width - new_width) // 2
    padded = tf.pad(
        resized - paper, [[top, height - new_height - top], [left, width - new_width - left], [0, 0]]
    ) + paper
    return tf.ensure_shape(tf.clip_by_value(padded, 0.0, 1.0), [height, width, 1])


def preprocess_image(
    image: tf.Tensor, gray_level: tf.Tensor | int = -1, contrast: str | None = None, position: str | None = None
) -> tf.Tensor:
    """Gray [H, W, 1] in [0, 1] -> the model's [64, 128, 1] input: dark ink, crop to the ink, contrast, resize and pad.

    Light ink on a dark ground is inverted first (:func:`dark_ink`). The crop (:func:`crop_image_to_ink`)
    happens when ``config.INK_CROP`` is true, read when called.
    """
    image = dark_ink(image)
    if config.INK_CROP:
        image = crop_image_to_ink(image)
    return resize_keep_aspect(normalize_contrast(image, gray_level, contrast), position=position)


def load_image(
    path: tf.Tensor | str | Path, gray_level: tf.Tensor | int = -1, contrast: str | None = None, position: str | None = None
) -> tf.Tensor:
    """Read one file and preprocess it: exactly what training and prediction both do."""
    return preprocess_image(read_gray(path), gray_level, contrast, position)


def to_uint8(image: tf.Tensor) -> tf.Tensor:
    """[0, 1] floats -> uint8, 4x smaller: how the pipeline caches preprocessed images."""
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)


def to_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 -> float32 in [0, 1]: the model's input scale, defined here only."""
    return tf.cast(image, tf.float32) / 255.0


def resize_keep_aspect_numpy(
    gray: np.ndarray, height: int = config.IMAGE_HEIGHT, width: int = config.IMAGE_WIDTH, position: str = "left"
) -> np.ndarray:
    """The same distortion-free resize in NumPy/OpenCV on a uint8 image, as chapter 02 explains it."""
    paper = int(np.percentile(gray, config.PAPER_PERCENTILE))
    scale = min(height / gray.shape[0], width / gray.shape[1], config.MAX_UPSCALE)
    new_height = int(np.clip(round(gray.shape[0] * scale), 1, height))
    new_width = int(np.clip(round(gray.shape[1] * scale), 1, width))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(gray, (new_width, new_height), interpolation=interpolation)
    canvas = np.full((height, width), paper, dtype=np.uint8)
    top = (height - new_height) // 2
    left = 0 if position == "left" else (width - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = resized
    return canvas


# --- Augmentation ---------------------------------------------------------------------
def _draw(seed: tf.Tensor, batch: tf.Tensor, name: str, identity: float, params: dict) -> tf.Tensor:
    """Per-image strengths of one augmentation: drawn in its range with its probability, else identity."""
    probability, (low, high) = params[name]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    applied = tf.random.stateless_uniform([batch], seeds[0]) < probability
    value = tf.random.stateless_uniform([batch], seeds[1], minval=low, maxval=high)
    return tf.where(applied, value, identity)


def _seed_for(seed: tf.Tensor, name: str) -> tf.Tensor:
    """An independent seed per augmentation, so changing one's settings leaves the others' draws alone."""
    salt = zlib.crc32(name.encode("utf-8")) % (2**31)  # stable across runs, unlike hash()
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt)


def _sample_bilinear(images: tf.Tensor, source_y: tf.Tensor, source_x: tf.Tensor, fill: float) -> tf.Tensor:
    """images [B, H, W, 1] sampled at float source coordinates [B, H, W]; outside is ``fill``.

    A border of ``fill`` and clipped coordinates replace bounds checks, and each pixel's four
    neighbours are stacked as channels, so one gather fetches all of them.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    padded = tf.pad(images[..., 0], [[0, 0], [1, 2], [1, 2]], constant_values=fill)
    neighbours = tf.stack(
        [padded[:, :-1, :-1], padded[:, :-1, 1:], padded[:, 1:, :-1], padded[:, 1:, 1:]], axis=-1
    )  # [B, H + 2, W + 2, 4]: the pixel, its right, lower and lower-right neighbours
    source_y = tf.clip_by_value(source_y, -1.0, tf.cast(height, tf.float32))
    source_x = tf.clip_by_value(source_x, -1.0, tf.cast(width, tf.float32))
    y0, x0 = tf.floor(source_y), tf.floor(source_x)
    wy, wx = (source_y - y0)[..., None], (source_x - x0)[..., None]
    image_size = (height + 2) * (width + 2)
    offsets = tf.range(batch)[:, None, None] * image_size  # one flat table for the whole batch
    index = offsets + (tf.cast(y0, tf.int32) + 1) * (width + 2) + tf.cast(x0, tf.int32) + 1
    values = tf.gather(tf.reshape(neighbours, [-1, 4]), index)  # [B, H, W, 4]
    top = values[..., 0:1] * (1.0 - wx) + values[..., 1:2] * wx
    bottom = values[..., 2:3] * (1.0 - wx) + values[..., 3:4] * wx
    return top * (1.0 - wy) + bottom * wy


def _upsampling_matrix(size: int, target: tf.Tensor) -> tf.Tensor:
    """[target, size] matrix of bicubic upsampling: resizing a vector is a matrix product."""
    identity = tf.eye(size)[None, :, None, :]  # each basis vector as one channel of a size x 1 image
    return tf.image.resize(identity, [target, 1], method="bicubic")[0, :, 0, :]


def _ink_extent(ink: tf.Tensor, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """First and last index where ``ink`` [B, size] is true; the whole range where there is none."""
    any_ink = tf.reduce_any(ink, axis=1)
    first = tf.cast(tf.argmax(tf.cast(ink, tf.int32), axis=1), tf.float32)
    last = tf.cast(size - 1, tf.float32) - tf.cast(tf.argmax(tf.cast(ink[:, ::-1], tf.int32), axis=1), tf.float32)
    return tf.where(any_ink, first, 0.0), tf.where(any_ink, last, tf.cast(size - 1, tf.float32))


def _geometry(images: tf.Tensor, seed: tf.Tensor, params: dict) -> tf.Tensor:
    """Shear, rotation, scale, shift and an elastic grid distortion, in one resampling.

    The word's ink box is kept inside the frame: where a draw would push a letter out (and the
    label would still claim it), the word is shrunk and moved back just enough.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    shear = _draw(_seed_for(seed, "shear"), batch, "shear", 0.0, params)
    angle = _draw(_seed_for(seed, "rotation"), batch, "rotation", 0.0, params) * (math.pi / 180.0)
    scale = _draw(_seed_for(seed, "scale"), batch, "scale", 1.0, params)
    shift = tf.stack(
        [_draw(_seed_for(seed, "shift_x"), batch, "shift_x", 0.0, params),
         _draw(_seed_for(seed, "shift_y"), batch, "shift_y", 0.0, params)], axis=1
    )  # [B, 2] as (x, y)
    # Forward map around the centre c: p -> c + shift + A (p - c), with A = scale * shear . rotate.
    cos, sin = tf.cos(angle), tf.sin(angle)
    a = tf.reshape(tf.stack([cos - shear * sin, -sin - shear * cos, sin, cos], axis=1), [-1, 2, 2]) * scale[:, None, None]
    size = tf.cast(tf.stack([width, height]), tf.float32)  # (x, y)
    centre = (size - 1.0) / 2.0
    # Where the corners of the ink box land; shrink and move the word so that they stay inside.
    x0, x1 = _ink_extent(tf.reduce_any(images[..., 0] < 0.5, axis=1), width)
    y0, y1 = _ink_extent(tf.reduce_any(images[..., 0] < 0.5, axis=2), height)
    corners = tf.stack([tf.stack([x, y], axis=1) for x in (x0, x1) for y in (y0, y1)], axis=1)  # [B, 4, 2]
    moved = tf.einsum("bij,bkj->bki", a, corners - centre) + shift[:, None, :]  # relative to the centre
    low, high = tf.reduce_min(moved, axis=1), tf.reduce_max(moved, axis=1)  # [B, 2]
    fit = tf.reduce_min(tf.minimum(1.0, (size - 1.0) / tf.maximum(high - low, 1e-3)), axis=1)  # [B]
    low, high = low * fit[:, None], high * fit[:, None]
    back = tf.maximum(0.0, -centre - low) - tf.maximum(0.0, high - centre)
    a *= fit[:, None, None]
    shift = shift * fit[:, None] + back
    # Output pixel q comes from source c + A^-1 (q - c - shift).
    inverse = tf.linalg.inv(a)
    grid_y, grid_x = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    qx = grid_x[None] - centre[0] - shift[:, 0, None, None]
    qy = grid_y[None] - centre[1] - shift[:, 1, None, None]
    source_x = centre[0] + inverse[:, 0, 0, None, None] * qx + inverse[:, 0, 1, None, None] * qy
    source_y = centre[1] + inverse[:, 1, 0, None, None] * qx + inverse[:, 1, 1, None, None] * qy
    # Elastic: a coarse grid of random displacements, smoothly interpolated to every pixel.
    amount = _draw(_seed_for(seed, "elastic"), batch, "elastic", 0.0, params)
    rows, cols = config.ELASTIC_GRID
    coarse = tf.random.stateless_normal([batch, rows, cols, 2], _seed_for(seed, "elastic-field"))
    coarse *= amount[:, None, None, None]
    field = tf.einsum("hr,brcd,wc->bhwd", _upsampling_matrix(rows, height), coarse, _upsampling_matrix(cols, width))
    return _sample_bilinear(images, source_y + field[..., 0], source_x + field[..., 1], fill=1.0)


def _gaussian_blur(images: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    """Blur each image with its own sigma: the batch becomes the channels of one depthwise conv."""
    radius = 2
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel_1d = tf.exp(-(taps[None, :] ** 2) / (2.0 * tf.maximum(sigma, 1e-3)[:, None] ** 2))
    kernel_1d /= tf.reduce_sum(kernel_1d, axis=1, keepdims=True)  # [B, 5]
    channels = tf.transpose(images, [3, 1, 2, 0])  # [1, H, W, B]
    padded = tf.pad(channels, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    rows = tf.transpose(kernel_1d)[:, None, :, None]  # [5, 1, B, 1]
    cols = tf.transpose(kernel_1d)[None, :, :, None]  # [1, 5, B, 1]
    blurred = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    blurred = tf.nn.depthwise_conv2d(blurred, cols, [1, 1, 1, 1], "VALID")
    return tf.transpose(blurred, [3, 1, 2, 0])


def augment_batch(images: tf.Tensor, seed: tf.Tensor, params: dict | None = None) -> tf.Tensor:
    """Random, readable distortions of a batch [B, 64, 128, 1] in [0, 1] (paper 1).

    Deterministic for ``seed`` (a shape-[2] integer tensor): the same seed gives the same
    result. Probabilities and ranges come from ``config.AUGMENTATION`` unless ``params`` is given.
    """
    params = params or config.AUGMENTATION
    seed = tf.cast(seed, tf.int64)
    batch = tf.shape(images)[0]
    images = _geometry(tf.cast(images, tf.float32), seed, params)
    stroke = _draw(_seed_for(seed, "stroke"), batch, "stroke", 0.0, params)[:, None, None, None]
    thicker = -tf.nn.max_pool2d(-images, 3, 1, "SAME")  # erosion of the paper = dilation of the ink
    thinner = tf.nn.max_pool2d(images, 3, 1, "SAME")
    images = images + tf.maximum(stroke, 0.0) * (thicker - images) + tf.maximum(-stroke, 0.0) * (thinner - images)
    sigma = _draw(_seed_for(seed, "blur"), batch, "blur", 0.0, params)
    images = _gaussian_blur(images, sigma)
    contrast = _draw(_seed_for(seed, "contrast"), batch, "contrast", 1.0, params)[:, None, None, None]
    images = 1.0 - (1.0 - images) * contrast
    images += _draw(_seed_for(seed, "brightness"), batch, "brightness", 0.0, params)[:, None, None, None]
    noise = _draw(_seed_for(seed, "noise"), batch, "noise", 0.0, params)[:, None, None, None]
    uniform = tf.random.stateless_uniform(tf.shape(images), _seed_for(seed, "noise-pixels"), minval=-1.0, maxval=1.0)
    images += noise * math.sqrt(3.0) * uniform  # uniform noise with standard deviation `noise`: cheaper than normal
    return tf.clip_by_value(images, 0.0, 1.0)
