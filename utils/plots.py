"""The series' plot style, saving figures, and plots that more than one chapter draws."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import seaborn as sns
from PIL import Image

from utils import config


def use_series_style() -> None:
    """One style for every chapter, readable on a projector: 13 pt text, a colour-blind-safe palette."""
    sns.set_theme(style="whitegrid", palette=config.PALETTE, font_scale=config.FONT_SIZE / 10)
    plt.rcParams.update({
        "figure.dpi": config.SCREEN_DPI,
        "savefig.dpi": config.FIGURE_DPI,
        "font.size": config.FONT_SIZE,
        "axes.titlesize": 1.2 * config.FONT_SIZE,
        "axes.labelsize": config.FONT_SIZE,
        "xtick.labelsize": config.FONT_SIZE,
        "ytick.labelsize": config.FONT_SIZE,
        "legend.fontsize": config.FONT_SIZE,
        "legend.title_fontsize": config.FONT_SIZE,
        "figure.titlesize": 1.25 * config.FONT_SIZE,
    })


def figures_dir() -> Path:
    """Where save_fig writes: artifacts/figures/ (artifacts/quick/figures/ in quick mode)."""
    return config.artifacts_dir() / config.FIGURES_DIR


def save_fig(name: str, fig=None, tight: bool = True) -> Path:
    """Save ``fig`` (default: the current figure) as artifacts/figures/<name>.png at 300 dpi; returns the path.

    As handson-ml3 does, so that a teacher can put any figure of a chapter on a slide. ``name`` is a
    short slug such as ``"04_curves"``; the same name replaces the same figure on the next run.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"figure name {name!r}: use letters, digits, '_', '-' or '.' only (it becomes a file name)")
    fig = fig if fig is not None else plt.gcf()
    folder = figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=config.FIGURE_DPI, bbox_inches="tight")
    return path


def plain_log_axis(axis, unit: str = "") -> None:
    """Label a log-scale axis 1, 2, 5, 10, 20, 50, ... (with ``unit``, such as "%"), instead of 2 x 10^1.

    Matplotlib labels a log axis that spans less than a decade with its minor ticks in scientific
    notation, beside plain major labels; on a projector a class reads plain numbers at a glance.
    """
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}{unit}"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def word_grid(
    images: Sequence[np.ndarray | Path | str],
    titles: Sequence[str],
    cols: int = 4,
    title: str = "",
    cell: tuple[float, float] = (3.0, 1.3),
    frame: bool = False,
    caption_size: float = config.FONT_SIZE - 1,
    colors: Sequence[str | None] | None = None,
):
    """A grid of word images with a caption under each; returns the figure.

    Images are files, or arrays/tensors of [H, W] or [H, W, 1], uint8 (0-255) or float (0-1).
    ``frame`` draws a thin border around each, so that white padding shows where an image ends.
    ``colors`` gives each caption a colour (None: the default), e.g. to mark misreads.
    """
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    colors = list(colors) if colors is not None else [None] * len(images)
    for ax, image, caption, color in zip(axes.flat, images, titles, colors):
        if isinstance(image, (str, Path)):
            with Image.open(image) as opened:
                image = np.asarray(opened.convert("L"))
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap="gray", vmin=0, vmax=255 if image.dtype == np.uint8 else 1)
        ax.set_title(caption, fontsize=caption_size, **({"color": color} if color else {}))
        if frame:
            ax.set_axis_on()
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- Chapter 04: the model, its alignment, files as they are on disk ----------------------------------
def _block_of(layer_name: str) -> str:
    """The block a CRNN layer belongs to, for the diagram: conv1..conv7 with their norm/ReLU/pool, then the head."""
    if layer_name == "image":
        return "input"
    match = re.fullmatch(r"(?:conv|bn|relu)(\d+)", layer_name)
    if match:
        return f"conv{match.group(1)}"
    if layer_name.startswith("pool"):
        return ""  # belongs to the convolution before it
    return {"columns_first": "to sequence", "map_to_sequence": "to sequence", "dropout1": "bilstm1",
            "dropout2": "bilstm2"}.get(layer_name, layer_name)  # fmt: skip


def crnn_blocks(model) -> list[dict]:
    """The CRNN as blocks from input to logits: name, the layers in it, its output shape, its parameters."""
    blocks: list[dict] = []
    for layer in model.layers:
        block = _block_of(layer.name) or blocks[-1]["name"]
        if not blocks or blocks[-1]["name"] != block:
            blocks.append({"name": block, "layers": [], "shape": None, "parameters": 0})
        blocks[-1]["layers"].append(type(layer).__name__)
        blocks[-1]["shape"] = tuple(layer.output.shape[1:])
        blocks[-1]["parameters"] += layer.count_params()
    return blocks


def model_diagram(model, title: str = "The CRNN, block by block: the shape after each"):
    """A box per block from the input image to the logits, with its layers and output shape; returns the figure."""
    blocks = crnn_blocks(model)
    fig, ax = plt.subplots(figsize=(15, 0.78 * len(blocks) + 0.8))
    palette = sns.color_palette(config.PALETTE)
    kinds = {"input": palette[7], "conv": palette[0], "to sequence": palette[2], "bilstm": palette[1], "logits": palette[3]}
    for row, block in enumerate(blocks):
        y = len(blocks) - 1 - row
        kind = next(key for key in kinds if block["name"].startswith(key))
        ax.add_patch(plt.Rectangle((0, y + 0.12), 4.2, 0.76, facecolor=kinds[kind], alpha=0.35, edgecolor="black"))
        ax.text(0.15, y + 0.5, block["name"], va="center", fontsize=config.FONT_SIZE, weight="bold")
        layers_text = " + ".join(name.replace("Conv2D", "Conv").replace("BatchNormalization", "BatchNorm")
                                 .replace("MaxPooling2D", "MaxPool").replace("Bidirectional", "BiLSTM")
                                 for name in block["layers"] if name != "InputLayer")  # fmt: skip
        ax.text(1.6, y + 0.5, layers_text or "a gray word image", va="center", fontsize=config.FONT_SIZE - 1)
        shape = " x ".join(str(size) for size in block["shape"])
        ax.text(4.4, y + 0.5, shape, va="center", fontsize=config.FONT_SIZE, family="monospace")
        ax.text(6.4, y + 0.5, f"{block['parameters']:,} parameters" if block["parameters"] else "", va="center",
                fontsize=config.FONT_SIZE - 1)  # fmt: skip
        if row < len(blocks) - 1:
            ax.annotate("", xy=(0.9, y + 0.1), xytext=(0.9, y + 0.14 - 0.3), arrowprops={"arrowstyle": "<-"})
    ax.text(4.4, len(blocks) + 0.05, "output shape", fontsize=config.FONT_SIZE, style="italic")
    ax.set(xlim=(0, 8.6), ylim=(-0.1, len(blocks) + 0.5), title=title)
    ax.axis("off")
    fig.tight_layout()
    return fig


def ctc_alignment(images: Sequence[np.ndarray], logits: np.ndarray, vocabulary, titles: Sequence[str]):
    """Word images cut into the model's 31 columns, with each step's most likely symbol under it (``-`` the blank).

    What CTC learns to do: early in training every step says blank; trained, the letters appear under
    the columns where they are written, once or repeated, with blanks between. Each image is drawn at its
    true aspect ratio, its rows with ink only (a wide word fills few of the 64): the letters look as the
    model sees them, not stretched to the figure's width. Returns the figure.
    """
    from utils.preprocess import crop_to_ink  # TensorFlow comes with it: only the chapters that train need this plot

    steps = logits.shape[1]
    images = [np.asarray(image)[..., 0] if np.ndim(image) == 3 else np.asarray(image) for image in images]
    crops = [image[slice(*crop_to_ink(image)[:2])] for image in images]  # the rows with ink, the full width
    symbol_row = 1.2  # the row of symbols under each image, in column widths
    heights = [crop.shape[0] * steps / crop.shape[1] + symbol_row for crop in crops]  # in column widths
    column = 0.93 * 15 / steps  # inches per column of a 15-inch figure: the axes fill most of its width
    fig, axes = plt.subplots(len(crops), 1, figsize=(15, sum(column * h + 0.7 for h in heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, crop, height, step_logits, title in zip(axes[:, 0], crops, heights, logits, titles):
        image_height = height - symbol_row
        ax.imshow(crop, cmap="gray", vmin=0, vmax=1, extent=(0, steps, image_height, 0), aspect="equal")
        best = np.argmax(step_logits, axis=-1)
        for step, token in enumerate(best):
            symbol = "-" if token == 0 else vocabulary.decode([int(token)])
            ax.text(step + 0.5, image_height + symbol_row / 2, symbol, ha="center", va="center", family="monospace",
                    fontsize=config.FONT_SIZE + 1, color="gray" if token == 0 else "black",
                    weight="normal" if token == 0 else "bold")  # fmt: skip
        for step in range(1, steps):
            ax.axvline(step, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax.set(xlim=(0, steps), ylim=(height, 0), xticks=[], yticks=[], title=title)
        ax.grid(False)
    fig.tight_layout()
    return fig


def as_on_disk(path: Path | str) -> np.ndarray:
    """An image file as a viewer shows it: RGB, 16-bit scaled to 8, transparency over a gray checkerboard.

    The model's input is gray and normalised; this is the file before any of that, to show them side by side.
    """
    with Image.open(path) as opened:
        image = opened
        if image.mode in ("I;16", "I;16B", "I"):
            image = Image.fromarray((np.asarray(image, dtype=np.float64) / 257).clip(0, 255).astype(np.uint8))
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
    height, width = rgba.shape[:2]
    squares = (np.add.outer(np.arange(height) // 8, np.arange(width) // 8) % 2) * 40 + 200
    alpha = rgba[..., 3:] / 255
    rgb = rgba[..., :3] * alpha + squares[..., None] * (1 - alpha)
    return rgb.round().astype(np.uint8)
