"""Lines of handwriting into words, with a word reader to say where each word lies.

The gaps between pieces of ink (:func:`utils.handwriting.line_pieces`) are where words may part, but in a line of
cursive the gaps inside words are often as wide as those between them. So the word reader reads the whole line: its
convolutions and BiLSTMs take any width (:func:`line_reader`), and the line's known text is aligned to what it reads,
frame by frame (:func:`align`, CTC's forced alignment, the Viterbi path). Each boundary between two words then lies in
a stretch of frames between the last letter of one and the first of the next; the gap of ink inside that stretch is
the cut. A word is sure only where both its cuts fall in clear gaps, its ink reaches its first and last letters, it
shows the punctuation its text has at each end and no other (marks beside words go to the word whose text has them),
and no neighbour is an unknown word; :mod:`utils.realwords` marks the others ``err``, as IAM's automatic
segmentation marks its doubtful words.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from utils import config
from utils.encoding import Vocabulary
from utils.preprocess import normalize_contrast

LINE_INK_HEIGHT = 48  # the line's ink is scaled to this height: a word's usual height in the 64 x 128 input
FRAME_PIXELS = 4  # each output frame of the CRNN steps 4 pixels along the width (128 -> 31 frames)
WILDCARD = -1  # in a label sequence: a word whose letters are unknown (crossed out, unreadable), any letters


def line_reader(model: keras.Model) -> keras.Model:
    """The word reader ``model`` on an input of any width: [B, 64, W, 1] -> [B, W / 4 - 1, characters + 1] logits.

    The same layers and weights; only the reshape from the feature map to the sequence is told that the width varies.
    """
    inputs = keras.Input((config.IMAGE_HEIGHT, None, 1), name="line")
    x = inputs
    for layer in model.layers[1:]:
        if isinstance(layer, keras.layers.Reshape):
            x = keras.layers.Reshape((-1, layer.target_shape[-1]), name=layer.name)(x)
        else:
            x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_lines")


@dataclass(frozen=True)
class PreparedLine:
    image: np.ndarray  # float32 [64, W, 1]: the reader's input
    x0: int  # the first column of the line's ink in the line image
    scale: float  # reader pixels per line-image pixel


def prepare_line(gray: np.ndarray) -> PreparedLine | None:
    """A line image (gray uint8, paper light) as the line reader's input: contrast stretched as a word's is, its ink
    scaled to ``LINE_INK_HEIGHT`` pixels and centred in 64 rows, paper added to a multiple of 4 columns; None when
    there is no ink."""
    image = normalize_contrast(tf.convert_to_tensor(gray[..., None], tf.float32) / 255.0).numpy()[..., 0]
    ink = image < 0.5
    if not ink.any():
        return None
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    image = image[y0:y1, x0:x1]
    scale = min(LINE_INK_HEIGHT / image.shape[0], config.MAX_UPSCALE)
    height, width = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
    resized = tf.image.resize(image[..., None], [height, width], antialias=True).numpy()
    padded_width = -(-(width + 2 * FRAME_PIXELS) // FRAME_PIXELS) * FRAME_PIXELS
    canvas = np.ones((config.IMAGE_HEIGHT, padded_width, 1), np.float32)
    top = (config.IMAGE_HEIGHT - height) // 2
    canvas[top : top + height, FRAME_PIXELS : FRAME_PIXELS + width] = np.clip(resized, 0, 1)
    return PreparedLine(canvas, int(x0) - round(FRAME_PIXELS / scale), scale)


def frame_to_x(frame: float, line: PreparedLine) -> float:
    """The line image's column at the centre of output frame ``frame``."""
    return line.x0 + (frame * FRAME_PIXELS + FRAME_PIXELS) / line.scale


def align(log_probs: np.ndarray, labels: list[int]) -> np.ndarray | None:
    """CTC's forced alignment: the most likely path of ``labels`` through the frames of ``log_probs`` [T, C] (log
    softmax, blank 0). Returns, per frame, the index of the label it emits, or -1 for a blank; None when the labels
    do not fit the frames. A ``WILDCARD`` label emits any characters but the blank (its best each frame)."""
    frames = len(log_probs)
    states = 2 * len(labels) + 1
    emission = np.empty((frames, states), np.float64)
    emission[:, 0::2] = log_probs[:, :1]
    best_character = log_probs[:, 1:].max(axis=1)
    for index, label in enumerate(labels):
        emission[:, 2 * index + 1] = best_character if label == WILDCARD else log_probs[:, label]
    # A path may skip the blank between two labels unless they are the same character (CTC's doubled letters).
    skip = np.zeros(states, bool)
    for index in range(1, len(labels)):
        skip[2 * index + 1] = labels[index] != labels[index - 1] or labels[index] == WILDCARD
    score = np.full(states, -np.inf)
    score[:2] = emission[0, :2]
    came_from = np.zeros((frames, states), np.int8)  # 0: stayed, 1: from the state before, 2: from two before
    for frame in range(1, frames):
        stay, step, jump = score, np.r_[-np.inf, score[:-1]], np.r_[-np.inf, -np.inf, score[:-2]]
        jump = np.where(skip, jump, -np.inf)
        choices = np.stack([stay, step, jump])
        came_from[frame] = choices.argmax(axis=0)
        score = choices.max(axis=0) + emission[frame]
    end = states - 1 if score[-1] >= score[-2] or states == 1 else states - 2
    if not np.isfinite(score[end]):
        return None
    path = np.empty(frames, np.int64)
    state = end
    for frame in range(frames - 1, -1, -1):
        path[frame] = state
        state -= int(came_from[frame, state])
    return np.where(path % 2 == 1, path // 2, -1)


def word_spans(path: np.ndarray, word_lengths: list[int]) -> list[tuple[int, int]]:
    """Each word's frames [first, last] on an alignment ``path`` whose labels are the words' letters in a row."""
    spans = []
    start = 0
    for length in word_lengths:
        frames = np.flatnonzero((path >= start) & (path < start + length))
        spans.append((int(frames[0]), int(frames[-1])))
        start += length
    return spans


def label_ids(text: str | None, vocabulary: Vocabulary) -> list[int]:
    """The ids of a word's letters, or one ``WILDCARD`` for a word without a known spelling."""
    return [WILDCARD] if text is None else vocabulary.encode(text)


# --- Cutting a line at the gaps the alignment points to -------------------------------------------------
@dataclass(frozen=True)
class WordCut:
    """One written word of a line: its box in the line image (x, y, w, h; None where it has no ink of its own),
    whether both its cuts fell in clear gaps, and the ink labels of its own pieces (to whiten its neighbours')."""

    text: str | None
    box: tuple[int, int, int, int] | None
    sure: bool
    blobs: tuple[int, ...] = ()


@dataclass
class LineCuts:
    """A line's words, the labels of its ink (from :func:`utils.handwriting.line_pieces`) that their crops use, and
    the line's paper level (:func:`utils.alto.paper_level`) that paints the other words' ink out."""

    words: list[WordCut]
    ink_labels: np.ndarray | None = None
    band: int = 0
    paper: int = 255
    strays: tuple[int, ...] = ()  # blobs of no word: the next line's ascenders (``config.STRAY_BELOW_BASELINE``)

    def crop_box(self, index: int, shape: tuple[int, ...], margin: int | None = None) -> tuple[int, int, int, int] | None:
        """Columns and rows (x0, y0, x1, y1) of word ``index``'s crop from a line image of ``shape``: its box with
        ``margin`` pixels around (default ``config.WORD_MARGIN``) and a third of a band more above (accents, the dots
        of i's); None for a word without a box."""
        box = self.words[index].box
        if box is None:
            return None
        margin = config.WORD_MARGIN if margin is None else margin
        x, y, w, h = box
        return max(0, x - margin), max(0, y - margin - self.band // 3), min(shape[1], x + w + margin), min(shape[0], y + h + margin)

    def crop(self, gray: np.ndarray, index: int, margin: int | None = None) -> np.ndarray | None:
        """Word ``index`` cut from the line image ``gray`` (:meth:`crop_box`), the ink of the other words' pieces and
        the strays painted the paper's colour; None for a word without a box."""
        box = self.crop_box(index, gray.shape, margin)
        if box is None or self.ink_labels is None:
            return None
        x0, y0, x1, y1 = box
        crop = gray[y0:y1, x0:x1].copy()
        word = self.words[index]
        others = ({blob for other in self.words if other is not word for blob in other.blobs} | set(self.strays)) - set(word.blobs)
        crop[np.isin(self.ink_labels[y0:y1, x0:x1], list(others))] = self.paper
        return crop


@dataclass(frozen=True)
class _Boundary:
    gap: int | None  # the cut lies after piece ``gap``; None: no gap between pieces where the words meet
    sure: bool


def _boundary(interval: tuple[float, float], gap_centres: np.ndarray, gap_widths: np.ndarray, band: int, tolerance: float) -> _Boundary:
    """The gap where two words meet: among the gaps inside the stretch of frames between the last letter of one and
    the first of the next (``interval``, line-image columns), the widest; sure when it is at least
    ``config.SPLIT_MIN_GAP`` band heights wide and ``config.SPLIT_GAP_RATIO`` times as wide as any other there."""
    low, high = interval[0] - tolerance, interval[1] + tolerance
    inside = np.flatnonzero((gap_centres >= low) & (gap_centres <= high))
    if not len(inside):
        return _Boundary(None, False)
    order = inside[np.argsort(gap_widths[inside])[::-1]]
    widest = gap_widths[order[0]]
    clear = len(order) == 1 or widest >= config.SPLIT_GAP_RATIO * max(gap_widths[order[1]], 1.0)
    return _Boundary(int(order[0]), bool(clear and widest >= config.SPLIT_MIN_GAP * band))


def cut_words(gray: np.ndarray, texts: list[str | None], log_probs: np.ndarray, line: PreparedLine, vocabulary: Vocabulary) -> LineCuts:
    """Cut a line image into its written words (``texts``: each word's IAM spelling, None for a word whose letters
    are unknown), from the line reader's ``log_probs`` [T, C] of the ``line`` prepared from ``gray``.

    Every word gets a :class:`WordCut`, in order; none is ``sure`` where the alignment fails or the line has no ink.
    """
    from utils.alto import paper_level
    from utils.handwriting import line_pieces, pieces_box

    unsure = LineCuts([WordCut(text, None, False) for text in texts])
    labels = [label_ids(text, vocabulary) for text in texts]
    path = align(log_probs, [label for word in labels for label in word])
    found = line_pieces(gray)
    if path is None or found is None:
        return unsure
    ink_labels, pieces, columns, gaps, band, baseline = found
    spans = word_spans(path, [len(word) for word in labels])
    gap_centres = np.asarray([(columns[k][1] + columns[k + 1][0]) / 2 for k in range(len(gaps))], np.float64)
    gap_widths = np.asarray(gaps, np.float64)
    tolerance = FRAME_PIXELS / line.scale
    boundaries = [_boundary((frame_to_x(spans[m][1], line), frame_to_x(spans[m + 1][0], line)), gap_centres, gap_widths, band, tolerance)
                  for m in range(len(spans) - 1)]  # fmt: skip
    # A word's pieces lie between its two cuts; the line's ends are cuts too, past any ink before the first letter
    # or after the last (a margin mark, a stroke of the next line that the polygon kept).
    first = frame_to_x(spans[0][0], line) - tolerance
    last = frame_to_x(spans[-1][1], line) + tolerance
    starts = [next((k for k, span in enumerate(columns) if span[1] >= first), 0)]
    ends = []
    for boundary in boundaries:
        ends.append(boundary.gap if boundary.gap is not None else -1)
        starts.append(boundary.gap + 1 if boundary.gap is not None else -1)
    ends.append(max((k for k, span in enumerate(columns) if span[0] <= last), default=len(pieces) - 1))
    extents = _blob_extents(ink_labels)
    in_pieces = {blob for piece in pieces for blob in piece}
    strays = {blob for blob in range(1, len(extents)) if blob not in in_pieces and extents[blob, 0] >= baseline + config.STRAY_BELOW_BASELINE * band}
    marks = [blob for blob in range(1, len(extents)) if blob not in in_pieces and blob not in strays]
    claims = _claim_marks(marks, extents, texts, starts, ends, columns, gray.shape[1], band)
    strays |= {mark for mark, claimant in claims.items() if claimant is None}
    cuts = []
    for m, text in enumerate(texts):
        start, end = starts[m], ends[m]
        sure_left = m == 0 or boundaries[m - 1].sure
        sure_right = m == len(texts) - 1 or boundaries[m].sure
        if start < 0 or end < start:
            cuts.append(WordCut(text, None, False))
            continue
        own = [mark for mark, claimant in claims.items() if claimant == m]
        blobs = tuple(blob for piece in pieces[start : end + 1] for blob in piece) + tuple(own)
        left = min([columns[start][0], *(int(extents[mark, 2]) for mark in own)])
        right_of_pieces = max(span[1] for span in columns[start : end + 1])
        right = max([right_of_pieces, *(int(extents[mark, 3]) for mark in own)])
        box = pieces_box(ink_labels, list(blobs), (left, right))
        # A piece wholly before the word's first letter or after its last (a neighbour's comma, a stroke crossed out)
        # is no part of it: the cut is not clean. (CTC places a letter at a frame inside it, often its left half.)
        first_letter, last_letter = frame_to_x(spans[m][0], line), frame_to_x(spans[m][1], line)
        fits = columns[start][1] >= first_letter - tolerance and columns[end][0] <= last_letter + tolerance
        # Nor is it clean where the pieces stop short of its first letter (by more than a band height: CTC often fires
        # a letter a little before its ink) or of its last (by more than two frames) -- strokes too faint for the ink
        # mask, so the crop would hold part of the word -- or where a neighbour's letters are unknown (the alignment
        # there is only as good as the wildcard's one frame).
        covers = left <= first_letter + max(tolerance, band) and right >= last_letter - 2 * tolerance
        known_neighbours = (m == 0 or texts[m - 1] is not None) and (m == len(texts) - 1 or texts[m + 1] is not None)
        # A word that opens or ends with punctuation must show it apart (a mark it claimed, or a piece that size
        # there), and one that does not must not (a piece that size there is a neighbour's comma).
        marked = text is not None and (
            (any(extents[mark, 3] <= columns[start][0] for mark in own) or _punctuation_sized(pieces[start], extents, band, baseline))
            == (text[0] in OPENING_MARKS)
            and (any(extents[mark, 2] >= right_of_pieces for mark in own) or _punctuation_sized(pieces[end], extents, band, baseline))
            == (text[-1] in CLOSING_MARKS))  # fmt: skip
        sure = sure_left and sure_right and fits and covers and known_neighbours and marked
        cuts.append(WordCut(text, box, sure, blobs))
    return LineCuts(cuts, ink_labels, band, paper_level(gray), tuple(sorted(strays)))


OPENING_MARKS = frozenset("\"'([")  # punctuation that may stand before a word's letters, in IAM's spelling
CLOSING_MARKS = frozenset(".,;:!?\"')]")  # and after them


def _blob_extents(labels: np.ndarray) -> np.ndarray:
    """Each labelled blob's first row, last row + 1, first column and last column + 1: [labels, 4] (row 0, the
    paper, unused)."""
    rows, columns = np.nonzero(labels)
    found = labels[rows, columns]
    extents = np.zeros((int(labels.max()) + 1, 4), np.int64)
    extents[:, [0, 2]] = np.iinfo(np.int64).max
    np.minimum.at(extents[:, 0], found, rows)
    np.maximum.at(extents[:, 1], found, rows + 1)
    np.minimum.at(extents[:, 2], found, columns)
    np.maximum.at(extents[:, 3], found, columns + 1)
    return extents


def _punctuation_sized(blobs: list[int], extents: np.ndarray, band: int, baseline: int) -> bool:
    """Whether the ink of ``blobs`` is a comma, a dot, a quote: at most a band height wide, and wholly below or wholly
    above the middle of the band, which every letter crosses."""
    top, bottom = extents[blobs, 0].min(), extents[blobs, 1].max()
    left, right = extents[blobs, 2].min(), extents[blobs, 3].max()
    middle = baseline - band / 2
    return right - left <= band and (top >= middle or bottom <= middle)


def _claim_marks(marks, extents, texts, starts, ends, columns, width, band) -> dict[int, int | None]:
    """Which word owns each mark (a blob outside the pieces: a comma under the baseline, a quote above it) that lies
    beside a word's pieces, between them and the next word's: the word whose text has punctuation on that side (the
    nearer one if both have; a mark wider than the band is no punctuation), else no word (None: painted out of every
    crop). Marks over a word's own pieces (the dot of an i) are left as they are."""
    claims: dict[int, int | None] = {}
    for mark in marks:
        centre = (extents[mark, 2] + extents[mark, 3]) / 2
        small = extents[mark, 3] - extents[mark, 2] <= band
        candidates = []
        for m, text in enumerate(texts):
            start, end = starts[m], ends[m]
            if text is None or start < 0 or end < start:
                continue
            own_left, own_right = columns[start][0], max(span[1] for span in columns[start : end + 1])
            left_limit = columns[start - 1][1] if start > 0 else 0
            right_limit = columns[end + 1][0] if end + 1 < len(columns) else width
            if left_limit <= centre < own_left:
                candidates.append((own_left - centre, m, small and text[0] in OPENING_MARKS))
            elif own_right <= centre < right_limit:
                candidates.append((centre - own_right, m, small and text[-1] in CLOSING_MARKS))
            elif own_left <= centre < own_right:
                break  # over a word's own ink: its own dot or accent
        else:
            claiming = sorted((distance, m) for distance, m, claims_it in candidates if claims_it)
            claims[mark] = claiming[0][1] if claiming else None
    return claims
