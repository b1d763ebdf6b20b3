"""The series' plot style, saving figures, and plots that more than one chapter draws."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
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
        ax.set_title(caption, fontsize=caption_size, color=color)
        if frame:
            ax.set_axis_on()
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
