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
):
    """A grid of word images (arrays or files) with a caption under each; returns the figure."""
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles):
        if not isinstance(image, np.ndarray):
            with Image.open(image) as opened:
                image = np.asarray(opened.convert("L"))
        ax.imshow(image, cmap="gray", vmin=0, vmax=255 if image.dtype == np.uint8 else 1)
        ax.set_title(caption, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return fig
