"""Plots that more than one chapter draws."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image


def word_grid(
    images: Sequence[np.ndarray | Path | str],
    titles: Sequence[str],
    cols: int = 4,
    title: str = "",
    cell: tuple[float, float] = (3.0, 1.3),
    frame: bool = False,
):
    """A grid of word images with a caption under each; returns the figure.

    Images are files, or arrays/tensors of [H, W] or [H, W, 1], uint8 (0-255) or float (0-1).
    ``frame`` draws a thin border around each, so that white padding shows where an image ends.
    """
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles):
        if isinstance(image, (str, Path)):
            with Image.open(image) as opened:
                image = np.asarray(opened.convert("L"))
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap="gray", vmin=0, vmax=255 if image.dtype == np.uint8 else 1)
        ax.set_title(caption, fontsize=10)
        if frame:
            ax.set_axis_on()
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig
