"""Your own handwriting in a notebook: uploaded photos, a drawing pad, and a photo of a line split into words.

Chapter 04, section 9. What the widgets hand over (file bytes, a PNG data URL) becomes gray images here, one
bad file never stopping the others; :func:`split_line_into_words` cuts a line into word crops for the model.
The widgets need a front end (JupyterLab, Notebook, VS Code, Colab); headless (nbval, ``make run``) they say
so and give nothing, and the rest of the chapter runs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import anywidget
import cv2
import matplotlib.pyplot as plt
import numpy as np
import traitlets

from utils import config
from utils.preprocess import check_image_start, decode_image_bytes, ink_mask
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

    The classic way, with OpenCV and a *projection profile*: the ink mask of :func:`utils.preprocess.ink_mask`
    (the paper made evenly white, then a threshold), specks removed, then the runs of columns without ink. A
    run wider than ``config.WORD_GAP`` of the writing's height (the rows that hold most of the ink) separates
    two words; narrower runs are gaps between the letters of one word.
    """
    gray = np.asarray(gray)
    gray = gray[..., 0] if gray.ndim == 3 and gray.shape[-1] == 1 else gray
    if gray.ndim != 2:
        raise ValueError(f"expected a gray image [H, W], got shape {gray.shape}")
    scale = 255.0 if gray.dtype == np.uint8 else 1.0
    masks = ink_mask(gray.astype(np.float32) / scale)
    if masks is None:
        return []
    ink = _without_specks(masks[1])  # the faint mask: a light word beside a dark one is still ink
    if not ink.any():
        return []
    weights = np.cumsum(ink.sum(axis=1)) / ink.sum()
    text_height = np.searchsorted(weights, 0.95) - np.searchsorted(weights, 0.05) + 1  # the band of most ink
    columns = np.flatnonzero(ink.any(axis=0))
    cuts = np.flatnonzero(np.diff(columns) - 1 >= config.WORD_GAP * text_height)
    starts = np.concatenate([[columns[0]], columns[cuts + 1]])
    ends = np.concatenate([columns[cuts] + 1, [columns[-1] + 1]])
    return [_ink_box(ink, int(x0), int(x1)) for x0, x1 in zip(starts, ends)]


def _without_specks(ink: np.ndarray) -> np.ndarray:
    """The ink mask without blobs of fewer than ``config.SPECK_PIXELS`` pixels far from any other ink (dust, noise).

    A blob counts as a speck only when it is small *and* alone: the dot of an i or a full stop sits next to
    a letter. Alone means no large blob within 4 pixels.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= config.SPECK_PIXELS
    big[0] = False
    near = cv2.dilate((np.isin(labels, np.nonzero(big)[0])).astype(np.uint8), np.ones((9, 9), np.uint8))
    keep = big.copy()
    for label in range(1, count):
        if not big[label]:
            x, y, w, h = stats[label, :4]
            keep[label] = near[y:y + h, x:x + w].any()
    return np.where(keep[labels], np.uint8(255), np.uint8(0))


def _ink_box(ink: np.ndarray, x0: int, x1: int) -> Box:
    """The tight box of the ink between columns x0 and x1 (exclusive), which hold some."""
    ys, xs = np.nonzero(ink[:, x0:x1])
    return x0 + int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


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
