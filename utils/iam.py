"""Find, parse, validate and split the IAM Handwriting Word Database.

The loader returns plain records: a list of :class:`WordRecord` dataclasses, one per
line of ``words.txt``. :func:`records_to_frame` turns them into a pandas DataFrame for
analysis and plots. Nothing here loads the images into memory: validation reads one
image at a time and keeps only its size.

Command line, for checking a download::

    python -m utils.iam check DIR
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import re
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from PIL import Image, UnidentifiedImageError

from utils import config
from utils.cli import whole_number

Image.MAX_IMAGE_PIXELS = config.MAX_IMAGE_PIXELS // 2  # Pillow refuses twice this: config's limit, every reader's
# a01-000u-00-00: text category and set, form number (+ optional copy letter), line, word.
# ASCII only ([0-9], not \d, which takes any Unicode digit) and whole strings (\Z: $ allows a final newline).
WORD_ID_PATTERN = re.compile(r"\A[a-z][0-9]{2}-[0-9]{3}[a-z]?-[0-9]{2}-[0-9]{2}\Z")
LINE_ID_PATTERN = re.compile(r"\A[a-z][0-9]{2}-[0-9]{3}[a-z]?-[0-9]{2}\Z")
FORM_ID_PATTERN = re.compile(r"\A[a-z][0-9]{2}-[0-9]{3}[a-z]?\Z")
INTEGER_PATTERN = re.compile(r"\A-?[0-9]+\Z")  # int() would also take "٣", "+3" and "1_0"
# words.txt separates fields by spaces (tabs accepted); any other whitespace or control character stays in its
# field and makes the line a problem, rather than silently splitting or joining words.
FIELD_SEPARATOR = re.compile(r"[ \t]+")
LINE_BLANKS = " \t\r\n"
WORD_STATUSES = ("ok", "err")
WORDS_FILE_NAMES = ("words.txt", "words_new.txt")
SYNTHETIC_MARKER = "mini_iam.json"  # written by utils.synthetic beside words.txt
REAL_WORDS_MARKER = "realwords.json"  # written by utils.realwords beside words.txt: real words cut from lines, not IAM
PARTIAL_SUFFIX = ".partial"  # utils.synthetic writes into <folder>.partial, renamed when complete: never a dataset


class DatasetReadError(OSError):
    """A file of the dataset that exists but cannot be read (permissions, an I/O error); the message names it."""


class DatasetNotFoundError(FileNotFoundError):
    """No IAM-like dataset under the folder that was searched."""


def _read_bytes(path: Path) -> bytes:
    """The bytes of a dataset file; DatasetReadError naming it when it exists but cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise DatasetReadError(f"{config.display_path(path)}: cannot be read ({error.strerror or error})") from error


def _lines(data: bytes) -> list[bytes]:
    """The lines of a text file, whatever its line endings (LF, CRLF or old Mac CR), without a UTF-8 BOM."""
    return data.removeprefix(codecs.BOM_UTF8).splitlines()  # bytes.splitlines splits on \n, \r and \r\n only


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control and invisible characters escaped (ESC -> \\x1b)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# --- Finding the dataset ------------------------------------------------------
@dataclass(frozen=True)
class IamLayout:
    """Where the parts of one IAM copy are on disk."""

    root: Path  # the folder that holds words/
    words_file: Path
    images_dir: Path
    forms_file: Path | None = None  # form -> writer table (official download, mini-IAM)
    split_dir: Path | None = None  # splits/{train,validation,test}.txt when present
    synthetic: bool = False  # the generated mini-IAM rather than the real IAM
    real_words: bool = False  # words cut from the lines of another dataset (utils.realwords) rather than IAM

    def describe(self) -> str:
        kind = "synthetic mini-IAM" if self.synthetic else "real-words mini-IAM" if self.real_words else "IAM"
        return f"{kind} at {config.display_path(self.root)} (labels: {self.words_file.name})"


def _layout_at(folder: Path) -> IamLayout | None:
    """The layout rooted at ``folder`` if it holds ``words/`` and a words file, else None."""
    images_dir = folder / "words"
    if folder.name.endswith(PARTIAL_SUFFIX) or not images_dir.is_dir():
        return None
    # Kaggle: words.txt or words_new.txt beside words/ (or one level up);
    # official download: ascii/words.txt.
    candidates = [folder / n for n in WORDS_FILE_NAMES] + [folder / "ascii" / "words.txt"]
    candidates += [folder.parent / n for n in WORDS_FILE_NAMES]
    words_file = next((c for c in candidates if c.is_file()), None)
    if words_file is None:
        return None
    forms = next((f for f in (folder / "forms.txt", folder / "ascii" / "forms.txt") if f.is_file()), None)
    split_dir = folder / "splits" if (folder / "splits").is_dir() else None
    return IamLayout(
        root=folder,
        words_file=words_file,
        images_dir=images_dir,
        forms_file=forms,
        split_dir=split_dir,
        synthetic=(folder / SYNTHETIC_MARKER).is_file(),
        real_words=(folder / REAL_WORDS_MARKER).is_file(),
    )


def find_datasets(root: Path | str, max_depth: int = 3) -> list[IamLayout]:
    """Every IAM layout under ``root`` (itself included), shallowest first.

    Folders named ``*.partial`` are skipped, and not searched: an interrupted generation leaves one.
    """
    root = Path(root)
    found: list[IamLayout] = []
    level = [root] if root.is_dir() else []
    for _ in range(max_depth + 1):
        next_level: list[Path] = []
        for folder in level:
            if folder.name.endswith(PARTIAL_SUFFIX):
                continue
            layout = _layout_at(folder)
            if layout is not None:
                found.append(layout)
                continue  # do not walk into words/ (115k files)
            try:
                next_level += sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
        level = next_level
    return found


def find_dataset(root: Path | str, max_depth: int = 3) -> IamLayout:
    """The IAM copy under ``root``: the real IAM is preferred to a synthetic one.

    Raises DatasetNotFoundError listing the layouts it looked for.
    """
    layouts = find_datasets(root, max_depth)
    if not layouts:
        raise DatasetNotFoundError(
            f"No IAM word dataset found under {config.display_path(root)} (searched {max_depth} folders deep).\n"
            "Looked for a folder holding words/ (words/a01/a01-000u/a01-000u-00-00.png ...) together with\n"
            "  - words.txt or words_new.txt beside words/ or one level up (Kaggle: iam_words/words + iam_words/words.txt), or\n"
            "  - ascii/words.txt (the official IAM download).\n"
            f"Folders named *{PARTIAL_SUFFIX} (left by an interrupted generation) are skipped."
        )
    real = [layout for layout in layouts if not layout.synthetic]
    return (real or layouts)[0]


# --- Parsing words.txt --------------------------------------------------------
@dataclass
class WordRecord:
    """One word of words.txt. ``path`` is the image path, whether or not the file exists."""

    word_id: str
    form_id: str
    line_id: str
    status: str  # "ok": segmentation checked; "err": segmentation may be wrong
    gray_level: int  # threshold IAM used to binarize the line
    x: int
    y: int
    w: int
    h: int
    tag: str  # grammatical tag
    text: str
    path: Path
    line_number: int  # in words.txt, for error messages
    writer_id: str | None = None


@dataclass
class ParseProblem:
    """A line of words.txt that was skipped, and why."""

    line_number: int
    line: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.reason}: {self.line!r}"


@dataclass
class ParseResult:
    records: list[WordRecord]  # every well-formed line, repeated ids included
    problems: list[ParseProblem]  # lines skipped
    duplicates: list[ParseProblem]  # well-formed lines whose id came earlier: kept, flagged
    source: str


def check_word_id(word_id: str) -> str | None:
    """Why ``word_id`` is not a valid IAM word id, or None when it is."""
    if "/" in word_id or "\\" in word_id or ".." in word_id or word_id.startswith(("~", ":")):
        return "id could escape the data folder"
    if not WORD_ID_PATTERN.match(word_id):  # ASCII letters and digits only
        return "id does not match IAM's pattern (like a01-000u-00-00)"
    return None


def image_path(images_dir: Path, word_id: str) -> Path:
    """words/a01/a01-000u/a01-000u-00-00.png for a01-000u-00-00."""
    parts = word_id.split("-")
    return images_dir / parts[0] / f"{parts[0]}-{parts[1]}" / f"{word_id}.png"


def parse_line(line: str, line_number: int, images_dir: Path) -> WordRecord | ParseProblem | None:
    """One line of words.txt: a record, a problem, or None for comments and blank lines."""
    stripped = line.strip(LINE_BLANKS)
    if not stripped or stripped.startswith("#"):
        return None
    fields = FIELD_SEPARATOR.split(stripped)
    if len(fields) < 9:
        return ParseProblem(line_number, stripped, f"expected at least 9 fields, found {len(fields)}")
    word_id, status = fields[0], fields[1]
    reason = check_word_id(word_id)
    if reason:
        return ParseProblem(line_number, stripped, reason)
    if status not in WORD_STATUSES:
        return ParseProblem(line_number, stripped, f"segmentation result must be 'ok' or 'err', not {status!r}")
    try:
        if not all(INTEGER_PATTERN.match(v) for v in fields[2:7]):
            raise ValueError
        gray_level, x, y, w, h = (int(v) for v in fields[2:7])
    except ValueError:  # int() refuses more than 4,300 digits
        return ParseProblem(line_number, stripped, "gray level and bounding box must be integers")
    text = " ".join(fields[8:])  # a few real transcriptions hold a space
    for name, value in (("grammatical tag", fields[7]), ("transcription", text)):
        if not value.isprintable():
            hidden = "".join(sorted({printable(c) for c in value if not c.isprintable()}))
            return ParseProblem(line_number, stripped, f"{name} holds control or invisible characters ({hidden})")
    line_id = word_id.rsplit("-", 1)[0]
    return WordRecord(
        word_id=word_id,
        form_id=line_id.rsplit("-", 1)[0],
        line_id=line_id,
        status=status,
        gray_level=gray_level,
        x=x,
        y=y,
        w=w,
        h=h,
        tag=fields[7],
        text=text,
        path=image_path(images_dir, word_id),
        line_number=line_number,
    )


def parse_words_lines(lines: Iterable[str | bytes], images_dir: Path | str = "words", source: str = "words.txt") -> ParseResult:
    """Parse the lines of a words.txt; bad lines become problems, never exceptions.

    A repeated id is kept as a record (its text is still fields 9 onward) and listed in
    ``duplicates``; :meth:`IamDataset.usable` keeps only the first of them for training.
    A UTF-8 byte order mark at the start of the first line is dropped (Windows editors write one).
    """
    images_dir = Path(images_dir)
    records: list[WordRecord] = []
    problems: list[ParseProblem] = []
    duplicates: list[ParseProblem] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(ParseProblem(number, raw.decode("utf-8", "replace").strip(), "not valid UTF-8"))
                continue
        if number == 1:
            raw = raw.removeprefix("\ufeff")
        parsed = parse_line(raw, number, images_dir)
        if isinstance(parsed, ParseProblem):
            problems.append(parsed)
        elif parsed is not None:
            if parsed.word_id in first_seen:
                duplicates.append(ParseProblem(number, raw.strip(LINE_BLANKS), f"repeats the id of line {first_seen[parsed.word_id]}"))
            else:
                first_seen[parsed.word_id] = number
            records.append(parsed)
    return ParseResult(records, problems, duplicates, source)


def parse_words_file(words_file: Path | str, images_dir: Path | str | None = None) -> ParseResult:
    """Parse a words.txt; images are looked for in ``images_dir`` (default: words/ beside it).

    LF, CRLF and old Mac CR line endings are read alike. Raises DatasetReadError when the file
    exists but cannot be read.
    """
    words_file = Path(words_file)
    images_dir = Path(images_dir) if images_dir is not None else words_file.parent / "words"
    return parse_words_lines(_lines(_read_bytes(words_file)), images_dir, source=str(words_file))


def read_writers(forms_file: Path | str) -> dict[str, str]:
    """form id -> writer id, from IAM's forms.txt (``a01-000u 000 2 prt 7 5 52 36``)."""
    writers = {}
    for raw in _lines(_read_bytes(Path(forms_file))):
        line = raw.decode("utf-8", errors="replace")
        fields = line.split()
        if len(fields) >= 2 and not line.startswith("#") and FORM_ID_PATTERN.match(fields[0]):
            writers[fields[0]] = fields[1]
    return writers


# --- Validating images ---------------------------------------------------------
IMAGE_PROBLEMS = ("missing", "empty", "unreadable", "degenerate")


@dataclass
class ImageProblem:
    word_id: str
    path: Path
    kind: str  # one of IMAGE_PROBLEMS
    detail: str

    def __str__(self) -> str:
        return f"{self.word_id}: {self.kind}: {self.detail} ({config.display_path(self.path)})"


@dataclass
class ImageReport:
    """What :func:`validate_images` found: sizes of good images and every problem."""

    checked: int = 0
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # word id -> (width, height)
    problems: list[ImageProblem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = Counter(p.kind for p in self.problems)
        return {kind: counts.get(kind, 0) for kind in IMAGE_PROBLEMS}

    @property
    def bad_ids(self) -> set[str]:
        return {p.word_id for p in self.problems}


def inspect_image(path: Path) -> tuple[tuple[int, int] | None, str | None, str]:
    """Decode one image fully: ((width, height), None, "") or (None, problem kind, detail)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None, "missing", "file not found"
    except OSError as error:
        return None, "unreadable", str(error)
    if size == 0:
        return None, "empty", "file has 0 bytes"
    try:
        with Image.open(path) as image:
            image.load()  # a full decode: catches truncated and corrupt files
            width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        return None, "unreadable", f"{type(error).__name__}: {error}"
    if width < 2 or height < 2:
        return None, "degenerate", f"{width}x{height} pixels"
    return (width, height), None, ""


def validate_images(records: Sequence[WordRecord], workers: int = 4) -> ImageReport:
    """Check every record's image (exists, not empty, decodes, at least 2x2), one at a time."""
    report = ImageReport()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for record, (size, kind, detail) in zip(records, pool.map(lambda r: inspect_image(r.path), records)):
            report.checked += 1
            if kind is None:
                report.sizes[record.word_id] = size
            else:
                report.problems.append(ImageProblem(record.word_id, record.path, kind, detail))
    return report


# --- Splitting by writer or form ----------------------------------------------
def _group_key(record: WordRecord) -> str:
    return f"writer:{record.writer_id}" if record.writer_id is not None else f"form:{record.form_id}"


def split_by_group(
    records: Sequence[WordRecord],
    fractions: dict[str, float] | None = None,
    seed: int | None = None,
) -> dict[str, str]:
    """Writer-independent split: word id -> split name.

    All words of one writer (when forms.txt names writers) or else of one form go to the
    same split, so no hand is seen in training and then again in testing. Groups are
    ordered by a hash of (seed, group), which is stable across runs and machines, and
    laid end to end over [0, 1); a group falls in the split that holds its midpoint.
    """
    fractions = fractions or config.SPLIT_FRACTIONS
    seed = config.seed() if seed is None else seed
    sizes = Counter(_group_key(r) for r in records)
    order = sorted(sizes, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    total = sum(sizes.values()) or 1
    bounds, cumulative = [], 0.0
    for name, fraction in fractions.items():
        cumulative += fraction / sum(fractions.values())
        bounds.append((cumulative, name))
    group_split, done = {}, 0
    for group in order:
        middle = (done + sizes[group] / 2) / total
        group_split[group] = next((name for bound, name in bounds if middle < bound), bounds[-1][1])
        done += sizes[group]
    return {r.word_id: group_split[_group_key(r)] for r in records}


class SplitFileError(ValueError):
    """A split file that cannot be used; the message names the file and line."""


def read_split_file(path: Path | str) -> set[str]:
    """Ids of one split: one form, line or word id per line (first token); '#' starts a comment.

    UTF-8 with or without a BOM, any line endings. Raises SplitFileError naming the file and line for a
    line that is not UTF-8 or not an id; an empty file gives an empty set (split_from_files refuses it).
    """
    path = Path(path)
    ids = set()
    for number, raw in enumerate(_lines(_read_bytes(path)), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SplitFileError(
                f"{config.display_path(path)}:{number}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1})"
            ) from None
        token = line.split("#", 1)[0].split()
        if not token:
            continue
        token = token[0]
        if not (WORD_ID_PATTERN.match(token) or LINE_ID_PATTERN.match(token) or FORM_ID_PATTERN.match(token)):
            raise SplitFileError(f"{config.display_path(path)}:{number}: {token!r} is not an IAM form, line or word id")
        ids.add(token)
    return ids


def split_from_files(records: Sequence[WordRecord], split_files: dict[str, Path | str | Sequence[Path | str]]) -> dict[str, str]:
    """word id -> split, from files of ids (form, line or word ids, mixed as you like).

    A split may come from several files (the IAM line task's two validation sets). Words listed by
    no file are left out of the result; a word listed by two splits is an error, and so is a split
    whose files list no id or no id of these words: it would give an empty split (SplitFileError
    naming its files).
    """
    listed: dict[str, set[str]] = {}
    shown: dict[str, str] = {}
    for name, paths in split_files.items():
        paths = [paths] if isinstance(paths, (str, Path)) else paths
        listed[name] = set().union(*(read_split_file(path) for path in paths))
        shown[name] = " + ".join(config.display_path(path) for path in paths)
    empty = [f"{shown[name]} lists no id" for name, ids in listed.items() if not ids]
    if empty:
        raise SplitFileError(f"empty split file: {'; '.join(empty)} (one form, line or word id per line)")
    assignment: dict[str, str] = {}
    for record in records:
        keys = (record.word_id, record.line_id, record.form_id)
        matches = [name for name, ids in listed.items() if any(k in ids for k in keys)]
        if len(matches) > 1:
            raise SplitFileError(
                f"{record.word_id} is listed in more than one split: "
                + ", ".join(f"{name} ({split_files[name]})" for name in matches)
            )
        if matches:
            assignment[record.word_id] = matches[0]
    unmatched = [name for name in listed if name not in set(assignment.values())]
    if unmatched:
        raise SplitFileError(
            "no word is in the "
            + "; ".join(f"{name} split: none of the {len(listed[name])} ids in {shown[name]} (like {min(listed[name])}) "
                        "is the id of a listed word, its line or its form" for name in unmatched)
            + " (split files made for another dataset?)"
        )
    return assignment


def split_files_in(folder: Path | str) -> dict[str, list[Path]]:
    """The split files in ``folder``: for each split, every file there under one of its names.

    The names are ``config.SPLIT_FILE_NAMES``: ``train.txt``/``validation.txt``/``test.txt``, the IAM
    line task's ``trainset.txt``/``validationset1.txt`` + ``validationset2.txt``/``testset.txt``, and
    the Aachen lists (``tr.lst``/``va.lst``/``te.lst``, ``*.uttlist``). Every split needs a file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SplitFileError(f"split folder {folder} does not exist")
    files = {name: [folder / n for n in names if (folder / n).is_file()] for name, names in config.SPLIT_FILE_NAMES.items()}
    missing = [name for name, paths in files.items() if not paths]
    if missing:
        raise SplitFileError(
            f"split folder {folder} has no file for: "
            + "; ".join(f"{name} (looked for {', '.join(config.SPLIT_FILE_NAMES[name])})" for name in missing)
        )
    return files


def split_dir_setting() -> Path | None:
    """The split folder the user chose with ``HTR_SPLIT_DIR``, or None (unset or blank)."""
    value = config.env_setting("HTR_SPLIT_DIR")
    return Path(value) if value is not None else None


# --- Loading, all in one --------------------------------------------------------
@dataclass
class IamDataset:
    """A parsed, validated and split IAM copy."""

    layout: IamLayout
    records: list[WordRecord]  # every parsed line, ok and err
    parse_problems: list[ParseProblem]
    duplicates: list[ParseProblem]
    image_report: ImageReport
    splits: dict[str, str]  # word id -> train / validation / test
    split_method: str  # how the split was made, in words

    def usable(self, statuses: Sequence[str] = ("ok",)) -> list[WordRecord]:
        """Records with a readable image, a wanted status and a split; the first of repeated ids."""
        bad = self.image_report.bad_ids
        repeated = {d.line_number for d in self.duplicates}
        return [
            r
            for r in self.records
            if r.status in statuses and r.word_id not in bad and r.word_id in self.splits and r.line_number not in repeated
        ]

    def empty_splits(self, statuses: Sequence[str] = config.TRAIN_STATUSES) -> list[str]:
        """The splits (of ``config.SPLITS``) without one usable word: nothing to train or measure on."""
        used = Counter(self.splits[r.word_id] for r in self.usable(statuses))
        return [name for name in config.SPLITS if not used[name]]


def load_iam(
    root: Path | str,
    split_dir: Path | str | None = None,
    validate: bool = True,
    seed: int | None = None,
) -> IamDataset:
    """Find, parse, validate and split the IAM copy under ``root``.

    The split comes from ``split_dir`` if given (default: ``HTR_SPLIT_DIR``), else from the dataset's own
    splits/ folder, else from :func:`split_by_group` (by writer when forms.txt names them, else by form).
    Raises DatasetNotFoundError, DatasetReadError (a file that cannot be read) or SplitFileError (a split
    file that is not usable, an empty split included), each naming the file.
    """
    layout = find_dataset(root)
    parsed = parse_words_file(layout.words_file, layout.images_dir)
    if layout.forms_file is not None:
        writers = read_writers(layout.forms_file)
        for record in parsed.records:
            record.writer_id = writers.get(record.form_id)
    report = validate_images(parsed.records) if validate else ImageReport()
    split_dir = Path(split_dir) if split_dir is not None else split_dir_setting() or layout.split_dir
    if split_dir is not None:
        files = split_files_in(split_dir)
        splits = split_from_files(parsed.records, files)
        listed = ", ".join(path.name for paths in files.values() for path in paths)
        method = f"from the split files in {config.display_path(split_dir)} ({listed})"
    else:
        splits = split_by_group(parsed.records, seed=seed)
        by = "writer" if any(r.writer_id for r in parsed.records) else "form"
        method = f"by {by}, deterministic (seed {config.seed() if seed is None else seed}); no split files found"
    return IamDataset(layout, parsed.records, parsed.problems, parsed.duplicates, report, splits, method)


def records_to_frame(dataset: IamDataset):
    """One row per word: the record's fields, its image size, problem and split."""
    import pandas as pd

    problems = {p.word_id: p.kind for p in dataset.image_report.problems}
    rows = []
    for record in dataset.records:
        row = asdict(record)
        row["path"] = record.path.relative_to(dataset.layout.root).as_posix()
        width, height = dataset.image_report.sizes.get(record.word_id, (None, None))
        row.update(
            image_width=width,
            image_height=height,
            image_problem=problems.get(record.word_id),
            split=dataset.splits.get(record.word_id),
        )
        rows.append(row)
    return pd.DataFrame(rows)


# --- Command line -----------------------------------------------------------------
def check_report(dataset: IamDataset, limit: int = 20) -> str:
    """The text `python -m utils.iam check` prints."""
    records, report = dataset.records, dataset.image_report
    statuses = Counter(r.status for r in records)
    counts = report.counts()
    chars = sorted(set("".join(r.text for r in records)))
    longest = max(records, key=lambda r: len(r.text), default=None)
    lines = [
        f"dataset:              {dataset.layout.describe()}",
        f"words listed:         {len(records)}",
        f"  ok:                 {statuses.get('ok', 0)}",
        f"  err:                {statuses.get('err', 0)}",
        f"malformed lines:      {len(dataset.parse_problems)} (skipped)",
        f"repeated ids:         {len(dataset.duplicates)} (kept once)",
        f"images found:         {report.checked - counts['missing']}",
        f"  readable:           {len(report.sizes)}",
        f"  missing:            {counts['missing']}",
        f"  empty/unreadable:   {counts['empty'] + counts['unreadable']} "
        f"(empty {counts['empty']}, unreadable {counts['unreadable']})",
        f"  degenerate (<2 px): {counts['degenerate']}",
        f"distinct characters:  {len(chars)}",
        f"  set:                {printable(''.join(chars))}",
        f"  outside IAM's 78:   {printable(''.join(c for c in chars if c not in config.IAM_CHARSET)) or 'none'}",
        f"longest transcription: {longest.text!r} ({len(longest.text)} characters, {longest.word_id})" if longest else "longest transcription: none",
        f"split:                {dataset.split_method}",
    ]
    split_counts = Counter(dataset.splits.get(r.word_id, "in no split") for r in records)
    lines += [f"  {name + ':':19} {split_counts[name]}" for name in (*config.SPLITS, "in no split") if split_counts[name] or name in config.SPLITS]
    sections = (
        ("Malformed lines", dataset.parse_problems),
        ("Repeated ids", dataset.duplicates),
        ("Image problems", report.problems),
    )
    for title, items in sections:
        if items:
            lines.append(f"\n{title} ({len(items)}):")
            lines += [f"  {item}" for item in items[:limit]]
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines)


def _count(value: str) -> int:
    """argparse type of a count: a whole number, 0 or more (:func:`utils.cli.whole_number`)."""
    try:
        return whole_number(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a count (a whole number, 0 or more)") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``check``: 0 when the dataset is usable, 1 when a split has no usable word (warned on stderr),
    2 when nothing could be checked (no dataset, a file that cannot be read, an unusable split file)."""
    parser = argparse.ArgumentParser(prog="python -m utils.iam", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="parse and validate an IAM download, and report")
    check.add_argument("directory", type=Path, help="folder holding the dataset (searched 3 levels deep)")
    check.add_argument("--show", type=_count, default=20, help="how many problems of each kind to list")
    check.add_argument("--texts", action="store_true", help="also list every word id with its text")
    args = parser.parse_args(argv)
    try:
        dataset = load_iam(args.directory)
    except (DatasetNotFoundError, DatasetReadError, SplitFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(check_report(dataset, args.show))
    if args.texts:
        print("\nTexts:")
        for record in dataset.records:
            print(f"  {record.word_id}\t{record.status}\t{printable(record.text)}")
    empty = dataset.empty_splits()
    for name in empty:
        print(f"warning: the {name} split has no usable word (status {'/'.join(config.TRAIN_STATUSES)}, a readable image): "
              f"the series cannot train or measure on this dataset as it is split ({dataset.split_method})", file=sys.stderr)
    return 1 if empty else 0


if __name__ == "__main__":
    from utils import cli

    cli.run(main)
