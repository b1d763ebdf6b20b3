"""Shared fixtures: small IAM-like folders built in a temporary directory."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
SHARED_SAMPLE = REPO_ROOT.parent / "shared" / "iam-sample"


def png_bytes(width: int = 40, height: int = 20, mode: str = "L") -> bytes:
    """A real PNG: dark stroke on light paper."""
    array = np.full((height, width), 230, np.uint8)
    array[height // 3 : 2 * height // 3, width // 4 : 3 * width // 4] = 20
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def write_word(images_dir: Path, word_id: str, data: bytes | None) -> Path:
    parts = word_id.split("-")
    path = images_dir / parts[0] / f"{parts[0]}-{parts[1]}" / f"{word_id}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        path.write_bytes(data)
    return path


@pytest.fixture
def make_iam(tmp_path):
    """Build an IAM folder: make_iam(lines, images={word_id: bytes|None}, layout='kaggle'|'official')."""

    def build(lines: list[str], images: dict[str, bytes | None] | None = None, layout: str = "kaggle", root: Path | None = None) -> Path:
        root = root or tmp_path / "dataset"
        base = root / "iam_words" if layout == "kaggle" else root
        images_dir = base / "words"
        images_dir.mkdir(parents=True, exist_ok=True)
        words_file = base / "words.txt" if layout == "kaggle" else base / "ascii" / "words.txt"
        words_file.parent.mkdir(parents=True, exist_ok=True)
        words_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        for word_id, data in (images or {}).items():
            write_word(images_dir, word_id, data)
        return root

    return build
