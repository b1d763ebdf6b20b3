"""The bundled handwriting fonts: licensed, listed, complete for IAM's charset, with real lower case."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from utils import config, fonts_check, synthetic

FONTS = synthetic.font_paths()
README = config.FONTS_DIR / "README.md"
LICENCES = {"OFL-1.1": "Open Font License", "Apache-2.0": "Apache License"}


def _readme_rows() -> dict[str, list[str]]:
    """The font table of utils/fonts/README.md: file stem -> cells (family, file, licence, copyright, source)."""
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # "\|" is a "|" in a cell
        match = re.fullmatch(r"`([\w-]+)\.woff`", cells[1]) if len(cells) == 5 else None
        if match:
            rows[match.group(1)] = cells
    return rows


def test_there_are_enough_fonts_for_every_split():
    assert len(FONTS) >= 100
    stems = {font.stem for font in FONTS}
    held_out = set(config.SYNTHETIC_VALIDATION_FONTS) | set(config.SYNTHETIC_TEST_FONTS)
    assert held_out <= stems, f"held-out fonts not bundled: {held_out - stems}"
    assert not set(config.SYNTHETIC_VALIDATION_FONTS) & set(config.SYNTHETIC_TEST_FONTS)
    assert len(stems - held_out) >= 3 * len(held_out)


@pytest.mark.parametrize("font", FONTS, ids=lambda path: path.stem)
def test_font_has_its_licence_text_and_a_readme_row(font):
    rows = _readme_rows()
    assert font.stem in rows, f"no row for {font.name} in {config.display_path(README)}"
    family, _, licence, copyright_line, source = rows[font.stem]
    assert licence in LICENCES
    assert family and copyright_line
    assert f"@fontsource/{font.stem}@" in source and f"files/{font.stem}-latin-" in source
    text = (config.FONTS_DIR / "licenses" / f"{font.stem}.txt").read_text(encoding="utf-8")
    assert LICENCES[licence] in text


def test_readme_lists_only_bundled_fonts_sorted_by_family():
    rows = _readme_rows()
    assert set(rows) == {font.stem for font in FONTS}
    families = [cells[0] for cells in rows.values()]
    assert families == sorted(families, key=str.lower)
    licences = {path.stem for path in (config.FONTS_DIR / "licenses").glob("*.txt")}
    assert licences == set(rows), "a licence file without its font, or the reverse"


@pytest.mark.parametrize("font", FONTS, ids=lambda path: path.stem)
def test_font_draws_iams_charset_with_distinct_case(font):
    assert fonts_check.font_problems(font) == []


def test_missing_glyphs_are_found():
    # The fonts are Latin subsets: Cyrillic, CJK and Devanagari fall on ".notdef" (a box, or nothing).
    font = config.FONTS_DIR / "caveat.woff"
    assert fonts_check.missing_characters(font, "aЖ一क") == ["Ж", "一", "क"]


def _capitals_for_lower_case(scale: float):
    """A render_glyph that draws each small letter as its capital at ``scale`` of the size: a small-caps font."""
    real = fonts_check.render_glyph

    def render(path, char, size=fonts_check.RENDER_SIZE):
        if not char.islower():
            return real(path, char, size)
        return real(path, char.upper(), round(size * scale))  # the same baseline row: only the size changes

    return render


@pytest.mark.parametrize("scale", [1.0, 0.8, 0.6])
def test_small_capitals_are_rejected(monkeypatch, scale):
    # Permanent Marker, Rock Salt and Walter Turncoat (small capitals at 0.8, 0.6 and 0.7 of the capitals'
    # height) were rejected this way; 1.0 is an all-capitals font.
    monkeypatch.setattr(fonts_check, "render_glyph", _capitals_for_lower_case(scale))
    problems = fonts_check.font_problems(config.FONTS_DIR / "kalam.woff")
    assert any("rise above the x-height" in problem for problem in problems)
    assert any("sink below the baseline" in problem for problem in problems)


def test_small_a_e_n_r_as_capitals_are_rejected(monkeypatch):
    # Gochi Hand's way: true b, d, g, q, y but a, e, n, r drawn as capitals nearly as tall as the capitals.
    real = fonts_check.render_glyph

    def render(path, char, size=fonts_check.RENDER_SIZE):
        if char in "aenr":
            ink = real(path, char.upper(), size)
            rows = np.nonzero(ink.max(axis=1) > 0.5)[0]
            image = Image.fromarray((ink * 255).astype(np.uint8))
            height = int(rows[-1] - rows[0] + 1)
            band = image.crop((0, int(rows[0]), image.width, int(rows[-1]) + 1))
            band = band.resize((image.width, round(height * 0.88)))  # 88% of the capital's height, same baseline
            canvas = Image.new("L", image.size, 0)
            canvas.paste(band, (0, int(rows[-1]) + 1 - band.height))
            return np.asarray(canvas, dtype=np.float32) / 255.0
        return real(path, char, size)

    monkeypatch.setattr(fonts_check, "render_glyph", render)
    problems = fonts_check.font_problems(config.FONTS_DIR / "kalam.woff")
    assert len(problems) == 1 and problems[0].startswith("small capitals for a")
