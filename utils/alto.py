"""Read ALTO XML, the format of eScriptorium, Kraken and the HTR-United catalogue: pages in, lines out.

An ALTO file describes one scanned page: each ``TextLine`` has a polygon around its ink, a box (``HPOS``,
``VPOS``, ``WIDTH``, ``HEIGHT``), a baseline and its text in ``String CONTENT``. :func:`read_page` parses one
file, :func:`cut_line` cuts a line out of its page with everything outside its polygon painted the colour of
the paper (so the lines above and below do not show), and :func:`read_lines` walks a whole dataset, page image
and ALTO file paired by name. ALTO v2, v3 and v4 are read alike. Bad input (malformed XML, a missing image, a
polygon off the page, an empty line) gets one line naming the file and what is wrong, and the rest goes on.

Command line::

    python -m utils.alto ../shared/copiste     # pages, lines and problems of a dataset
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np

from utils import cli

ALTO_NAMESPACE_PREFIX = "http://www.loc.gov/standards/alto/"  # + ns-v2#, ns-v3#, ns-v4#
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
IMAGE_FOLDERS = (".", "../pages", "../images", "../img", "pages", "images")  # beside the ALTO file, or a sibling folder
PAPER_PERCENTILE = 90  # the paper's gray level: most of a page is paper, the ink the darkest few percent


class AltoError(ValueError):
    """A page that cannot be read at all: the message names the file and what is wrong."""


Box = tuple[int, int, int, int]  # x, y, width, height in pixels


@dataclass(frozen=True)
class TextLine:
    """One line of a page, its coordinates in the page image's pixels (scaled when the image's size differs
    from the size the ALTO file declares)."""

    page: str  # the page's name: its ALTO file's name without the suffix
    line_id: str
    text: str
    polygon: np.ndarray  # [N, 2] int32 (x, y): around the line's ink
    box: Box  # the polygon's bounding box, clipped to the page
    baseline: np.ndarray | None  # [M, 2] int32 (x, y), or None where the file gives none
    index: int  # the line's place on its page, from 0, in reading order as the file lists them


@dataclass
class Page:
    """One ALTO file: its image, its declared size and its lines, and the problems met while reading them."""

    xml: Path
    image: Path | None
    width: int
    height: int
    lines: list[TextLine]
    problems: list[str]


# --- One ALTO file ---------------------------------------------------------------------------------------
def _local(tag: str) -> str:
    """``{namespace}Name`` -> ``Name``."""
    return tag.rsplit("}", 1)[-1]


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == name]


def _descendants(element: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    return (child for child in element.iter() if _local(child.tag) == name)


def _points(text: str | None, where: str) -> np.ndarray:
    """ALTO's ``"x1 y1 x2 y2 ..."`` (or ``"x1,y1 x2,y2"``, as some exporters write) as float [N, 2]."""
    numbers = (text or "").replace(",", " ").split()
    if len(numbers) < 4 or len(numbers) % 2:
        raise ValueError(f"{where}: expected pairs of x y numbers, got {text!r}")
    try:
        return np.asarray([float(number) for number in numbers], np.float64).reshape(-1, 2)
    except ValueError:
        raise ValueError(f"{where}: not numbers: {text!r}") from None


def _line_text(line: ElementTree.Element) -> str:
    """The line's text: its ``String`` contents, joined by single spaces (one ``String`` per line, as eScriptorium
    writes it, or one per word, as other exporters do)."""
    return " ".join((string.get("CONTENT") or "").strip() for string in _children(line, "String")).strip()


def _line_box(line: ElementTree.Element) -> np.ndarray | None:
    """The four corners of the line's ``HPOS``/``VPOS``/``WIDTH``/``HEIGHT`` box, or None where it has none."""
    try:
        x, y, w, h = (float(line.get(name)) for name in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    except (TypeError, ValueError):
        return None
    return np.asarray([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)


def read_page(xml_path: Path | str, image_size: tuple[int, int] | None = None) -> Page:
    """Parse one ALTO file; ``image_size`` (width, height) of the page image scales every coordinate when it differs
    from the page's declared ``WIDTH`` x ``HEIGHT``. A line that cannot be used is left out with one line in
    ``Page.problems``; a file that cannot be read at all raises :class:`AltoError`."""
    xml_path = Path(xml_path)
    try:
        root = ElementTree.parse(xml_path).getroot()
    except ElementTree.ParseError as error:
        raise AltoError(f"{xml_path}: malformed XML ({error})") from None
    except OSError as error:
        raise AltoError(f"{xml_path}: cannot be read ({error.strerror or error})") from None
    if _local(root.tag) != "alto" or not root.tag.startswith("{" + ALTO_NAMESPACE_PREFIX):
        raise AltoError(f"{xml_path}: not an ALTO file (its root is <{root.tag}>)")
    pages = list(_descendants(root, "Page"))
    if len(pages) != 1:
        raise AltoError(f"{xml_path}: expected one <Page>, found {len(pages)}")
    try:
        declared = int(float(pages[0].get("WIDTH"))), int(float(pages[0].get("HEIGHT")))
    except (TypeError, ValueError):
        raise AltoError(f"{xml_path}: the <Page> has no WIDTH and HEIGHT") from None
    if min(declared) <= 0:
        raise AltoError(f"{xml_path}: the <Page> declares a size of {declared[0]} x {declared[1]}")
    width, height = image_size or declared
    scale = np.asarray([width / declared[0], height / declared[1]])
    file_names = [element.text.strip() for element in _descendants(root, "fileName") if element.text and element.text.strip()]
    page = Page(xml_path, Path(file_names[0]) if file_names else None, width, height, [], [])
    for number, line in enumerate(_descendants(root, "TextLine")):
        where = f"{xml_path}: line {number + 1} ({line.get('ID') or 'no ID'})"
        text = _line_text(line)
        if not text:
            page.problems.append(f"{where}: empty line (no text): left out")
            continue
        polygons = [polygon for shape in _children(line, "Shape") for polygon in _children(shape, "Polygon")]
        try:
            polygon = _points(polygons[0].get("POINTS"), where) if polygons else _line_box(line)
            baseline = _points(line.get("BASELINE"), where) if line.get("BASELINE") else None
        except ValueError as error:
            page.problems.append(f"{error}: left out")
            continue
        if polygon is None:
            page.problems.append(f"{where}: no polygon and no box: left out")
            continue
        polygon = polygon * scale
        low, high = polygon.min(axis=0), polygon.max(axis=0)
        if high[0] <= 0 or high[1] <= 0 or low[0] >= width or low[1] >= height:
            page.problems.append(f"{where}: its polygon lies off the {width} x {height} page: left out")
            continue
        polygon = np.rint(np.clip(polygon, 0, [width - 1, height - 1])).astype(np.int32)  # a point just past an edge
        x0, y0 = polygon.min(axis=0)
        x1, y1 = polygon.max(axis=0) + 1
        if x1 - x0 < 2 or y1 - y0 < 2:
            page.problems.append(f"{where}: its polygon encloses no area: left out")
            continue
        if baseline is not None:
            baseline = np.rint(baseline * scale).astype(np.int32)
        page.lines.append(TextLine(xml_path.stem, line.get("ID") or f"line{number + 1}", text, polygon,
                                   (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), baseline, number))  # fmt: skip
    return page


# --- Page images ------------------------------------------------------------------------------------------
def find_page_image(xml_path: Path | str, file_name: Path | str | None = None) -> Path | None:
    """The image of the page an ALTO file describes: the ``fileName`` it names, else one with the ALTO file's own
    name, looked for beside it and in the sibling folders of ``IMAGE_FOLDERS``; None where there is none."""
    xml_path = Path(xml_path)
    names = [Path(file_name).name] if file_name else []
    names += [xml_path.stem + suffix for suffix in IMAGE_SUFFIXES]
    for folder in IMAGE_FOLDERS:
        for name in names:
            path = (xml_path.parent / folder / name).resolve()
            if path.is_file():
                return path
    return None


def read_gray_page(path: Path | str) -> np.ndarray:
    """A page image as gray uint8 [H, W]; :class:`AltoError` naming the file where it cannot be decoded."""
    path = Path(path)
    data = np.fromfile(path, np.uint8) if path.is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data is not None and data.size else None
    if image is None:
        raise AltoError(f"{path}: the page image cannot be decoded" if data is not None else f"{path}: no such image")
    return image


def paper_level(page: np.ndarray) -> int:
    """The gray level of the page's paper: its ``PAPER_PERCENTILE``-th percentile (most of a page is paper)."""
    return int(np.percentile(page, PAPER_PERCENTILE))


def cut_line(page: np.ndarray, line: TextLine, paper: int | None = None) -> np.ndarray:
    """The line's box cut from ``page`` (gray uint8), every pixel outside its polygon set to ``paper`` (default:
    :func:`paper_level` of the page): the ascenders and descenders of the lines around it are not kept."""
    paper = paper_level(page) if paper is None else paper
    x, y, w, h = line.box
    crop = page[y : y + h, x : x + w]
    inside = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(inside, [line.polygon - np.asarray([x, y], np.int32)], 1)
    return np.where(inside.astype(bool), crop, np.uint8(paper))


# --- A whole dataset --------------------------------------------------------------------------------------
def alto_files(root: Path | str) -> list[Path]:
    """Every ALTO file under ``root`` (``*.xml``, sorted), or ``[root]`` where it is one file."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise AltoError(f"{root}: no such file or folder")
    return sorted(path for path in root.rglob("*.xml") if path.is_file())


def read_lines(
    root: Path | str | Sequence[Path],
    report: Callable[[str], None] | None = None,
) -> Iterator[tuple[TextLine, np.ndarray]]:
    """Each line of every page under ``root`` (a folder, an ALTO file or a list of them) with its image, cut from
    its page (:func:`cut_line`). Each problem goes to ``report`` (default: one line on stderr) and is skipped: a
    page that cannot be read, its image missing or undecodable, a line without text or off its page."""
    report = report or (lambda message: print(message, file=sys.stderr))
    files = [Path(path) for path in root] if isinstance(root, (list, tuple)) else alto_files(root)
    for xml_path in files:
        try:
            page = read_page(xml_path)
            image_path = find_page_image(xml_path, page.image)
            if image_path is None:
                raise AltoError(f"{xml_path}: its page image ({page.image or xml_path.stem + '.*'}) is missing")
            image = read_gray_page(image_path)
            if image.shape[::-1] != (page.width, page.height):
                page = read_page(xml_path, image_size=image.shape[::-1])
        except AltoError as error:
            report(str(error))
            continue
        for problem in page.problems:
            report(problem)
        paper = paper_level(image)
        for line in page.lines:
            yield line, cut_line(image, line, paper)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.alto", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="a folder of ALTO files (with their page images), or one ALTO file")
    args = parser.parse_args(argv)
    problems: list[str] = []
    pages, lines, words = set(), 0, 0
    for line, _ in read_lines(args.root, report=problems.append):
        pages.add(line.page)
        lines += 1
        words += len(line.text.split())
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(pages)} pages, {lines} lines, {words} words in their text; {len(problems)} problems")
    return cli.EXIT_SOME_FAILED if problems else cli.EXIT_OK


if __name__ == "__main__":
    cli.run(main)
