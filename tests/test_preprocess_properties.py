"""Property-based tests: any array a user hands to prediction gives the model's input or a ValueError saying why.

Arrays of every shape, pixel type and value range (NaN, infinities, negatives, huge values, one pixel, one row)
go through ``_array_to_gray``, ``preprocess_image`` and ``predict_images``: nothing else may come out.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from utils import config
from utils.encoding import Vocabulary
from utils.predict import _array_to_gray, _prepare, predict_images
from utils.preprocess import preprocess_image

INPUT_SHAPE = (config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1)
SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# Found by these properties on the old code: a NaN went through to the model (or crashed TensorFlow's histogram).
KNOWN = [np.array([[np.nan]], np.float16), np.full((3, 5), np.inf, np.float32), np.array([[0.2, np.nan], [0.9, 0.1]])]
DTYPES = [np.uint8, np.uint16, np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_, np.complex64]


def shapes() -> st.SearchStrategy[tuple[int, ...]]:
    """Image-like shapes, and a few that are not: 1-D, 4-D, empty, a channel count of 0 or 5, one very long row."""
    return st.one_of(
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
        st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 4)),
        st.sampled_from([(1, 1), (1, 2000), (2000, 1), (3, 1500, 2), (0, 5), (5, 0, 3), (4, 4, 0), (4, 4, 5), (7,), (2, 3, 4, 5)]),
    )


@st.composite
def arrays(draw) -> np.ndarray:
    """Any array: its elements span the dtype's whole range (floats with NaN and infinities), or a few plausible levels."""
    dtype, shape = np.dtype(draw(st.sampled_from(DTYPES))), draw(shapes())
    if draw(st.booleans()) or dtype.kind in "bc":
        return draw(hnp.arrays(dtype, shape))  # anything at all, NaN and infinity included
    if dtype.kind == "f":
        levels = st.floats(0.0, 1.0, width=min(32, dtype.itemsize * 8))  # a valid float image...
    else:
        levels = st.integers(0, int(np.iinfo(dtype).max))
    return draw(hnp.arrays(dtype, shape, elements=levels))  # ...or a valid integer one (refused if not uint8/16)


def gray_images() -> st.SearchStrategy[np.ndarray]:
    """Valid gray float images [H, W, 1] in [0, 1], of any size and content."""
    return hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 50), st.integers(1, 120), st.just(1)),
        elements=st.floats(0.0, 1.0, width=32),
    )


def assert_model_input(image: tf.Tensor) -> None:
    array = np.asarray(image)
    assert array.shape == INPUT_SHAPE and array.dtype == np.float32
    assert np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0


class ZeroModel:
    """A stand-in for a model: uniform logits for whatever batch comes, so the test checks the images, fast."""

    def predict_on_batch(self, images):
        return np.zeros((len(images), 31, 4), np.float32)


@SETTINGS
@given(arrays())
@example(KNOWN[0])
@example(KNOWN[1])
@example(KNOWN[2])
def test_any_array_becomes_a_model_input_or_a_value_error(array):
    try:
        image = _prepare(array)
    except ValueError as error:
        assert str(error), "a refusal must say why"
        return
    assert_model_input(image)


@SETTINGS
@given(arrays())
@example(KNOWN[0])
@example(KNOWN[2])
def test_array_to_gray_gives_one_channel_in_range_or_a_value_error(array):
    try:
        gray = np.asarray(_array_to_gray(array))
    except ValueError as error:
        assert str(error)
        return
    assert gray.shape == (*array.shape[:2], 1)
    assert np.isfinite(gray).all() and gray.min() >= 0.0 and gray.max() <= 1.0


@SETTINGS
@given(gray_images())
def test_preprocess_image_keeps_any_gray_image_in_range(gray):
    assert_model_input(preprocess_image(tf.constant(gray)))


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(arrays(), min_size=1, max_size=4))
@example([np.full((20, 60), 200, np.uint8), KNOWN[2]])
def test_predict_images_answers_every_array_in_order(batch):
    predictions = predict_images(ZeroModel(), batch, Vocabulary("abc"))
    assert [p.source for p in predictions] == [f"array {index}" for index in range(len(batch))]
    for prediction in predictions:
        assert (prediction.error is None and isinstance(prediction.text, str)) or (prediction.error and prediction.text is None)
