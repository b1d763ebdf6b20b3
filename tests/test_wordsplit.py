"""utils.wordsplit: CTC's forced alignment, the reader on lines of any width, and real lines cut into their words."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from utils import alto, config, wordsplit
from utils.transcription import line_words
from utils.wordsplit import WILDCARD, align, word_spans

SAMPLE = Path(__file__).parent / "fixtures" / "alto_sample"


def log_probs_of(best: list[int], classes: int = 8) -> np.ndarray:
    """Log probabilities whose best class at frame t is ``best[t]`` (0 is the blank), every other class far less likely."""
    logits = np.full((len(best), classes), -5.0)
    logits[np.arange(len(best)), best] = 5.0
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def test_the_alignment_follows_the_frames_and_gives_each_letter_its_frames():
    path = align(log_probs_of([0, 1, 1, 0, 0, 2, 3, 0]), [1, 2, 3])
    np.testing.assert_array_equal(path, [-1, 0, 0, -1, -1, 1, 2, -1])
    assert word_spans(path, [1, 2]) == [(1, 2), (5, 6)]


def test_a_doubled_letter_needs_a_blank_between_and_too_few_frames_give_none():
    assert align(log_probs_of([1, 1]), [1, 1]) is None
    np.testing.assert_array_equal(align(log_probs_of([1, 0, 1]), [1, 1]), [0, -1, 1])
    # Forced: the labels are placed even where the frames would rather read another letter.
    path = align(log_probs_of([4, 0, 4]), [1, 2])
    assert sorted(set(path.tolist()) - {-1}) == [0, 1]


def test_a_wildcard_takes_the_frames_of_unknown_letters():
    path = align(log_probs_of([0, 5, 6, 5, 0, 3, 0]), [WILDCARD, 3])
    np.testing.assert_array_equal(path, [-1, 0, 0, 0, -1, 1, -1])


@pytest.fixture(scope="module")
def shipped():
    from utils.predict import load_reader

    model, vocabulary = load_reader(config.SHIPPED_MODEL)
    return model, vocabulary, wordsplit.line_reader(model)


def test_the_line_reader_reads_a_word_wide_input_as_the_word_reader(shipped):
    model, _, reader = shipped
    images = np.random.default_rng(0).random((2, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1), dtype=np.float32)
    np.testing.assert_allclose(reader.predict_on_batch(images), model.predict_on_batch(images), atol=1e-5)
    assert reader.predict_on_batch(np.ones((1, config.IMAGE_HEIGHT, 400, 1), np.float32)).shape[1] == 400 // 4 - 1


def test_a_real_line_is_cut_into_its_words_left_to_right(shipped):
    import tensorflow as tf

    _, vocabulary, reader = shipped
    lines = {line.text: (line, image) for line, image in alto.read_lines(SAMPLE / "alto")}
    line, image = lines["Le village comptait approximativement une"]
    words = line_words(line.text)
    ready = wordsplit.prepare_line(image)
    assert ready.image.shape[0] == config.IMAGE_HEIGHT and ready.image.shape[1] % wordsplit.FRAME_PIXELS == 0
    log_probs = tf.nn.log_softmax(reader.predict_on_batch(ready.image[None])[0]).numpy()
    cuts = wordsplit.cut_words(image, [word.text for word in words], log_probs, ready, vocabulary)
    assert [cut.text for cut in cuts.words] == ["Le", "village", "comptait", "approximativement", "une"]
    boxes = [cut.box for cut in cuts.words]
    assert all(box is not None for box in boxes) and all(cut.sure for cut in cuts.words)
    for left, right in itertools.pairwise(boxes):
        assert left[0] + left[2] <= right[0] + 2  # in order, side by side
    widths = [box[2] for box in boxes]
    assert widths.index(max(widths)) == 3  # "approximativement" is the widest
    crop = cuts.crop(image, 1)
    assert crop.shape[0] > boxes[1][3] and crop.shape[1] == boxes[1][2] + 2 * config.WORD_MARGIN
    assert cuts.crop(image, 1).min() < 100  # ink


def test_an_unreadable_line_leaves_every_word_unsure(shipped):
    _, vocabulary, _ = shipped
    blank = np.full((40, 300), 230, np.uint8)
    assert wordsplit.prepare_line(blank) is None
    ready = wordsplit.PreparedLine(np.ones((config.IMAGE_HEIGHT, 16, 1), np.float32), 0, 1.0)
    cuts = wordsplit.cut_words(blank, ["a", "long", "line"], log_probs_of([0, 1, 0], classes=80), ready, vocabulary)  # no fit
    assert [(cut.box, cut.sure) for cut in cuts.words] == [(None, False)] * 3


# --- Marks beside words, strays below, punctuation that must show ----------------------------------------------
def drawn_line(comma_at: int | None) -> np.ndarray:
    """A line of two 'words' (strokes in rows 20-40, the band, and an ascender), a comma-sized mark under the baseline at column
    ``comma_at``, and a bit of the next line's ascender far below the first word."""
    gray = np.full((70, 170), 235, np.uint8)
    for x0, x1 in ((20, 60), (100, 140)):
        for x in range(x0, x1, 8):  # letters: strokes 4 pixels wide, the band's height, the last an ascender
            gray[20 if x + 8 < x1 else 8 : 40, x : x + 4] = 30
    if comma_at is not None:
        gray[42:50, comma_at : comma_at + 4] = 30
    gray[58:70, 30:34] = 30  # the next line's ascender, kept by the polygon
    return gray


def cut_drawn(gray: np.ndarray, texts: list[str], frames: dict[int, str], vocabulary):
    """cut_words on ``gray`` with a reading that fires each letter at the frame given (frame t's centre: column
    4t + 4), the blank elsewhere."""
    best = [0] * 40
    for frame, character in frames.items():
        best[frame] = vocabulary.encode(character)[0]
    ready = wordsplit.PreparedLine(np.ones((config.IMAGE_HEIGHT, 164, 1), np.float32), 0, 1.0)
    return wordsplit.cut_words(gray, texts, log_probs_of(best, classes=vocabulary.num_classes), ready, vocabulary)


@pytest.fixture
def vocabulary():
    from utils.encoding import Vocabulary

    return Vocabulary(config.IAM_CHARSET)


def test_a_comma_beside_a_word_goes_with_the_word_whose_text_has_it(vocabulary):
    gray = drawn_line(comma_at=64)
    cuts = cut_drawn(gray, ["ab,", "cd"], {6: "a", 10: "b", 15: ",", 26: "c", 31: "d"}, vocabulary)
    assert [cut.sure for cut in cuts.words] == [True, True]
    assert cuts.words[0].box[0] + cuts.words[0].box[2] == 68  # the box reaches past the comma
    assert cuts.crop(gray, 0)[30:, 46:52].min() < 100  # the comma is in the first word's crop


def test_a_mark_no_text_claims_is_painted_out_and_a_missing_comma_leaves_the_word_unsure(vocabulary):
    gray = drawn_line(comma_at=92)  # against the second word, which has no comma
    cuts = cut_drawn(gray, ["ab", "cd"], {6: "a", 12: "b", 26: "c", 31: "d"}, vocabulary)
    assert [cut.sure for cut in cuts.words] == [True, True]
    x0, y0, x1, y1 = cuts.crop_box(1, gray.shape)
    assert x0 < 92 + 4  # the mark lies in the second word's crop box ...
    assert cuts.crop(gray, 1)[42 - y0 : 50 - y0, : 96 - x0].min() > 200  # ... and is painted out
    cuts = cut_drawn(drawn_line(comma_at=None), ["ab,", "cd"], {6: "a", 10: "b", 12: ",", 26: "c", 31: "d"}, vocabulary)
    assert [cut.sure for cut in cuts.words] == [False, True]  # its text ends with a comma its ink does not show


def test_the_next_line_s_ascenders_are_strays_and_a_comma_is_not(vocabulary):
    gray = drawn_line(comma_at=64)
    cuts = cut_drawn(gray, ["ab,", "cd"], {6: "a", 10: "b", 15: ",", 26: "c", 31: "d"}, vocabulary)
    assert cuts.ink_labels[60, 31] in cuts.strays  # starts half a band under the baseline: painted out of every crop
    assert cuts.ink_labels[45, 65] in cuts.words[0].blobs and cuts.ink_labels[45, 65] not in cuts.strays


def test_punctuation_on_the_wrong_side_leaves_the_word_unsure(vocabulary):
    cuts = cut_drawn(drawn_line(comma_at=92), ["ab", "cd,"], {6: "a", 12: "b", 26: "c", 31: "d", 34: ","}, vocabulary)
    assert [cut.sure for cut in cuts.words] == [True, False]  # the comma is on its left: none shows on its right


def test_words_beside_an_unknown_word_are_unsure(vocabulary):
    gray = drawn_line(comma_at=None)
    cuts = cut_drawn(gray, [None, "cd"], {6: "a", 12: "b", 26: "c", 31: "d"}, vocabulary)
    assert not cuts.words[1].sure
