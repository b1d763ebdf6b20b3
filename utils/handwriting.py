"""Your own handwriting in a notebook: uploaded photos, a drawing pad, and a photo of a line split into words.

Chapter 04, section 9. What the widgets hand over (file bytes, a PNG data URL) becomes gray images here, one
bad file never stopping the others; :func:`split_line_into_words` cuts a line into word crops for the model.
The widgets need a front end (JupyterLab, Notebook, VS Code, Colab); headless (nbval, ``make run``) they say
so and give nothing, and the rest of the chapter runs.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import anywidget
import cv2
import matplotlib.pyplot as plt
import numpy as np
import traitlets

from utils import config
from utils.preprocess import band_around_peak, check_image_start, decode_image_bytes, ink_mask, remove_ruled_lines, remove_underlines
from utils.setup import has_front_end, in_colab

Box = tuple[int, int, int, int]  # x, y, width, height in pixels


# --- From widget data to images -------------------------------------------------------------------
@dataclass(frozen=True)
class OwnImage:
    """One uploaded or drawn image: gray uint8 [H, W] (paper light), or the reason it could not be read."""

    name: str
    image: np.ndarray | None
    error: str | None = None


def image_from_bytes(name: str, data: object) -> OwnImage:
    """Decode one file's bytes as predict does (its size, its first bytes, formats, EXIF, pixel limit); errors named.

    ``data`` must be bytes-like (bytes, bytearray, memoryview): anything else (None, a str, a number) is this file's
    error, never converted (``bytes(10**9)`` would allocate a gigabyte of zeros).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return OwnImage(name, None, f"{name}: no file content (got {type(data).__name__}, not bytes)")
    data = bytes(data)
    try:
        if not data:
            raise ValueError("the file is empty")
        if len(data) > config.MAX_IMAGE_FILE_BYTES:
            raise ValueError(f"too large: {len(data):,} bytes, more than the limit of {config.MAX_IMAGE_FILE_BYTES:,} "
                             "bytes (config.MAX_IMAGE_FILE_BYTES)")  # fmt: skip
        check_image_start(data)
        gray = decode_image_bytes(data).numpy()[..., 0]
    except ValueError as error:
        return OwnImage(name, None, f"{name}: {error}")
    return OwnImage(name, np.round(gray * 255).astype(np.uint8))


def image_from_data_url(url: str, name: str = "drawing") -> OwnImage:
    """A ``data:image/png;base64,...`` URL (what the drawing pad sends) as an image."""
    header, _, payload = url.partition(",")
    if not header.startswith("data:image/") or ";base64" not in header:
        return OwnImage(name, None, f"{name}: not an image data URL (it starts {url[:30]!r})")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        return OwnImage(name, None, f"{name}: the data URL is not valid base64 ({error})")
    return image_from_bytes(name, data)


def images_from_upload(value: object) -> list[OwnImage]:
    """Every image in what an upload gives, in order.

    Takes ipywidgets 8's ``FileUpload.value`` (dicts with ``name``, ``type``, ``size`` and ``content``), ipywidgets
    7's (a dict name -> {"metadata": ..., "content": ...}), ``google.colab.files.upload()``'s (a dict name -> bytes),
    a data URL, or a list of these. The shapes are told apart by their structure, not by a key's name: a file may be
    called ``content``. An entry that cannot be read (no content, not bytes, not an image) is an :class:`OwnImage`
    with its error; the others are read.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [image_from_data_url(value)]
    if isinstance(value, Mapping):
        if _one_ipywidgets8_file(value):
            return [image_from_bytes(value["name"], value["content"])]
        return [image_from_bytes(str(name), item.get("content") if isinstance(item, Mapping) else item)
                for name, item in value.items()]  # fmt: skip
    if isinstance(value, Iterable):
        return [image for item in value for image in images_from_upload(item)]
    raise TypeError(f"an upload gives files, dicts or data URLs, not {type(value).__name__}")


def _one_ipywidgets8_file(value: Mapping) -> bool:
    """Whether ``value`` is one ipywidgets 8 file: its ``name`` a str and its ``content`` present. In a dict of files
    (ipywidgets 7, Colab) each value is a file, a dict or bytes, never a str: a file named ``name`` holds bytes."""
    return isinstance(value.get("name"), str) and "content" in value


# --- A line into words ----------------------------------------------------------------------------------
def split_line_into_words(gray: np.ndarray) -> list[Box]:
    """The boxes (x, y, w, h) of the words of a line of handwriting, left to right; [] when there is no ink.

    The classic way, with OpenCV, in four steps:

    1. *Ink*: the mask of :func:`utils.preprocess.ink_mask` (the paper made evenly white, then a threshold), without
       ruled and margin lines (:func:`utils.preprocess.remove_ruled_lines`, as the word crop of every reader).
    2. *The writing's band*: the rows where the vertical strokes are densest (the x-height), near the middle of the
       image; its height is the scale of everything that follows. Underlines and lines that stop short of the
       edges, longer than ``config.UNDERLINE_LENGTH`` band heights, are then removed: they join every word.
    3. *Pieces*: the connected blobs that reach into the band (not bits of the lines above and below, nor specks
       of dust), joined where they overlap in x (a dot over its i, an accent over its e).
    4. *Gaps*: the shortest distance between neighbouring pieces. Words are cut at the widest gaps: at the largest
       jump between one gap and the next narrower one, among gaps of ``config.WORD_GAP_MIN`` to
       ``config.WORD_GAP_MAX`` band heights (wider ones always cut, narrower ones never do).
    """
    found = line_pieces(gray)
    if found is None:
        return []
    labels, pieces, spans, gaps, height, _ = found
    threshold = _word_gap_threshold(gaps, height)
    words, columns = [list(pieces[0])], [spans[0]]
    for gap, piece, span in zip(gaps, pieces[1:], spans[1:]):
        if gap >= threshold:
            words.append([])
            columns.append(span)
        words[-1].extend(piece)
        columns[-1] = (columns[-1][0], max(columns[-1][1], span[1]))
    return [pieces_box(labels, word, span) for word, span in zip(words, columns)]


class LinePieces(NamedTuple):
    """What steps 1-3 of :func:`split_line_into_words` find in a line."""

    labels: np.ndarray  # the ink's blobs, labelled (0: paper)
    pieces: list[list[int]]  # the blobs of each piece, pieces left to right
    columns: list[tuple[int, int]]  # each piece's columns [start, end)
    gaps: list[float]  # the distance between neighbouring pieces
    band: int  # the height of the writing's band (the x-height): the scale of everything
    bottom: int  # the band's last row + 1 (the baseline)


def line_pieces(gray: np.ndarray) -> LinePieces | None:
    """Steps 1-3 of :func:`split_line_into_words`, or None when the line has no ink. ``bench/line_split.py`` reads
    the gaps."""
    gray = np.asarray(gray)
    gray = gray[..., 0] if gray.ndim == 3 and gray.shape[-1] == 1 else gray
    if gray.ndim != 2:
        raise ValueError(f"expected a gray image [H, W], got shape {gray.shape}")
    if min(gray.shape) < 3:
        return None
    scale = 255.0 if gray.dtype == np.uint8 else 1.0
    masks = ink_mask(gray.astype(np.float32) / scale)
    if masks is None:
        return None
    ink = remove_ruled_lines(masks[0])
    top, bottom = _writing_band(ink)
    ink = remove_underlines(ink, int(config.UNDERLINE_LENGTH * (bottom - top)))
    labels, pieces, spans = _pieces(ink, top, bottom)
    if not pieces:
        return None
    gaps = [_distance(labels, pieces[k], pieces[k + 1], (spans[k][0], spans[k + 1][1])) for k in range(len(pieces) - 1)]
    return LinePieces(labels, pieces, spans, gaps, bottom - top, bottom)


def _writing_band(ink: np.ndarray) -> tuple[int, int]:
    """Rows [top, bottom) of the line's x-height: where its vertical strokes are densest, the middle rows favoured.

    Only strokes taller than 1.5 pen widths count (an opening with a vertical line), so underlines, ruled lines
    and the flat joins of cursive do not pull the band towards them; a loose crop holds bits of the lines above
    and below, hence the gentle preference for the middle of the inked rows (weight 1 there, 0.5 at the first and
    last). Paper above and below the ink changes nothing: a loose photo of a line gives the band of a tight one.
    """
    distance = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    pen = 2 * float(np.median(distance[distance > 0]))
    strokes = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((max(3, math.ceil(1.5 * pen) + 1), 1), np.uint8))
    if not strokes.any():
        strokes = ink
    inked = np.flatnonzero(strokes.any(axis=1))  # the rows from the first ink to the last: paper around is no scale
    profile = np.count_nonzero(strokes[inked[0] : inked[-1] + 1], axis=1).astype(np.float32)
    rows = np.arange(len(profile))
    middle = 1 - 0.5 * np.abs(rows - len(profile) / 2) / (len(profile) / 2)
    top, bottom = band_around_peak(profile, middle)
    return inked[0] + top, inked[0] + bottom


def _pieces(ink: np.ndarray, top: int, bottom: int) -> tuple[np.ndarray, list[list[int]], list[tuple[int, int]]]:
    """The labels of the ink's blobs, the blobs of the line grouped into pieces, left to right, and each piece's
    columns [start, end).

    A blob belongs to the line when it covers some of the band's rows, at least a third of its own height or of
    the band's, and is not a speck (smaller than a fiftieth of the band's square). Blobs that overlap in x are
    one piece."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    band = bottom - top
    y, h, area = stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_AREA]
    covered = np.minimum(y + h, bottom) - np.maximum(y, top)
    line = (covered > 0) & (covered >= np.minimum(h, band) / 3) & (area >= max(4, 0.02 * band * band))
    blobs = sorted((label for label in range(1, count) if line[label]), key=lambda label: stats[label, cv2.CC_STAT_LEFT])
    pieces: list[list[int]] = []
    spans: list[tuple[int, int]] = []
    for label in blobs:
        start, end = int(stats[label, cv2.CC_STAT_LEFT]), int(stats[label, cv2.CC_STAT_LEFT] + stats[label, cv2.CC_STAT_WIDTH])
        if pieces and start < spans[-1][1]:
            pieces[-1].append(label)
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            pieces.append([label])
            spans.append((start, end))
    return labels, pieces, spans


def _distance(labels: np.ndarray, left: list[int], right: list[int], columns: tuple[int, int]) -> float:
    """The shortest distance in pixels between the ink of two pieces, which lie within ``columns`` [start, end) (not
    the distance between their columns: slanted words overlap in x where the gap between them is wide)."""
    labels = labels[:, columns[0] : columns[1]]
    outside = np.where(np.isin(labels, left), np.uint8(0), np.uint8(255))
    return float(cv2.distanceTransform(outside, cv2.DIST_L2, 5)[np.isin(labels, right)].min())


def _word_gap_threshold(gaps: list[float], band: int) -> float:
    """The gap width from which pieces are words apart (:func:`split_line_into_words`, step 4); inf: one word."""
    low, high = config.WORD_GAP_MIN * band, config.WORD_GAP_MAX * band
    widest = sorted(gaps, reverse=True) + [0.0]
    best, threshold = 0.0, math.inf
    for wide, narrow in zip(widest, widest[1:]):
        if wide < low:
            break
        if narrow >= high:
            continue  # always a cut
        jump = (min(wide, high) + 1) / (narrow + 1)  # a gap past `high` cuts anyway: it is no wider a jump for it
        if jump > best:
            best, threshold = jump, (wide + narrow) / 2
    return threshold


def pieces_box(labels: np.ndarray, blobs: list[int], columns: tuple[int, int]) -> Box:
    """The tight box of the ink of ``blobs``, which lie within ``columns`` [start, end)."""
    ys, xs = np.nonzero(np.isin(labels[:, columns[0] : columns[1]], blobs))
    return columns[0] + int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def crop_words(gray: np.ndarray, boxes: Iterable[Box], margin: int | None = None) -> list[np.ndarray]:
    """The word images inside ``boxes``, each with ``margin`` pixels of paper (default ``config.WORD_MARGIN``), clipped to
    the image; a box that lies outside it gives an empty (0-pixel) crop."""
    margin = config.WORD_MARGIN if margin is None else margin
    gray = np.asarray(gray)
    height, width = gray.shape[:2]
    crops = []
    for x, y, w, h in boxes:  # clipped to the image: a box outside it gives an empty crop, never another part
        x0, x1 = np.clip([x - margin, x + max(w, 0) + margin], 0, width)
        y0, y1 = np.clip([y - margin, y + max(h, 0) + margin], 0, height)
        crops.append(gray[y0:max(y0, y1), x0:max(x0, x1)])
    return crops


def line_from_words(words: Iterable[np.ndarray], gap: int = 40, margin: int = 20) -> np.ndarray:
    """Word images (gray uint8, paper light) side by side on white paper, ``gap`` pixels apart: a line to split."""
    words = [np.asarray(word)[..., 0] if np.asarray(word).ndim == 3 else np.asarray(word) for word in words]
    height = max(word.shape[0] for word in words) + 2 * margin
    width = sum(word.shape[1] for word in words) + gap * (len(words) - 1) + 2 * margin
    line = np.full((height, width), 255, np.uint8)
    x = margin
    for word in words:
        top = (height - word.shape[0]) // 2
        line[top:top + word.shape[0], x:x + word.shape[1]] = np.minimum(line[top:top + word.shape[0], x:x + word.shape[1]], word)
        x += word.shape[1] + gap
    return line


def draw_boxes(gray: np.ndarray, boxes: list[Box], texts: list[str], title: str):
    """The line with a box around each word and what the model read above it; returns the figure."""
    height, width = np.asarray(gray).shape[:2]
    fig, ax = plt.subplots(figsize=(min(16, max(8, width / 60)), max(2.5, min(8, height / 60)) + 0.8))
    ax.imshow(gray, cmap="gray", vmin=0, vmax=255 if np.asarray(gray).dtype == np.uint8 else 1)
    for (x, y, w, h), text in zip(boxes, texts):
        ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, edgecolor="tab:blue", linewidth=2))
        ax.text(x, y - 4, text, color="tab:blue", fontsize=config.FONT_SIZE + 1, va="bottom", weight="bold")
    ax.set(title=title, xticks=[], yticks=[])
    ax.grid(False)
    fig.tight_layout()
    return fig


# --- The widgets -----------------------------------------------------------------------------------------
def widgets_available() -> bool:
    """Whether a person sees this kernel's widgets (:func:`utils.setup.has_front_end`)."""
    return has_front_end()


def no_widgets_message() -> str:
    return ("this kernel runs headless (nbconvert, nbval), so there is nothing to click: open the notebook in "
            "JupyterLab or Colab to upload or draw")  # fmt: skip


def ask_for_images():
    """An upload: Colab's file chooser (it waits for the files), or an ipywidgets button; None when headless."""
    if not widgets_available():
        print(f"No upload: {no_widgets_message()}.")
        return None
    if in_colab():
        from google.colab import files  # only on Colab

        return files.upload()
    import ipywidgets
    from IPython.display import display

    upload = ipywidgets.FileUpload(accept="image/*", multiple=True, description="Choose photos")
    display(upload)
    return upload


def uploaded_images(upload) -> list[OwnImage]:
    """The images of :func:`ask_for_images`' result (a widget or Colab's dict); bad files are printed and left out."""
    value = getattr(upload, "value", upload)
    images = images_from_upload(value)
    for image in images:
        if image.error:
            print(f"not read: {image.error}")
    return [image for image in images if image.image is not None]


_PAD_ESM = """
function render({ model, el }) {
  const [width, height] = [model.get("width"), model.get("height")];
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  canvas.style.cssText = "border:1px solid #888; touch-action:none; cursor:crosshair; background:white";
  const context = canvas.getContext("2d");
  const clear = () => { context.fillStyle = "white"; context.fillRect(0, 0, width, height); };
  clear();
  context.lineCap = "round"; context.lineJoin = "round"; context.strokeStyle = "black";
  context.lineWidth = model.get("stroke");
  let drawing = false;
  const at = (event) => { const r = canvas.getBoundingClientRect();
    return [(event.clientX - r.left) * width / r.width, (event.clientY - r.top) * height / r.height]; };
  canvas.addEventListener("pointerdown", (event) => { drawing = true; canvas.setPointerCapture(event.pointerId);
    const [x, y] = at(event); context.beginPath(); context.moveTo(x, y); context.lineTo(x, y); context.stroke(); });
  canvas.addEventListener("pointermove", (event) => { if (!drawing) return;
    const [x, y] = at(event); context.lineTo(x, y); context.stroke(); });
  const finish = () => { if (!drawing) return; drawing = false;
    model.set("png", canvas.toDataURL("image/png")); model.save_changes(); };
  canvas.addEventListener("pointerup", finish); canvas.addEventListener("pointerleave", finish);
  const button = document.createElement("button");
  button.textContent = "Clear"; button.style.cssText = "display:block; margin-top:4px";
  button.addEventListener("click", () => { clear(); model.set("png", ""); model.save_changes(); });
  el.append(canvas, button);
}
export default { render };
"""


class DrawingPad(anywidget.AnyWidget):
    """A canvas to write a word on with the mouse or a finger; ``png`` holds it as a data URL after each stroke.

    anywidget: one small JavaScript module that JupyterLab 4, Notebook 7, VS Code and Colab all run.
    """

    _esm = _PAD_ESM
    png = traitlets.Unicode("").tag(sync=True)
    width = traitlets.Int(config.DRAWING_PAD_SIZE[0]).tag(sync=True)
    height = traitlets.Int(config.DRAWING_PAD_SIZE[1]).tag(sync=True)
    stroke = traitlets.Int(config.DRAWING_STROKE).tag(sync=True)


def drawing_pad():
    """Show a drawing pad and return it; None (and a message) when headless."""
    if not widgets_available():
        print(f"No drawing pad: {no_widgets_message()}.")
        return None
    if in_colab():
        from google.colab import output  # third-party widgets need Colab's custom widget manager

        output.enable_custom_widget_manager()
    from IPython.display import display

    pad = DrawingPad()
    display(pad)
    return pad


def drawn_images(pad) -> list[OwnImage]:
    """What was drawn on ``pad`` (nothing when it is None or empty)."""
    if pad is None or not getattr(pad, "png", ""):
        return []
    image = image_from_data_url(pad.png, "drawing")
    if image.error:
        print(f"not read: {image.error}")
        return []
    return [image]
