"""Image preprocessing and augmentation: decoding, contrast, distortion-free resize, paper padding."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from utils import config, iam, preprocess
from utils.preprocess import (
    augment_batch,
    decode_gray,
    load_image,
    normalize_contrast,
    read_gray,
    percentile,
    preprocess_image,
    resize_keep_aspect,
    resize_keep_aspect_numpy,
    to_float,
    to_uint8,
)

PAPER, INK = 0.8, 0.1


def word(height: int, width: int, paper: float = PAPER, ink: float = INK) -> tf.Tensor:
    """A gray [H, W, 1] 'word': paper with a band of ink across the middle."""
    image = np.full((height, width, 1), paper, np.float32)
    image[height // 3 : max(height // 3 + 1, 2 * height // 3), :, 0] = ink
    return tf.constant(image)


def ink_box(image: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int]:
    """Bounding box (top, bottom, left, right) of pixels darker than threshold."""
    rows, cols = np.nonzero(np.asarray(image)[..., 0] < threshold)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def encode(array: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format=fmt) if mode else Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


# --- Resize and padding --------------------------------------------------------------------
@pytest.mark.parametrize(
    "height, width",
    [(40, 400), (300, 30), (5, 7), (2000, 3000), (64, 128), (1, 1)],
    ids=["wide", "tall", "tiny", "huge", "exact", "one-pixel"],
)
def test_resize_keeps_the_aspect_ratio_and_pads_with_paper(height, width):
    out = resize_keep_aspect(word(height, width), position="left", paper=PAPER).numpy()
    assert out.shape == (config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1)
    scale = min(config.IMAGE_HEIGHT / height, config.IMAGE_WIDTH / width, config.MAX_UPSCALE)
    expected_width = int(np.clip(round(width * scale), 1, config.IMAGE_WIDTH))
    expected_height = int(np.clip(round(height * scale), 1, config.IMAGE_HEIGHT))
    # The image sits at the left, centred vertically; everything else is exactly the paper colour.
    top = (config.IMAGE_HEIGHT - expected_height) // 2
    outside = np.ones(out.shape[:2], bool)
    outside[top : top + expected_height, :expected_width] = False
    np.testing.assert_allclose(out[..., 0][outside], PAPER, atol=1e-6)
    if height > 1:  # the ink band keeps its proportions: full width, a third of the height
        box_top, box_bottom, box_left, box_right = ink_box(out)
        assert (box_left, box_right) == (0, expected_width)
        assert abs((box_bottom - box_top) / expected_height - 1 / 3) < 0.15


def test_small_crops_are_enlarged_at_most_max_upscale():
    out = resize_keep_aspect(word(12, 12), paper=PAPER).numpy()  # a full stop's crop
    top, bottom, left, right = ink_box(out)
    assert right - left == 12 * config.MAX_UPSCALE, "a tiny crop must stay small, not fill the height"
    assert bottom - top < config.IMAGE_HEIGHT / 2


def test_padding_is_the_paper_colour_not_black():
    out = resize_keep_aspect(word(20, 20, paper=0.9)).numpy()  # a square: lots of padding
    assert out[:, -10:].min() > 0.85, "padding must be paper-coloured, never black"


def test_center_position_splits_the_padding():
    out = resize_keep_aspect(word(64, 32), position="center", paper=PAPER).numpy()
    _, _, left, right = ink_box(out)
    assert (left, right) == (48, 80)


def test_numpy_twin_gives_the_same_geometry_and_padding():
    gray = np.full((30, 200), 220, np.uint8)
    gray[10:20, 20:180] = 30
    twin = resize_keep_aspect_numpy(gray)
    ours = (resize_keep_aspect(tf.constant(gray[..., None] / 255.0, tf.float32)).numpy()[..., 0] * 255).round()
    assert twin.shape == ours.shape == (64, 128)
    assert ink_box(twin[..., None], 128) == ink_box(ours[..., None], 128)
    assert twin[0, 0] == 220 and ours[0, 0] == pytest.approx(220, abs=2)


def test_bad_position_is_refused():
    with pytest.raises(ValueError, match="position"):
        resize_keep_aspect(word(10, 10), position="right")


# --- Decoding --------------------------------------------------------------------------------
def test_rgba_is_composited_on_white_paper():
    rgba = np.zeros((10, 20, 4), np.uint8)  # transparent black everywhere...
    rgba[3:6, 2:18] = (0, 0, 255, 255)  # ...except an opaque blue stroke
    gray = decode_gray(encode(rgba, "PNG", "RGBA")).numpy()[..., 0]
    assert gray.shape == (10, 20)
    assert gray[0, 0] == pytest.approx(1.0)  # transparent -> paper, not black
    assert gray[4, 10] == pytest.approx(0.114, abs=0.01)  # blue's luminance


def test_gray_with_alpha_is_composited_too():
    la = np.zeros((6, 6, 2), np.uint8)
    la[2:4, 2:4] = (0, 255)
    gray = decode_gray(encode(la, "PNG", "LA")).numpy()[..., 0]
    assert gray[0, 0] == pytest.approx(1.0) and gray[2, 2] == pytest.approx(0.0)


def test_16_bit_png_is_scaled_like_8_bit():
    array16 = np.full((8, 12), 52428, np.uint16)  # 0.8 of full scale
    ok, buffer = cv2.imencode(".png", array16)
    gray = decode_gray(buffer.tobytes()).numpy()
    assert gray.shape == (8, 12, 1)
    np.testing.assert_allclose(gray, 0.8, atol=1e-4)


def test_jpeg_colour_and_gray_decode_to_one_channel():
    colour = np.zeros((16, 32, 3), np.uint8)
    colour[...] = (200, 180, 160)
    for data in (encode(colour, "JPEG"), encode(colour[..., 0], "JPEG")):
        gray = decode_gray(data).numpy()
        assert gray.shape == (16, 32, 1)
        assert 0.6 < gray.mean() < 0.85


def test_garbage_bytes_raise():
    with pytest.raises(ValueError, match="not a readable image"):
        decode_gray(b"not an image")


def written_word(height: int = 24, width: int = 60) -> np.ndarray:
    """uint8 [H, W]: light paper with an asymmetric dark 'word' (a bar, a stem at its left), so any turn or flip shows."""
    array = np.full((height, width), 230, np.uint8)
    array[height // 2 : height // 2 + 4, 6 : width - 6] = 25
    array[4 : height // 2, 6:10] = 25
    return array


def bmp_32_bit_without_alpha(gray: np.ndarray) -> bytes:
    """A 32-bit BMP (BI_RGB) as Windows writes them: the fourth byte of each pixel is unused and 0."""
    pixels = np.zeros(gray.shape + (4,), np.uint8)
    pixels[..., :3] = gray[..., None]
    rows = pixels[::-1].tobytes()  # bottom row first
    info = struct.pack("<IiiHHIIiiII", 40, gray.shape[1], gray.shape[0], 1, 32, 0, len(rows), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(rows), 0, 0, 14 + len(info)) + info + rows


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` gray pixels but whose data holds one row: small, and
    only a decoder that trusts the header before reading the data can tell its size without a struggle."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    one_row = zlib.compress(bytes(1 + width))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", one_row) + chunk(b"IEND", b"")


FORMATS = {  # name: (Pillow format, Pillow mode) of each kind of file decode_gray's docstring lists
    "png-gray": ("PNG", "L"),
    "png-rgba": ("PNG", "RGBA"),
    "jpeg-gray": ("JPEG", "L"),
    "jpeg-rgb": ("JPEG", "RGB"),
    "bmp-1-bit": ("BMP", "1"),
    "bmp-gray": ("BMP", "L"),
    "bmp-rgb": ("BMP", "RGB"),
    "gif": ("GIF", "P"),
    "webp-rgb": ("WEBP", "RGB"),
    "webp-rgba": ("WEBP", "RGBA"),
    "webp-lossless": ("WEBP", "L"),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_listed_format_is_read_from_a_file(tmp_path, name):
    file_format, mode = FORMATS[name]
    word_image = written_word()
    path = tmp_path / f"word.{file_format.lower()}"
    Image.fromarray(word_image).convert(mode).save(path, format=file_format, **({"lossless": True} if name == "webp-lossless" else {}))
    gray = read_gray(path).numpy()[..., 0]
    assert gray.shape == word_image.shape
    ink, paper = word_image < 128, word_image >= 128
    assert gray[ink].mean() < 0.25 and gray[paper].mean() > 0.75, f"{name}: ink {gray[ink].mean():.2f}, paper {gray[paper].mean():.2f}"
    assert load_image(str(path)).shape == (config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1)


def test_a_32_bit_bmp_is_not_taken_for_transparent(tmp_path):
    # TensorFlow reads the unused fourth byte as alpha 0: the whole word would vanish into white paper.
    word_image = written_word()
    gray = decode_gray(bmp_32_bit_without_alpha(word_image)).numpy()[..., 0]
    np.testing.assert_allclose(gray, word_image / 255.0, atol=1 / 255)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.png"
    Image.fromarray(written_word()).save(path, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)), np.float32) / 255.0
    np.testing.assert_allclose(read_gray(path).numpy()[..., 0], expected, atol=1e-6)


@pytest.mark.parametrize("file_format, orientation", [("JPEG", 8), ("JPEG", 6), ("WEBP", 3)])
def test_a_phone_photo_is_turned_upright(tmp_path, file_format, orientation):
    # A word photographed with the phone turned: its pixels lie sideways and the EXIF tag says how to turn them.
    exif = Image.Exif()
    exif[0x0112] = orientation
    upright = written_word()
    turn = {8: Image.Transpose.ROTATE_270, 6: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180}[orientation]
    path = tmp_path / f"photo.{file_format.lower()}"
    Image.fromarray(upright).transpose(turn).save(path, format=file_format, exif=exif, quality=95)
    gray = read_gray(path).numpy()[..., 0]
    assert gray.shape == upright.shape
    assert np.abs(gray - upright / 255.0).mean() < 0.03


def test_an_image_over_the_pixel_limit_is_refused_from_its_header():
    # 20000 x 20000 took 57 s and 8.9 GB to decode; the header alone says it is too large.
    data = png_header_only(20000, 20000)
    with pytest.raises(ValueError, match="too large: 400,000,000 pixels, more than the limit of ") as refusal:
        decode_gray(data)
    assert f"limit of {config.MAX_IMAGE_PIXELS:,} (config.MAX_IMAGE_PIXELS)" in str(refusal.value)
    in_graph = tf.data.Dataset.from_tensors(tf.constant(data)).map(decode_gray)  # the training pipeline's way
    with pytest.raises(tf.errors.InvalidArgumentError, match="too large: 400,000,000 pixels"):
        list(in_graph)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns from half utils.iam's limit
def test_every_reader_keeps_the_same_pixel_limit(tmp_path):
    # utils.iam's check (Pillow) refuses what the decoder refuses, so training never meets a file it cannot read.
    side = int(config.MAX_IMAGE_PIXELS**0.5)
    assert side * side == config.MAX_IMAGE_PIXELS
    at_limit, over = tmp_path / "at_limit.png", tmp_path / "over.png"
    at_limit.write_bytes(png_header_only(side, side))
    over.write_bytes(png_header_only(side + 1, side))
    assert preprocess.image_header(at_limit.read_bytes())[:2] == (side, side)
    with pytest.raises(ValueError, match="too large"):
        preprocess.image_header(over.read_bytes())
    _, kind, detail = iam.inspect_image(over)
    assert kind == "unreadable" and "DecompressionBombError" in detail
    _, kind, detail = iam.inspect_image(at_limit)  # Pillow may call its one row of pixels truncated, but not too large
    assert "DecompressionBomb" not in detail


# --- Contrast ----------------------------------------------------------------------------------
def test_percentile_matches_numpy():
    values = tf.constant(np.linspace(0, 1, 1001, dtype=np.float32).reshape(-1, 1, 1))
    assert float(percentile(values, 90)) == pytest.approx(0.9, abs=1 / 256)


def test_normalize_stretches_ink_to_black_and_paper_to_white():
    out = normalize_contrast(word(30, 60, paper=0.7, ink=0.3), mode="normalize").numpy()
    assert out.min() == pytest.approx(0.0, abs=0.01) and out.max() == pytest.approx(1.0, abs=0.01)


def test_gray_level_whitens_everything_lighter_than_it():
    image = word(30, 60, paper=0.6, ink=0.1)
    smudge = tf.tensor_scatter_nd_update(image, [[0, 0, 0]], [0.45])  # lighter than IAM's threshold
    out = normalize_contrast(smudge, gray_level=int(0.4 * 255), mode="normalize").numpy()
    assert out[0, 0, 0] == pytest.approx(1.0) and out[15, 5, 0] == pytest.approx(0.0, abs=0.01)
    binary = normalize_contrast(smudge, gray_level=int(0.4 * 255), mode="binarize").numpy()
    assert set(np.unique(binary)) == {0.0, 1.0}


def cv2_word(text: str = "small", paper: int = 235, ink: int = 25) -> np.ndarray:
    """uint8 [H, W]: a word drawn with OpenCV, dark on light."""
    image = np.full((48, 150), paper, np.uint8)
    cv2.putText(image, text, (8, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.1, int(ink), 3, cv2.LINE_AA)
    return image


@pytest.mark.parametrize("ground, chalk", [(0.0, 1.0), (0.15, 0.85), (0.3, 0.6)], ids=["black", "blackboard", "dim"])
def test_light_ink_on_a_dark_ground_is_read_like_dark_ink_on_paper(ground, chalk):
    dark_on_light = cv2_word() / 255.0
    light_on_dark = ground + (chalk - ground) * (1.0 - (dark_on_light - dark_on_light.min()) / np.ptp(dark_on_light))
    expected = preprocess_image(tf.constant(dark_on_light[..., None], tf.float32)).numpy()
    out = preprocess_image(tf.constant(light_on_dark[..., None], tf.float32)).numpy()
    assert np.abs(out - expected).mean() < 0.02 and ink_box(out) == ink_box(expected)


@pytest.mark.parametrize("paper, ink", [(0.92, 0.1), (0.35, 0.08), (0.55, 0.3)], ids=["scan", "dim-photo", "grey-paper"])
def test_dark_ink_on_paper_is_never_inverted(paper, ink):
    image = cv2_word(paper=int(paper * 255), ink=int(ink * 255)) / 255.0
    glare = image.copy()
    glare[:6, :40] = 1.0  # a bright reflection in a corner of a dim photo
    shadow = np.where(np.arange(48)[:, None] < 18, np.minimum(1.0, image + 0.4), image)  # light paper above a shadow's edge
    for gray in (image, glare, shadow):
        out = preprocess_image(tf.constant(gray[..., None], tf.float32)).numpy()
        assert out[0, 0, 0] > 0.9 and out.min() < 0.1, "paper must stay white and the ink dark"


def test_the_committed_test_images_stay_as_they_are_and_their_inversions_are_turned_back():
    paths = sorted(config.TEST_DATA_DIR.glob("*.png")) + sorted(config.TEST_DATA_DIR.glob("*.jpg"))
    assert len(paths) >= 30
    for path in paths:  # scans, photos, ruled paper, transparent PNGs, real handwriting (DHSD)
        gray = read_gray(path)
        np.testing.assert_array_equal(preprocess.dark_ink(gray), gray, err_msg=path.name)
        np.testing.assert_allclose(preprocess.dark_ink(1.0 - gray), gray, atol=1e-6, err_msg=path.name)


def test_blank_image_stays_blank():
    out = preprocess_image(tf.fill([20, 40, 1], 0.9)).numpy()
    assert np.isfinite(out).all() and out.min() == out.max() == 1.0, "a blank crop must become white paper"


def test_uint8_round_trip_is_within_half_a_level():
    image = tf.random.uniform([64, 128, 1], seed=1)
    np.testing.assert_allclose(to_float(to_uint8(image)).numpy(), image.numpy(), atol=0.5 / 255 + 1e-7)


def test_load_image_reads_a_file(tmp_path):
    path = tmp_path / "word.png"
    path.write_bytes(encode(np.full((40, 90), 200, np.uint8), "PNG"))
    out = load_image(str(path))
    assert out.shape == (64, 128, 1) and out.dtype == tf.float32


# --- Augmentation ------------------------------------------------------------------------------
def batch_of_words(count: int = 6) -> tf.Tensor:
    """Model inputs with some paper around the ink, like most words: strokes of ink between margins."""
    images = np.ones((count, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1), np.float32)
    for i in range(count):
        left, right = 10 + 2 * (i % 8), 100 - 3 * (i % 8)
        for column in range(left, right - 1, 6):
            images[i, 22:42, column : column + 2] = 0.0  # vertical strokes, 2 pixels wide
        images[i, 30 + i % 4 : 32 + i % 4, left:right] = 0.0  # a connecting line
    return tf.constant(images)


def strongest(names: set[str]) -> dict:
    """Augmentation settings with only ``names`` on, always, at the end of their range farthest from identity."""
    identity = {"scale": 1.0, "contrast": 1.0}
    settings = {}
    for name, (_, (low, high)) in config.AUGMENTATION.items():
        far = max((low, high), key=lambda value: abs(value - identity.get(name, 0.0)))
        settings[name] = (1.0 if name in names else 0.0, (far, far))
    return settings


def test_augmentation_is_deterministic_for_a_seed_and_varies_between_seeds():
    images = batch_of_words()
    first = augment_batch(images, tf.constant([1, 2])).numpy()
    again = augment_batch(images, tf.constant([1, 2])).numpy()
    other = augment_batch(images, tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.01
    assert first.shape == images.shape and first.min() >= 0.0 and first.max() <= 1.0


def test_probability_zero_leaves_images_untouched():
    images = batch_of_words()
    off = {name: (0.0, value_range) for name, (_, value_range) in config.AUGMENTATION.items()}
    np.testing.assert_allclose(augment_batch(images, tf.constant([5, 6]), off).numpy(), images.numpy(), atol=1e-5)


@pytest.mark.parametrize("name", sorted(config.AUGMENTATION))
def test_each_augmentation_changes_the_image_when_forced(name):
    images = batch_of_words()
    changed = np.abs(augment_batch(images, tf.constant([7, 8]), strongest({name})).numpy() - images.numpy()).mean()
    assert changed > 1e-3, f"{name} at full strength did not change the images"


def test_geometry_keeps_a_full_width_word_inside_the_frame():
    images = np.ones((4, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1), np.float32)
    images[:, 16:48, :4] = 0.0  # first letter touching the left edge
    images[:, 16:48, -4:] = 0.0  # last letter touching the right edge
    geometry = strongest(set())  # everything off, then the geometry at its most outward-pushing draw
    for name in ("shear", "rotation", "scale", "shift_x", "shift_y"):
        geometry[name] = (1.0, (config.AUGMENTATION[name][1][1],) * 2)
    assert geometry["scale"][1][0] > 1.0 and geometry["shift_x"][1][0] > 0
    out = augment_batch(tf.constant(images), tf.constant([3, 1]), geometry).numpy()[..., 0]
    letter = (1 - images[0, :, :4, 0]).sum()
    for image in out:  # each end letter keeps most of its ink near its edge: shrunk a little, not cut
        assert (1 - image[:, :24]).sum() > 0.6 * letter, "the first letter was pushed out of the frame"
        assert (1 - image[:, -24:]).sum() > 0.6 * letter, "the last letter was pushed out of the frame"


def test_augmentation_keeps_the_word_mostly_in_frame():
    images = batch_of_words(32)
    augmented = augment_batch(images, tf.constant([9, 9])).numpy()
    ink_before = (1 - images.numpy()).sum(axis=(1, 2, 3))
    ink_after = (1 - augmented).sum(axis=(1, 2, 3))
    assert (ink_after > 0.25 * ink_before).all(), "an augmentation erased or pushed out most of a word"


def test_each_augmentation_draws_from_its_own_seed():
    """shift_x and shift_y (or noise and its pixels) must not share draws: they would move together."""
    from utils.preprocess import _seed_for

    names = [*config.AUGMENTATION, "elastic-field", "noise-pixels"]
    seeds = {tuple(_seed_for(tf.constant([1, 2]), name).numpy()) for name in names}
    assert len(seeds) == len(names)
