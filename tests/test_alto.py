"""utils.alto: ALTO files read into lines, on two committed Copiste pages and on generated pages of every version."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from utils import alto

SAMPLE = Path(__file__).parent / "fixtures" / "alto_sample"


def alto_xml(lines: list[dict], version: int = 4, width: int = 400, height: int = 200, file_name: str | None = "page.png") -> str:
    """An ALTO file in namespace ``ns-v{version}#`` with one ``TextLine`` per dict (text, points, and optionally
    baseline or box), as eScriptorium writes them."""
    body = []
    for number, line in enumerate(lines):
        shape = f'<Shape><Polygon POINTS="{line["points"]}"/></Shape>' if "points" in line else ""
        box = line.get("box", (10, 10, 50, 20))
        baseline = f' BASELINE="{line["baseline"]}"' if "baseline" in line else ""
        strings = "".join(f'<String CONTENT="{text}"/>' for text in line["text"]) if isinstance(line["text"], list) else (
            f'<String CONTENT="{line["text"]}"/>')  # fmt: skip
        body.append(f'<TextLine ID="l{number}" HPOS="{box[0]}" VPOS="{box[1]}" WIDTH="{box[2]}" HEIGHT="{box[3]}"{baseline}>'
                    f"{shape}{strings}</TextLine>")  # fmt: skip
    source = f"<sourceImageInformation><fileName>{file_name}</fileName></sourceImageInformation>" if file_name else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><alto xmlns="http://www.loc.gov/standards/alto/ns-v{version}#">'
            f"<Description><MeasurementUnit>pixel</MeasurementUnit>{source}</Description>"
            f'<Layout><Page WIDTH="{width}" HEIGHT="{height}"><PrintSpace><TextBlock>{"".join(body)}'
            "</TextBlock></PrintSpace></Page></Layout></alto>")  # fmt: skip


def page_image(width: int = 400, height: int = 200) -> np.ndarray:
    """Light paper (gray 220) with a dark bar (gray 10) across rows 40-60 and a gray bar (100) across rows 62-70."""
    image = np.full((height, width), 220, np.uint8)
    image[40:60, 20:380] = 10
    image[62:70, 20:380] = 100
    return image


def write_page(folder: Path, name: str, xml: str, image: np.ndarray | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.xml").write_text(xml, encoding="utf-8")
    if image is not None:
        cv2.imwrite(str(folder / f"{name}.png"), image)
    return folder / f"{name}.xml"


BAR_LINE = {"text": "a line", "points": "20 38 380 38 380 61 20 61", "baseline": "20 58 380 58"}


def test_the_committed_copiste_pages_give_their_lines_text_and_crops():
    problems: list[str] = []
    lines = list(alto.read_lines(SAMPLE / "alto", report=problems.append))
    assert problems == []
    texts = {(line.page, line.text) for line, _ in lines}
    assert ("wikitexte_0014_2", "population de 527 habitants en 2011 .") in texts
    assert ("wikitexte_0152_2", "Son record personnel est de 48 s 84 obtenu à") in texts  # accents kept as written
    assert len(lines) == 8
    for line, image in lines:
        assert image.dtype == np.uint8 and image.shape == (line.box[3], line.box[2])
        assert line.baseline is not None and line.baseline.shape[1] == 2
        assert (image < 128).any(), f"{line.text!r}: its crop holds no ink"
    line, image = next((line, image) for line, image in lines if line.text.startswith("Le village"))
    page = alto.read_gray_page(SAMPLE / "pages" / "wikitexte_0014_2.jpg")
    outside = np.ones(image.shape, np.uint8)
    cv2.fillPoly(outside, [line.polygon - np.asarray(line.box[:2], np.int32)], 0)
    assert (image[outside == 1] == alto.paper_level(page)).all()  # outside the polygon: paper only
    inside = outside == 0
    x, y, w, h = line.box
    assert (image[inside] == page[y : y + h, x : x + w][inside]).all()  # inside: the page as it is


@pytest.mark.parametrize("version", [2, 3, 4])
def test_every_alto_version_reads_alike(tmp_path, version):
    path = write_page(tmp_path, "page", alto_xml([BAR_LINE, {"text": ["two", "strings"], "box": (20, 62, 360, 8)}], version), page_image())
    page = alto.read_page(path)
    assert [line.text for line in page.lines] == ["a line", "two strings"]  # one String per word joined by spaces
    assert page.lines[0].box == (20, 38, 361, 24)
    np.testing.assert_array_equal(page.lines[0].baseline, [[20, 58], [380, 58]])
    assert page.lines[1].box == (20, 62, 361, 9)  # no polygon: the line's box stands for it
    (_, image), (_, box_image) = alto.read_lines(tmp_path)
    assert image.min() == 10 and (box_image == 100).mean() > 0.8


def test_coordinates_are_scaled_to_an_image_of_another_size(tmp_path):
    """The ALTO file declares 400 x 200; the image beside it is 800 x 400: every coordinate doubles."""
    write_page(tmp_path, "page", alto_xml([BAR_LINE]), cv2.resize(page_image(), (800, 400), interpolation=cv2.INTER_NEAREST))
    [(line, image)] = list(alto.read_lines(tmp_path))
    assert line.box == (40, 76, 721, 47)
    np.testing.assert_array_equal(line.baseline, [[40, 116], [760, 116]])
    assert image.shape == (47, 721) and (image[4:42, 5:700] == 10).all()


def test_bad_pages_and_lines_are_named_in_one_line_each_and_the_rest_is_read(tmp_path):
    write_page(tmp_path, "a_good", alto_xml([BAR_LINE]), page_image())
    (tmp_path / "b_malformed.xml").write_text("<alto><Page", encoding="utf-8")
    write_page(tmp_path, "c_no_image", alto_xml([BAR_LINE], file_name="c_no_image.png"), None)
    write_page(tmp_path, "d_bad_lines", alto_xml([
        {"text": "", "points": "20 38 380 38 380 61"},
        {"text": "off the page", "points": "500 300 600 300 600 350"},
        {"text": "not numbers", "points": "20 38 x 38 380 61"},
        {"text": "flat", "points": "20 38 380 38 200 38"},
        BAR_LINE,
    ]), page_image())  # fmt: skip
    (tmp_path / "e_not_alto.xml").write_text("<PcGts><Page/></PcGts>", encoding="utf-8")
    problems: list[str] = []
    lines = list(alto.read_lines(tmp_path, report=problems.append))
    assert [(line.page, line.text) for line, _ in lines] == [("a_good", "a line"), ("d_bad_lines", "a line")]
    assert len(problems) == 7 and all("\n" not in problem for problem in problems)
    expected = [("b_malformed.xml", "malformed XML"), ("c_no_image.xml", "c_no_image.png) is missing"),
                ("d_bad_lines.xml: line 1", "empty line"), ("d_bad_lines.xml: line 2", "off the 400 x 200 page"),
                ("d_bad_lines.xml: line 3", "not numbers"), ("d_bad_lines.xml: line 4", "encloses no area"),
                ("e_not_alto.xml", "not an ALTO file")]  # fmt: skip
    for name, reason in expected:
        assert any(name in problem and reason in problem for problem in problems), (name, reason, problems)
    with pytest.raises(alto.AltoError, match=r"e_not_alto\.xml: not an ALTO file"):
        alto.read_page(tmp_path / "e_not_alto.xml")


def test_an_undecodable_page_image_is_named(tmp_path):
    write_page(tmp_path, "page", alto_xml([BAR_LINE]), None)
    (tmp_path / "page.png").write_bytes(b"not a png")
    problems: list[str] = []
    assert list(alto.read_lines(tmp_path, report=problems.append)) == []
    assert len(problems) == 1 and "page.png: the page image cannot be decoded" in problems[0]


def test_the_command_counts_pages_lines_and_problems(tmp_path, capsys):
    assert alto.main([str(SAMPLE / "alto")]) == 0
    assert capsys.readouterr().out.strip() == "2 pages, 8 lines, 29 words in their text; 0 problems"
    write_page(tmp_path, "page", alto_xml([BAR_LINE, {"text": "", "points": "1 1 9 1 9 9"}]), page_image())
    assert alto.main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "1 pages, 1 lines, 2 words in their text; 1 problems" in captured.out and "empty line" in captured.err
