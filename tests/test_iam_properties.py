"""Property-based tests (hypothesis) of what reads user files: the words.txt parser, the split-file reader, the id checks.

Whatever the bytes, the parser returns records or problems that name their line, never an exception; a
well-formed line comes back field for field, whatever its line ending, blanks or BOM.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from utils import iam

# The ids as IAM defines them, written independently of utils.iam: ASCII letters and digits, the whole string.
WORD_ID = r"[a-z][0-9]{2}-[0-9]{3}[a-z]?-[0-9]{2}-[0-9]{2}"
LINE_ID = r"[a-z][0-9]{2}-[0-9]{3}[a-z]?-[0-9]{2}"
FORM_ID = r"[a-z][0-9]{2}-[0-9]{3}[a-z]?"

# Sized so the file runs in about 15 s on 2 cores; no example database (nothing written into the checkout).
FAST = settings(max_examples=250, deadline=None, database=None)
NEAR = settings(max_examples=120, deadline=None, database=None)
FILES = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

word_ids = st.from_regex(WORD_ID, fullmatch=True)
any_ids = st.one_of(word_ids, st.from_regex(LINE_ID, fullmatch=True), st.from_regex(FORM_ID, fullmatch=True))
# Printable and without blanks: str.isprintable() is False exactly for these categories (and whitespace but " ").
visible = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"))
tokens = st.text(visible, min_size=1, max_size=8)
blanks = st.from_regex(r"[ \t]+", fullmatch=True)
endings = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def word_lines(draw) -> tuple[str, dict]:
    """A well-formed words.txt line with random field separators, and the fields it must parse to."""
    fields = {
        "word_id": draw(word_ids),
        "status": draw(st.sampled_from(iam.WORD_STATUSES)),
        "numbers": draw(st.lists(st.integers(-(10**6), 10**6), min_size=5, max_size=5)),
        "tag": draw(tokens),
        "words": draw(st.lists(tokens, min_size=1, max_size=4)),
    }
    parts = [fields["word_id"], fields["status"], *map(str, fields["numbers"]), fields["tag"], *fields["words"]]
    line = draw(st.sampled_from(["", " ", "\t"])) + parts[0]
    for part in parts[1:]:
        line += draw(blanks) + part
    return line + draw(st.sampled_from(["", " ", "\t "])), fields


@st.composite
def near_misses(draw, strings: st.SearchStrategy[str]) -> str:
    """A drawn string with one character inserted, replaced or deleted: near misses find more than random text."""
    line = draw(strings)
    at = draw(st.integers(0, len(line)))
    # Any character, and often the sly ones: a digit of another script, a line break, a blank, a path part.
    char = draw(st.one_of(st.characters(), st.characters(categories=["Nd"]), st.sampled_from("\n\r\t \ufeff/\\.")))
    return draw(st.sampled_from([line[:at] + char + line[at:], line[:at] + char + line[at + 1 :], line[:at] + line[at + 1 :]]))


def content_lines(lines: list[str | bytes]) -> int:
    """How many lines are neither blank nor comments (undecodable bytes count: they are a problem)."""
    count = 0
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                count += 1
                continue
        if number == 1:
            raw = raw.removeprefix("\ufeff")
        stripped = raw.strip(" \t\r\n")
        count += bool(stripped) and not stripped.startswith("#")
    return count


def assert_well_formed(result: iam.ParseResult, lines: int) -> None:
    """Every line is at most one record or one problem, each naming a line that exists; records are valid."""
    record_lines = [r.line_number for r in result.records]
    problem_lines = [p.line_number for p in result.problems]
    assert record_lines == sorted(set(record_lines)) and problem_lines == sorted(set(problem_lines))
    assert not set(record_lines) & set(problem_lines)
    assert all(1 <= n <= lines for n in record_lines + problem_lines)
    assert {d.line_number for d in result.duplicates} <= set(record_lines)
    for problem in result.problems:
        assert problem.reason and f"line {problem.line_number}: " in str(problem)
        assert str(problem).isprintable()  # safe to print on a terminal
    for record in result.records:
        assert iam.check_word_id(record.word_id) is None and re.fullmatch(WORD_ID, record.word_id)
        assert record.status in iam.WORD_STATUSES and record.text.isprintable() and record.tag.isprintable()
        assert record.path == iam.image_path(record.path.parents[2], record.word_id)


# --- words.txt -----------------------------------------------------------------------------
@FAST
@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=80)), max_size=12))
def test_any_lines_give_records_or_problems_never_an_exception(lines):
    result = iam.parse_words_lines(lines)
    assert_well_formed(result, len(lines))
    assert len(result.records) + len(result.problems) == content_lines(lines)


@NEAR
@given(st.lists(near_misses(word_lines().map(lambda line_and_fields: line_and_fields[0])), min_size=1, max_size=4))
def test_near_miss_lines_give_records_or_problems_never_an_exception(lines):
    result = iam.parse_words_lines(lines)
    assert_well_formed(result, len(lines))
    assert len(result.records) + len(result.problems) == content_lines(lines)


@FAST
@given(word_lines())
def test_a_well_formed_line_round_trips(line_and_fields):
    line, fields = line_and_fields
    result = iam.parse_words_lines([line])
    assert result.problems == [] and len(result.records) == 1
    record = result.records[0]
    assert (record.word_id, record.status, record.tag) == (fields["word_id"], fields["status"], fields["tag"])
    assert [record.gray_level, record.x, record.y, record.w, record.h] == fields["numbers"]
    assert record.text == " ".join(fields["words"])
    assert record.line_id == fields["word_id"].rsplit("-", 1)[0] and record.form_id == record.line_id.rsplit("-", 1)[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


@FILES
@given(st.lists(st.tuples(st.one_of(word_lines(), st.sampled_from([("# a comment", None), (" ", None)])), endings), max_size=12),
       st.booleans())  # fmt: skip
def test_a_words_file_round_trips_whatever_its_line_endings_and_bom(work, lines, bom):
    # The blank line holds a space: an empty one after a CR ending would make CR + LF, a single line break.
    text = "".join(line + ending for (line, _), ending in lines)
    (work / "words.txt").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    result = iam.parse_words_file(work / "words.txt")
    expected = [(number, fields) for number, ((_, fields), _) in enumerate(lines, start=1) if fields is not None]
    assert result.problems == []
    assert [(r.line_number, r.word_id, r.text) for r in result.records] == [
        (number, fields["word_id"], " ".join(fields["words"])) for number, fields in expected
    ]


@FILES
@given(st.binary(max_size=400))
def test_any_words_file_gives_records_or_problems_never_an_exception(work, data):
    (work / "words.txt").write_bytes(data)
    result = iam.parse_words_file(work / "words.txt")
    assert_well_formed(result, len(data.splitlines()))


# --- Split files ---------------------------------------------------------------------------
@FILES
@given(st.binary(max_size=200))
def test_any_split_file_gives_ids_or_an_error_naming_its_line(work, data):
    (work / "split.txt").write_bytes(data)
    try:
        ids = iam.read_split_file(work / "split.txt")
    except iam.SplitFileError as error:
        number = int(re.search(r"split\.txt:(\d+): ", str(error)).group(1))
        assert 1 <= number <= len(data.splitlines())
    else:
        assert all(re.fullmatch(WORD_ID, i) or re.fullmatch(LINE_ID, i) or re.fullmatch(FORM_ID, i) for i in ids)


@FILES
@given(st.lists(st.tuples(any_ids, st.sampled_from(["", " extra columns", "  # a comment", "\t2"]), endings), max_size=10),
       st.booleans())  # fmt: skip
def test_split_file_ids_round_trip_whatever_the_line_endings_and_bom(work, rows, bom):
    text = "# header\n" + "".join(i + rest + ending for i, rest, ending in rows)
    (work / "split.txt").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    assert iam.read_split_file(work / "split.txt") == {i for i, _, _ in rows}


# --- Ids -----------------------------------------------------------------------------------
@FAST
@given(st.one_of(st.text(max_size=20), word_ids, near_misses(word_ids), word_ids.map(lambda word_id: word_id + "\n")))
def test_check_word_id_accepts_exactly_iam_s_ascii_pattern(word_id):
    valid = re.fullmatch(WORD_ID, word_id) is not None
    assert (iam.check_word_id(word_id) is None) == valid
    if not word_id.isascii():
        assert iam.check_word_id(word_id) is not None
    if valid:  # its image stays inside the images folder
        path = iam.image_path(Path("words"), word_id)
        assert path.parts[:2] == ("words", word_id[:3]) and path.name == f"{word_id}.png" and ".." not in path.parts


@FAST
@given(word_ids, st.integers(0, 13), st.sampled_from("٠١٢٣٤٥٦٧٨٩０１９߀१"))
def test_a_unicode_digit_anywhere_in_an_id_is_refused(word_id, at, digit):
    positions = [i for i, c in enumerate(word_id) if c.isdigit()]
    at = positions[at % len(positions)]
    unicode_id = word_id[:at] + digit + word_id[at + 1 :]
    assume(unicode_id != word_id)
    assert iam.check_word_id(unicode_id) is not None
    assert iam.parse_words_lines([f"{unicode_id} ok 1 1 1 1 1 NN w"]).records == []
