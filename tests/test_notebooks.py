"""The chapters as committed: one setup cell, quiet outputs, and no number in the prose that the run did not print.

These read the notebooks' JSON (the outputs of the last full run, `make run`), not a new run: nbval runs them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from utils import config

NOTEBOOKS = sorted((config.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PERCENTAGE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?%")


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def output_text(cell: dict) -> str:
    """Everything a code cell printed or displayed as text (stdout, results, HTML tables)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append("".join(output["text"]))
        for kind in ("text/plain", "text/html", "text/markdown"):
            if kind in output.get("data", {}):
                parts.append("".join(output["data"][kind]))
    return "\n".join(parts)


def percentages(text: str) -> set[str]:
    return {match.group(1) + "%" for match in PERCENTAGE.finditer(text)}


def test_the_four_chapters_are_there():
    assert [notebook.name[:2] for notebook in NOTEBOOKS] == ["01", "02", "03", "04"]


def test_every_chapter_starts_with_the_same_setup_cell_and_the_configured_url():
    setups = [source(next(cell for cell in cells(notebook) if cell["cell_type"] == "code")) for notebook in NOTEBOOKS]
    assert all(setup == setups[0] for setup in setups), "the first code cell differs between chapters"
    assert f'REPO_URL = "{config.REPO_URL}"' in setups[0]
    assert "prepare(quick=QUICK)" in setups[0]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_committed_output_went_to_stderr(notebook):
    noisy = [index for index, cell in enumerate(cells(notebook))
             if any(output.get("name") == "stderr" for output in cell.get("outputs", []))]
    assert not noisy, f"{notebook.name}: cells {noisy} have stderr in their committed outputs"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_percentage_in_the_prose_is_printed_by_the_chapter(notebook):
    chapter = cells(notebook)
    printed = set().union(*(percentages(output_text(cell)) for cell in chapter if cell["cell_type"] == "code"))
    quoted = {}
    for index, cell in enumerate(chapter):
        if cell["cell_type"] == "markdown":
            for value in percentages(source(cell)):
                quoted.setdefault(value, index)
    unprinted = {value: index for value, index in quoted.items() if value not in printed}
    assert not unprinted, f"{notebook.name}: the prose quotes percentages no output prints (value: markdown cell): {unprinted}"


def test_the_claims_check_catches_a_quoted_number_the_outputs_lack():
    prose = "The model reads 97.5% of the words, and 12 % of the rest."
    assert percentages(prose) == {"97.5%", "12%"}
    assert percentages("CER 3.4%\nWER 10.0 %") == {"3.4%", "10.0%"}
    assert percentages("word_3.5%x") == set()  # part of a longer token, not a quoted figure


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_chapter_has_navigation_exercises_solutions_and_references(notebook):
    markdown = "\n".join(source(cell) for cell in cells(notebook) if cell["cell_type"] == "markdown")
    for heading in ("## Exercises", "## Solutions", "## References"):
        assert heading in markdown, f"{notebook.name} has no '{heading}' section"
    assert "Prerequisites" in markdown and "Time" in markdown, f"{notebook.name} states no prerequisites or time"
    neighbours = [other.name for other in NOTEBOOKS if abs(int(other.name[:2]) - int(notebook.name[:2])) == 1]
    for neighbour in neighbours:
        assert f"({neighbour})" in markdown, f"{notebook.name} does not link to {neighbour}"
