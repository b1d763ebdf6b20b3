"""Real handwritten words in IAM's layout, cut from the lines of an ALTO dataset (Copiste d'un jour by default).

Each line of each page (:mod:`utils.alto`) gets IAM's spelling of its words (:mod:`utils.transcription`), is read by
a word reader and cut where the reading aligns each word (:mod:`utils.wordsplit`). A word is ``ok`` where both its
cuts are sure and, for the training writers, the reader, reading its crop alone, gets at most ``config.SPLIT_MAX_CER``
of its letters wrong (the validation and test writers skip that check: it would keep the words models read well
already); else ``err``, as IAM marks the doubtful words of its own automatic segmentation. The output is a mini-IAM that
chapter 01's loader reads as it is: ``words.txt`` (id, ok/err, gray level, box on the page, tag ``XX``, text),
``words/<x00>/<x00-000>/<id>.png``, ``forms.txt`` (form -> writer: one form per page, one writer per copy) and
``splits/`` (by writer, fixed: :func:`writer_split`).

Command line::

    python -m utils.realwords ../shared/copiste OUT [--model models/crnn.keras]   # every word of every page
    python -m utils.realwords OUT copiste --subset      # the subset the repository ships, from that mini-IAM
    python -m utils.realwords data/copiste-source OUT --download   # with internet: download the dataset, then build
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from utils import alto, cli, config
from utils.iam import PARTIAL_SUFFIX, REAL_WORDS_MARKER, image_path
from utils.transcription import count_reasons, is_page_id, line_words

SPLIT_SEED = 42
TEST_WRITERS, VALIDATION_WRITERS = 40, 27  # of Copiste's 267: test at least 30 people and 3,000 ok words
BATCH_PREFIX = {"imp": "i", "oldbatch": "o", "": "w"}  # a copy's batch: the first letter of its form ids
NAME_PATTERN = re.compile(r"\A(?:(imp|oldbatch)_)?wikitexte_0*(\d{1,3})(_double)?(?:_(\d))?\Z")
TAG = "XX"  # IAM's grammatical tag, unknown here
WORDS_HEADER = """#--- words.txt: real handwriting in IAM's format, cut from the lines of {source} ---#
#
# format: i00-022-03-05 ok 154 408 768 27 51 XX word
#
#     i00-022-03-05  -> word 05 of line 03 of form (page) i00-022
#     ok             -> result of the word segmentation (ok / err): err where a cut or the reading is doubtful
#     154            -> graylevel to binarize the word
#     408 768 27 51  -> bounding box around this word on its page, in x,y,w,h format
#     XX             -> the grammatical tag: unknown
#     word           -> the transcription in IAM's characters (accents dropped)
#
"""


# --- Names: pages to forms, copies to writers ---------------------------------------------------------
def form_id(page: str) -> str:
    """IAM's form id of a Copiste page: ``imp_wikitexte_0022`` -> ``i00-022``, ``wikitexte_0014_2`` -> ``w00-014b``,
    a second copy of a text (``_double``) -> ``w01-221a``; ValueError for a name of another form."""
    match = NAME_PATTERN.match(page)
    if not match:
        raise ValueError(f"{page}: not a Copiste page name (like imp_wikitexte_0022 or wikitexte_0014_2)")
    batch, number, double, part = match.groups()
    return f"{BATCH_PREFIX[batch or '']}{'01' if double else '00'}-{int(number):03d}{'abc'[int(part) - 1] if part else ''}"


def writer_id(page: str) -> str:
    """The writer of a page: its copy, the form id without the page letter (one volunteer per copy)."""
    return form_id(page).rstrip("abc")


def writer_split(writers: Sequence[str], seed: int = SPLIT_SEED) -> dict[str, str]:
    """writer -> train / validation / test: ``TEST_WRITERS`` and ``VALIDATION_WRITERS`` people drawn by a hash of
    (seed, writer), the same on every machine, the rest train."""
    order = sorted(set(writers), key=lambda writer: hashlib.sha256(f"{seed}:{writer}".encode()).hexdigest())
    return {writer: "test" if n < TEST_WRITERS else "validation" if n < TEST_WRITERS + VALIDATION_WRITERS else "train"
            for n, writer in enumerate(order)}  # fmt: skip


# --- Cutting and reading -------------------------------------------------------------------------------
def whitened(crop: np.ndarray) -> tuple[np.ndarray, int]:
    """A word crop with its paper set to white above its Otsu gray level, as IAM's word images are; and that level."""
    level, _ = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return np.where(crop > level, np.uint8(255), crop), int(level)


def _page_lines(page_lines: list[tuple[alto.TextLine, np.ndarray]], reader, vocabulary, word_model, counts: Counter, check_reading: bool = True):
    """Cut and read the lines of one page; yields (line, word number, word, crop box in the line, crop, status,
    reading) for each word with IAM's spelling that could be cut."""
    import tensorflow as tf

    from utils.metrics import character_error_rate
    from utils.predict import predict_images
    from utils.wordsplit import FRAME_PIXELS, cut_words, prepare_line

    prepared = []
    for line, image in page_lines:
        if is_page_id(line.text, line.page):
            counts["page id lines"] += 1
            continue
        words = line_words(line.text)
        ready = prepare_line(image)
        if ready is None:
            counts["lines without ink"] += 1
            continue
        prepared.append((line, image, words, ready))
    if not prepared:
        return
    width = max(ready.image.shape[1] for *_, ready in prepared)
    width = -(-width // 128) * 128  # a few widths, so the reader traces a few graphs only
    batch = np.ones((len(prepared), config.IMAGE_HEIGHT, width, 1), np.float32)
    for row, (*_, ready) in enumerate(prepared):
        batch[row, :, : ready.image.shape[1]] = ready.image
    log_probs = tf.nn.log_softmax(reader.predict_on_batch(batch)).numpy()
    cut = []
    for row, (line, image, words, ready) in enumerate(prepared):
        frames = ready.image.shape[1] // FRAME_PIXELS - 1  # the line's own frames, not the batch's padding
        cuts = cut_words(image, [word.text for word in words], log_probs[row, :frames], ready, vocabulary)
        for number, (word, word_cut) in enumerate(zip(words, cuts.words)):
            if word.text is None:
                continue
            crop = cuts.crop(image, number)
            if crop is None:
                counts["words that could not be cut"] += 1
                continue
            cut.append((line, number, word, cuts.crop_box(number, image.shape), crop, word_cut.sure))
    readings = predict_images(word_model, [crop for *_, crop, _ in cut], vocabulary)
    for (line, number, word, box, crop, sure), reading in zip(cut, readings):
        text = reading.text or ""
        # A crop the reader refuses (blank once scaled to its input: a few specks of a dashed line) is never ok.
        ok = sure and reading.ok and (not check_reading or character_error_rate([word.text], [text]) <= config.SPLIT_MAX_CER)
        counts["ok" if ok else "err: a cut not sure" if not sure else "err: the reader refuses the crop" if not reading.ok
               else "err: the reading disagrees"] += 1  # fmt: skip
        yield line, number, word, box, crop, "ok" if ok else "err", text


def build(source: Path | str, out_dir: Path | str, model_path: Path | str | None = None, report=print) -> dict:
    """Write the words of the ALTO dataset ``source`` into ``out_dir`` in IAM's layout (see the module's docstring);
    read and cut by the model at ``model_path`` (default: the shipped ``models/crnn.keras``). Returns the counts."""
    from utils.predict import load_reader
    from utils.wordsplit import line_reader

    source, out_dir = Path(source), Path(out_dir)
    model_path = Path(model_path or config.REPO_ROOT / "models" / "crnn.keras")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: not empty; give a new folder (nothing is written over)")
    files = alto.alto_files(source / "alto" if (source / "alto").is_dir() else source)
    pages = {}
    for xml_path in files:
        try:
            pages[xml_path] = form_id(xml_path.stem)
        except ValueError as error:
            report(f"{xml_path}: {error}: left out")
    splits = writer_split([form.rstrip("abc") for form in pages.values()])
    model, vocabulary = load_reader(model_path)
    reader = line_reader(model)
    partial = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    shutil.rmtree(partial, ignore_errors=True)
    images_dir = partial / "words"
    counts: Counter = Counter()
    per_split: dict[str, Counter] = {split: Counter() for split in config.SPLITS}
    transcribed: list = []
    rows = [WORDS_HEADER.format(source=source.name)]
    started = time.perf_counter()
    for done, (xml_path, form) in enumerate(pages.items(), start=1):
        problems: list[str] = []
        page_lines = list(alto.read_lines([xml_path], report=problems.append))
        for problem in problems:
            report(problem)
        transcribed += [line_words(line.text) for line, _ in page_lines if not is_page_id(line.text, line.page)]
        split = splits[form.rstrip("abc")]
        # The writers a model is measured on keep every word cut sure, read well or not: a reading check there would
        # keep the words that a model reads well already, and flatter every model measured on them.
        check = split == "train"
        for line, number, word, box, crop, status, _ in _page_lines(page_lines, reader, vocabulary, model, counts, check):
            word_id = f"{form}-{line.index:02d}-{number:02d}"
            image, level = whitened(crop)
            path = image_path(images_dir, word_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image)
            x, y = line.box[0] + box[0], line.box[1] + box[1]
            rows.append(f"{word_id} {status} {level} {x} {y} {image.shape[1]} {image.shape[0]} {TAG} {word.text}\n")
            per_split[split][status] += 1
        if done % 20 == 0 or done == len(pages):
            report(f"{done}/{len(pages)} pages, {counts['ok']:,} words ok, {time.perf_counter() - started:.0f} s")
    (partial / "words.txt").write_text("".join(rows), encoding="utf-8")
    (partial / "forms.txt").write_text("# form-id writer-id (one writer per Copiste copy)\n"
                                       + "".join(f"{form} {form.rstrip('abc')}\n" for form in pages.values()), encoding="utf-8")  # fmt: skip
    (partial / "splits").mkdir()
    for split in config.SPLITS:
        forms = sorted(form for form in pages.values() if splits[form.rstrip("abc")] == split)
        (partial / "splits" / f"{split}.txt").write_text(f"# {split}: the pages of {len({f.rstrip('abc') for f in forms})} writers\n"
                                                         + "".join(f"{form}\n" for form in forms), encoding="utf-8")  # fmt: skip
    reasons = count_reasons(transcribed)
    written = sum(reasons.values())
    summary = {"source": str(source), "model": str(model_path), "pages": len(pages), "words_in_transcriptions": written,
               "ok": counts["ok"], "yield": round(counts["ok"] / max(written, 1), 4), "counts": dict(counts),
               "splits": {split: {"writers": sum(s == split for s in splits.values()), **per_split[split]} for split in config.SPLITS},
               "labels": dict(reasons), "minutes": round((time.perf_counter() - started) / 60, 1)}  # fmt: skip
    (partial / REAL_WORDS_MARKER).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    partial.rename(out_dir)
    return summary


# --- Downloading the dataset (for users with internet) ------------------------------------------------------
COPISTE_ARCHIVE = "https://github.com/banq-dcn/Copiste-d-un-jour/archive/{commit}.zip"
COPISTE_COMMIT = "a3636d2"  # the commit ../shared/copiste was made from (its README)
DOWNLOAD_TIMEOUT = 30  # seconds without an answer before the download gives up


class DownloadError(cli.UserError):
    """The dataset could not be downloaded; the message says why and what to do instead."""


def download_copiste(target: Path | str, commit: str = COPISTE_COMMIT) -> Path:
    """Download Copiste d'un jour from its public repository (about 280 MB) and unpack its ALTO files and page images
    into ``target/alto`` and ``target/pages``, the layout :func:`build` reads; returns ``target``. Offline, a
    :class:`DownloadError` at once."""
    import io
    import urllib.error
    import urllib.request
    import zipfile

    target = Path(target)
    url = COPISTE_ARCHIVE.format(commit=commit)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            archive = zipfile.ZipFile(io.BytesIO(response.read()))
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DownloadError(f"could not download {url} ({getattr(error, 'reason', error)}): are you offline? On a machine "
                            f"with internet, download that archive and unzip its alto/ and jpg/ folders as {target}/alto "
                            f"and {target}/pages, then run python -m utils.realwords {target} OUT") from None  # fmt: skip
    for member in archive.namelist():
        parts = Path(member).parts
        folder = {"alto": "alto", "jpg": "pages"}.get(parts[1] if len(parts) > 2 else "")
        if folder and Path(member).suffix.lower() in (".xml", ".jpg"):
            (target / folder).mkdir(parents=True, exist_ok=True)
            (target / folder / Path(member).name).write_bytes(archive.read(member))
    if not (target / "alto").is_dir() or not (target / "pages").is_dir():
        raise DownloadError(f"{url} holds no alto/ and jpg/ folders: the repository's layout changed")
    return target


# --- The subset shipped in the repository --------------------------------------------------------------------
def shipped_subset(full_dir: Path | str, out_dir: Path | str, max_bytes: int | None = None) -> dict:
    """Copy a real mini-IAM's words into ``out_dir`` within ``max_bytes`` of images (default
    ``config.COPISTE_MAX_BYTES``): every word of the test and validation writers (``ok`` and ``err``: a model is
    measured on the first, chapter 01 shows both), then the ``ok`` words of whole training writers in the split's
    own order while they fit (what training reads; more hands than with their ``err`` words); each image
    re-encoded at PNG's highest compression. ``forms.txt`` and ``splits/`` list the writers kept; returns the
    counts."""
    from utils.iam import load_iam

    full_dir, out_dir = Path(full_dir), Path(out_dir)
    max_bytes = config.COPISTE_MAX_BYTES if max_bytes is None else max_bytes
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: not empty; give a new folder (nothing is written over)")
    dataset = load_iam(full_dir, validate=False)
    writer_of = {record.form_id: record.writer_id for record in dataset.records}
    split_of = {record.writer_id: dataset.splits[record.word_id] for record in dataset.records}
    by_writer: dict[str, list] = {}
    for record in dataset.records:
        if record.status == "ok" or split_of[record.writer_id] != "train":
            by_writer.setdefault(record.writer_id, []).append(record)
    order = list(writer_split(list(by_writer)))  # test writers first, then validation, then training: hash order
    encoded: dict[str, bytes] = {}
    kept: list[str] = []
    total = 0
    for writer in order:
        images = {}
        for record in by_writer[writer]:
            image = cv2.imread(str(record.path), cv2.IMREAD_GRAYSCALE)
            images[record.word_id] = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()
        size = sum(len(data) for data in images.values())
        if split_of[writer] == "train" and total + size > max_bytes:
            break
        if total + size > max_bytes:
            raise ValueError(f"the test and validation writers alone need more than {max_bytes:,} bytes")
        encoded.update(images)
        kept.append(writer)
        total += size
    partial = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    shutil.rmtree(partial, ignore_errors=True)
    rows = [line for line in (full_dir / "words.txt").read_text(encoding="utf-8").splitlines(keepends=True)
            if line.startswith("#") or line.split(" ", 1)[0] in encoded]  # fmt: skip
    for word_id, data in encoded.items():
        path = image_path(partial / "words", word_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (partial / "words.txt").write_text("".join(rows), encoding="utf-8")
    forms = sorted(form for form, writer in writer_of.items() if writer in kept)
    (partial / "forms.txt").write_text("# form-id writer-id (one writer per Copiste copy)\n"
                                       + "".join(f"{form} {writer_of[form]}\n" for form in forms), encoding="utf-8")  # fmt: skip
    (partial / "splits").mkdir()
    counts = {}
    for split in config.SPLITS:
        writers = [writer for writer in kept if split_of[writer] == split]
        split_forms = [form for form in forms if writer_of[form] in writers]
        (partial / "splits" / f"{split}.txt").write_text(f"# {split}: the pages of {len(writers)} writers\n"
                                                         + "".join(f"{form}\n" for form in split_forms), encoding="utf-8")  # fmt: skip
        words = [record for writer in writers for record in by_writer[writer]]
        counts[split] = {"writers": len(writers), "ok": sum(r.status == "ok" for r in words), "err": sum(r.status == "err" for r in words)}
    summary = {"from": full_dir.name, "image_bytes": total, "splits": counts}
    (partial / "subset.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    shutil.copyfile(full_dir / REAL_WORDS_MARKER, partial / REAL_WORDS_MARKER)  # how the full set was made; the marker
    partial.rename(out_dir)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.realwords", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the ALTO dataset: a folder with alto/ and pages/ (../shared/copiste); "
                                                 "with --subset, a mini-IAM made by this command")  # fmt: skip
    parser.add_argument("out", type=Path, help="a new folder for the mini-IAM")
    parser.add_argument("--model", type=Path, default=None, help="the word reader that aligns and checks (default: models/crnn.keras)")
    parser.add_argument("--subset", action="store_true", help="copy the subset that the repository ships (copiste/) from source")
    parser.add_argument("--download", action="store_true", help="first download the dataset from its repository into source")
    args = parser.parse_args(argv)
    if args.download:
        download_copiste(args.source)
    if args.subset:
        summary = shipped_subset(args.source, args.out)
    else:
        summary = build(args.source, args.out, args.model, report=lambda message: print(message, file=sys.stderr))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    cli.run(main)
