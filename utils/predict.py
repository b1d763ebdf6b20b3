"""Read words from your own images with a trained model.

    python -m utils.predict IMAGE... [--model artifacts/models/regularised/model.keras] [--beam N] [--lexicon FILE]

Without ``--model`` it reads with the model the series ships, ``models/crnn.keras`` (trained on the
synthetic mini-IAM, then fine-tuned on real handwriting: ``models/README.md``). The model may also be
a TensorFlow Lite file written by ``utils.export`` (``--model .../model.tflite``).

Prints ``path<TAB>text`` for each image, in order; a path with a tab, a newline or another
unprintable character is printed as a Python string literal (``'a\\tb.png'``), so each line stays
one path and one text. Images go through exactly the preprocessing of training
(``preprocess.preprocess_image``): any size up to ``config.MAX_IMAGE_PIXELS`` pixels, PNG, JPEG, BMP,
GIF or WebP (a file of at most ``config.MAX_IMAGE_FILE_BYTES``, looked at before it is read), gray or colour, turned upright by a photo's EXIF orientation, light ink on a dark ground
inverted. A file that cannot be read, or that holds no ink, is reported on stderr with the reason,
and the others are still read; the exit status is then 1. ``--beam`` takes 1 to
``config.MAX_BEAM_WIDTH``. The model's vocabulary is the ``vocabulary.txt`` saved beside it by training.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from utils.setup import import_tensorflow_quietly

import_tensorflow_quietly()  # before TensorFlow prints its start-up notices on the command line

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from utils import cli, config  # noqa: E402
from utils.decoding import Lexicon, decode  # noqa: E402
from utils.encoding import Vocabulary  # noqa: E402
from utils.export import TFLiteModel  # noqa: E402
from utils.model import load_model, predict_logits, saved_vocabulary  # noqa: E402
from utils.preprocess import check_image_start, decode_image_bytes, preprocess_image, to_gray  # noqa: E402

VOCABULARY_BESIDE_MODEL = "vocabulary.txt"
NOT_IMAGES = {".csv", ".md", ".txt", ".json"}  # what a glob such as test_data/* also matches
BLANK = "blank image: no ink found"


@dataclass
class Prediction:
    """What the model read from one image, or why it could not."""

    source: str  # the path, or "array k"
    text: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def load_reader(model_path: Path | str, vocabulary_path: Path | str | None = None) -> tuple[keras.Model | TFLiteModel, Vocabulary]:
    """A saved model (``.keras``, loaded with ``safe_mode=True``, or ``.tflite``) and its vocabulary
    (by default ``vocabulary.txt`` beside it).

    A ``.keras`` model saved by this series holds the vocabulary it was trained with (:func:`utils.model.save_model`):
    a vocabulary file that differs from it (two lines swapped, another model's) is refused, naming the first
    difference; without a file beside the model, the one inside it is used.
    """
    model_path = Path(model_path)
    given = vocabulary_path is not None
    vocabulary_path = Path(vocabulary_path) if given else model_path.parent / VOCABULARY_BESIDE_MODEL
    if not model_path.is_file():
        hint = "python -m utils.pretrain trains it" if model_path == config.SHIPPED_MODEL else "train one in chapter 04"
        raise FileNotFoundError(f"{config.display_path(model_path)}: no such model file ({hint})")
    tflite = model_path.suffix == ".tflite"
    model = TFLiteModel(model_path) if tflite else load_model(model_path)
    stored = None if tflite else saved_vocabulary(model_path)
    if vocabulary_path.is_file() or given or stored is None:
        if not vocabulary_path.is_file():
            raise FileNotFoundError(
                f"{config.display_path(vocabulary_path)}: no vocabulary for {config.display_path(model_path)} "
                "(training saves it beside the model; pass --vocabulary to give another)"
            )
        vocabulary = Vocabulary.load(vocabulary_path)
    else:
        vocabulary = stored
    if stored is not None and stored != vocabulary:
        raise ValueError(f"{config.display_path(vocabulary_path)} is not the vocabulary {config.display_path(model_path)} "
                         f"was trained with ({_first_difference(stored, vocabulary)}): they do not belong together")  # fmt: skip
    outputs = model.output_shape[-1]
    if outputs != vocabulary.num_classes:
        raise ValueError(
            f"{config.display_path(model_path)} writes {outputs - 1} characters but "
            f"{config.display_path(vocabulary_path)} has {len(vocabulary)}: they do not belong together"
        )
    return model, vocabulary


def _first_difference(trained: Vocabulary, given: Vocabulary) -> str:
    """Where two vocabularies first differ, in words: "id 2 is 'b' in the model and 'a' in the file"."""
    for index, (a, b) in enumerate(zip(trained.characters, given.characters), start=1):
        if a != b:
            return f"id {index} is {a!r} in the model and {b!r} in the file"
    return f"the model has {len(trained)} characters and the file {len(given)}"


def _array_to_gray(array: np.ndarray) -> tf.Tensor:
    """An image array (uint8, uint16 or float in [0, 1]; 2-D, or 1 to 4 channels) -> float [H, W, 1].

    Raises ValueError naming what is wrong: the shape, the pixel type, values out of range (NaN
    included), or more than ``config.MAX_IMAGE_PIXELS`` pixels, the limit of every reader.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or not 1 <= array.shape[-1] <= 4 or min(array.shape[:2]) < 1:
        raise ValueError(f"expected an image of shape [H, W] or [H, W, 1-4], got {array.shape}")
    height, width = array.shape[:2]
    if height * width > config.MAX_IMAGE_PIXELS:
        raise ValueError(
            f"too large: {width} x {height} pixels ({width * height:,}), "
            f"more than the limit of {config.MAX_IMAGE_PIXELS:,} (config.MAX_IMAGE_PIXELS)"
        )
    if array.dtype == np.uint8:
        scaled = array / 255.0
    elif array.dtype == np.uint16:
        scaled = array / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("a float image must be in [0, 1], got NaN or infinity")
        if array.min() < 0 or array.max() > 1:
            raise ValueError(f"a float image must be in [0, 1], got {array.min():.3g} to {array.max():.3g}")
        scaled = array
    else:
        raise ValueError(f"unsupported pixel type {array.dtype}: expected uint8, uint16 or float in [0, 1]")
    return to_gray(scaled.astype(np.float32))


def _read_file(path: Path) -> tf.Tensor:
    """The model input of one image file, exactly as training prepares it; ValueError naming what is wrong.

    The file is looked at before it is read: a regular file (not a folder, FIFO or device), at most
    ``config.MAX_IMAGE_FILE_BYTES``, whose first bytes are an image format's.
    """
    data = cli.read_user_file(path, config.MAX_IMAGE_FILE_BYTES, "config.MAX_IMAGE_FILE_BYTES", check_image_start)
    return preprocess_image(decode_image_bytes(data))


def _prepare(item: str | Path | np.ndarray) -> tf.Tensor:
    """One model input [64, 128, 1] from a file path or an array; raises ValueError naming the problem.

    An image without ink (fully transparent, or one colour) is refused as blank: the model would read
    something from nothing.
    """
    if isinstance(item, np.ndarray):
        image = preprocess_image(_array_to_gray(item))
    else:
        image = _read_file(Path(item))
    if float(tf.reduce_max(image) - tf.reduce_min(image)) <= config.BLANK_MAX_SPREAD:
        raise ValueError(BLANK)
    return image


def _printable(source: str) -> str:
    """``source`` as it is, or as a Python string literal (``repr``) where a tab, a newline or another
    unprintable character would garble the line, or where a leading quote would make it look like one."""
    return source if source.isprintable() and not source.startswith(("'", '"')) else repr(source)


def _beam_width(text: str) -> int:
    """``--beam``'s value: a whole number (ASCII digits) from 1 to ``config.MAX_BEAM_WIDTH``; ValueError otherwise."""
    width = cli.whole_number(text)
    if not 1 <= width <= config.MAX_BEAM_WIDTH:
        raise ValueError(f"{width} is outside 1 to {config.MAX_BEAM_WIDTH} (config.MAX_BEAM_WIDTH; 1 is greedy, {config.BEAM_WIDTH} is usual)")
    return width


def read_lexicon(path: Path) -> Lexicon:
    """The words of a ``--lexicon`` file (UTF-8, one a line); ValueError naming the file: not a regular file, larger
    than ``config.MAX_LEXICON_BYTES``, not UTF-8, or no word in it."""
    where = f"--lexicon {path}"  # as typed: resolving would name what a link points at
    try:
        text = cli.read_user_file(path, config.MAX_LEXICON_BYTES, "config.MAX_LEXICON_BYTES").decode("utf-8")
        return Lexicon(text.splitlines())
    except UnicodeDecodeError as error:
        raise ValueError(f"{where}: not UTF-8 text (byte {error.start:,} is {error.object[error.start:error.start + 1]!r})") from None
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def predict_images(
    model: keras.Model | TFLiteModel,
    items: Iterable[str | Path | np.ndarray],
    vocabulary: Vocabulary,
    beam_width: int | None = None,
    lexicon: Lexicon | None = None,
    batch_size: int = config.BATCH_SIZE,
) -> list[Prediction]:
    """Read each image (a path or an array); a bad one gets its error and the rest go on. Order is kept.

    ``beam_width``: None for greedy decoding, else 1 to ``config.MAX_BEAM_WIDTH`` (ValueError otherwise).
    """
    if beam_width is not None and not 1 <= beam_width <= config.MAX_BEAM_WIDTH:
        raise ValueError(f"beam width {beam_width}: expected 1 to {config.MAX_BEAM_WIDTH} (config.MAX_BEAM_WIDTH), or None for greedy")
    results: list[Prediction] = []
    ready: list[tuple[int, tf.Tensor]] = []
    for index, item in enumerate(items):
        source = f"array {index}" if isinstance(item, np.ndarray) else str(item)
        try:
            ready.append((len(results), _prepare(item)))
            results.append(Prediction(source, None))
        except ValueError as error:
            results.append(Prediction(source, None, str(error)))
    for start in range(0, len(ready), batch_size):
        chunk = ready[start : start + batch_size]
        logits = predict_logits(model, tf.stack([image for _, image in chunk]))
        texts = decode(logits, vocabulary, beam_width)
        if lexicon is not None:
            texts = lexicon.correct_all(texts)
        for (position, _), text in zip(chunk, texts):
            results[position].text = text
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.predict", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, BMP, GIF, WebP)")
    parser.add_argument("--model", type=Path, default=config.SHIPPED_MODEL,
                        help=f"a .keras model saved by training, or an exported .tflite (default: {config.display_path(config.SHIPPED_MODEL)})")
    parser.add_argument("--vocabulary", type=Path, default=None, help=f"default: {VOCABULARY_BESIDE_MODEL} beside the model")
    parser.add_argument("--beam", type=cli.argument(_beam_width), default=None, metavar="N",
                        help=f"beam search of width N, 1 to {config.MAX_BEAM_WIDTH} (default: greedy)")
    parser.add_argument("--lexicon", type=Path, default=None, help="a text file of known words, one per line")
    args = parser.parse_args(argv)
    try:
        model, vocabulary = load_reader(args.model, args.vocabulary)
        lexicon = read_lexicon(args.lexicon) if args.lexicon else None
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    images = []
    for path in args.images:
        if path.suffix.lower() in NOT_IMAGES:
            print(f"{_printable(str(path))}: skipped, not an image file", file=sys.stderr)
        else:
            images.append(path)
    failed = 0
    for prediction in predict_images(model, images, vocabulary, args.beam, lexicon):
        if prediction.ok:
            print(f"{_printable(prediction.source)}\t{prediction.text}")
        else:
            failed += 1
            print(f"{_printable(prediction.source)}: {prediction.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    from utils import cli

    cli.run(main)
