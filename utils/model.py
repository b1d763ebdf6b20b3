"""The CRNN: convolutions read the image, two BiLSTMs read the columns in order, CTC transcribes.

``build_crnn("paper", ...)`` is the reference architecture of the original project, layer for
layer (see the guide's table); ``"compact"`` has the same shape, narrower, and trains about 13x
faster on a CPU. The model outputs per-step logits (blank = id 0): the CTC loss takes them as
they are and so does ``keras.ops.ctc_decode``, so one model serves training and prediction.
Only built-in layers are used (no ``Lambda``), so a saved ``.keras`` file loads with ``safe_mode=True``.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from utils import config
from utils.devices import accelerated
from utils.encoding import Vocabulary


@dataclass(frozen=True)
class Preset:
    """Widths of one CRNN variant; the layer sequence is the same for all."""

    conv_filters: tuple[int, int, int, int, int, int, int]  # the seven convolutions, bottom to top
    lstm_units: int  # per direction, for both BiLSTMs


PRESETS = ("paper", "compact")


def preset_widths(name: str) -> Preset:
    """The widths of preset ``name``, read when called: setting ``config.COMPACT_LSTM_UNITS`` in a notebook counts."""
    if name == "paper":
        return Preset(conv_filters=(64, 128, 256, 256, 512, 512, 512), lstm_units=256)
    if name == "compact":
        return Preset(conv_filters=(16, 32, 64, 64, 128, 128, 128), lstm_units=config.COMPACT_LSTM_UNITS)
    raise ValueError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")


# The reference table, bottom to top: (filters index, kernel, batch norm, pooling after it).
# Pools (2, 2) halve height and width; (2, 1) halve only the height, keeping 32 columns for time.
_CONV_TABLE = (
    (0, 3, False, (2, 2)),
    (1, 3, False, (2, 2)),
    (2, 3, False, None),
    (3, 3, False, (2, 1)),
    (4, 3, True, None),
    (5, 3, True, (2, 1)),
    (6, 2, False, None),  # 2x2 "valid": 4 x 32 -> 3 x 31, the 31 time steps
)


def build_crnn(
    preset: str | Preset,
    num_characters: int,
    dropout: float = 0.0,
    l2: float = 0.0,
    batch_norm: str = "table",
    name: str | None = None,
    use_cudnn: bool | str = "auto",
) -> keras.Model:
    """The CRNN for ``num_characters`` characters: [B, 64, 128, 1] images -> [B, 31, num_characters + 1] logits.

    ``dropout`` is applied to the sequence before each BiLSTM (so before and between the recurrent
    layers); ``l2`` adds an L2 penalty on every kernel. Both default to 0: the plain reference model.
    ``batch_norm``: "table" normalises after convolutions 5 and 6, as the reference; "all" after every
    convolution but the last, which trains faster from scratch. Convolutions followed by batch
    normalisation have no bias (the normalisation's shift replaces it). Batch normalisation is synchronized:
    under a tf.distribute strategy every replica normalises with the global batch's statistics, so their
    moving averages stay identical (unsynchronized, each replica kept its own). The logits are float32
    under a mixed-precision policy too, for the CTC loss. ``use_cudnn=False`` keeps the LSTMs out of
    cuDNN on a GPU, which XLA (``jit_compile``) needs. ``train_crnn`` trains it on a CPU's faster kernels with
    the same arithmetic (:func:`use_fast_kernels`).
    """
    if isinstance(preset, str):
        preset_name, preset = preset, preset_widths(preset)
    else:
        preset_name = "custom"
    if num_characters < 1:
        raise ValueError(f"num_characters must be at least 1, got {num_characters}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if batch_norm not in ("table", "all"):
        raise ValueError(f"batch_norm {batch_norm!r}: expected 'table' or 'all'")
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None

    inputs = keras.Input((config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1), name="image")
    x = inputs
    pools = 0
    for number, (index, kernel, norm, pool) in enumerate(_CONV_TABLE, start=1):
        norm = norm or (batch_norm == "all" and number < len(_CONV_TABLE))
        x = layers.Conv2D(
            preset.conv_filters[index],
            kernel,
            padding="valid" if kernel == 2 else "same",
            use_bias=not norm,
            kernel_regularizer=regularizer,
            name=f"conv{number}",
        )(x)
        if norm:
            x = layers.BatchNormalization(momentum=config.BATCH_NORM_MOMENTUM, synchronized=True, name=f"bn{number}")(x)
        x = layers.ReLU(name=f"relu{number}")(x)
        if pool:
            pools += 1
            x = layers.MaxPooling2D(pool, name=f"pool{pools}")(x)
    # Map to sequence: [B, 3, 31, C] -> [B, 31, 3 * C]; column t of the feature map is time step t.
    height, width, channels = x.shape[1:]
    x = layers.Permute((2, 1, 3), name="columns_first")(x)
    x = layers.Reshape((width, height * channels), name="map_to_sequence")(x)
    for number in (1, 2):
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"dropout{number}")(x)
        x = layers.Bidirectional(
            layers.LSTM(
                preset.lstm_units,
                return_sequences=True,
                kernel_regularizer=regularizer,
                recurrent_regularizer=regularizer,
                use_cudnn=use_cudnn,
            ),
            name=f"bilstm{number}",
        )(x)
    outputs = layers.Dense(num_characters + 1, kernel_regularizer=regularizer, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name or f"crnn_{preset_name}")


# --- Faster kernels for training on a CPU ----------------------------------------------------------
def fast_kernels_here() -> bool:
    """Whether this machine trains on the fast kernels: ``config.FAST_CPU_KERNELS`` on a CPU, never on a GPU or TPU,
    nor where ``config.JIT_COMPILE`` is True (XLA cannot compile the native CTC kernel)."""
    return config.FAST_CPU_KERNELS and not accelerated() and config.JIT_COMPILE is not True


def use_fast_kernels(model: keras.Model, fast: bool | None = None) -> keras.Model:
    """Train ``model`` on faster kernels that compute the same thing (``fast=None``: :func:`fast_kernels_here`).

    Measured where the compact CRNN's training step spends its time on 2 CPU cores (``python bench/speed.py``):
    Keras 3 normalises a batch with about ten separate element-wise operations, each a pass over the activations;
    TensorFlow's fused kernel does it in one pass forward and one backward. The LSTMs run unrolled over their fixed
    31 steps: plain matrix products instead of a while loop, whose per-step bookkeeping left a core idle. Unrolled,
    a model takes about 6 s longer to trace, which the tiny trainings of quick mode (CI) never earn back: there
    the loop stays. Only the kernels change: the layers, their weights and the saved file's layer classes stay
    Keras' own; ``fast=False`` puts Keras' kernels back. :func:`utils.training.train_crnn` calls this; returns the model.
    """
    fast = fast_kernels_here() if fast is None else fast
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            if fast:
                layer.call = types.MethodType(_fused_batch_norm, layer)
            elif "call" in vars(layer):
                del layer.call
        lstms = (layer.forward_layer, layer.backward_layer) if isinstance(layer, layers.Bidirectional) else (layer,)
        for lstm in lstms:
            if isinstance(lstm, layers.LSTM):
                lstm.unroll = fast and not config.quick_mode()  # unrolled, cuDNN is not used: hence never on a GPU
    # A step traced already keeps the kernels it was traced with: the next call traces anew.
    model.train_function = model.test_function = model.predict_function = None
    return model


def _fused_batch_norm(layer: layers.BatchNormalization, inputs, training=None, mask=None):
    """``layer.call`` on TensorFlow's fused kernel when training on one device; Keras' own ``call`` otherwise.

    The moving averages are updated as Keras does, with the batch's biased variance (the kernel returns the
    unbiased one for them). Several replicas keep Keras' call: its synchronized statistics span all replicas.
    """
    replicas = tf.distribute.get_replica_context()
    if (not training or not layer.trainable or mask is not None or getattr(layer, "renorm", False)
            or inputs.shape.rank != 4 or layer.axis not in (-1, 3)
            or (replicas is not None and replicas.num_replicas_in_sync > 1)):  # fmt: skip
        return type(layer).call(layer, inputs, training=training, mask=mask)
    inputs = tf.cast(inputs, "float32")  # as Keras does: statistics in float32 under a mixed policy
    channels = inputs.shape[-1]
    scale = tf.cast(layer.gamma, "float32") if layer.scale else tf.ones([channels])
    offset = tf.cast(layer.beta, "float32") if layer.center else tf.zeros([channels])
    outputs, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]),
        epsilon=layer.epsilon, is_training=True, data_format="NHWC")  # fmt: skip
    count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), "float32")
    variance = unbiased * (count - 1.0) / count
    momentum = layer.momentum
    layer.moving_mean.assign(layer.moving_mean * momentum + mean * (1.0 - momentum))
    layer.moving_variance.assign(layer.moving_variance * momentum + variance * (1.0 - momentum))
    return tf.cast(outputs, layer.compute_dtype)


def check_model_size(path: Path) -> None:
    """Refuse an empty file or one larger than ``config.MAX_MODEL_BYTES`` before any reader sees its bytes."""
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{config.display_path(path)}: the model file is empty")
    if size > config.MAX_MODEL_BYTES:
        raise ValueError(f"{config.display_path(path)}: {size / 1e6:,.0f} MB is more than a model of this series "
                         f"can be ({config.MAX_MODEL_BYTES / 1e6:,.0f} MB, config.MAX_MODEL_BYTES)")  # fmt: skip


def load_model(path: Path | str) -> keras.Model:
    """A saved CRNN, loaded with ``safe_mode=True`` (no code runs from the file) and without its optimizer state,
    on Keras' own kernels (LSTMs not unrolled, as cuDNN needs on a GPU) whatever it was trained with.

    A file that is not a whole ``.keras`` archive (truncated, corrupted, another format) or that needs code
    this series does not define (a ``Lambda``, a custom layer) raises ``ValueError`` naming it and why.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{config.display_path(path)}: no such model file (train one in chapter 04)")
    check_model_size(path)
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # checks every member's CRC: a half-copied file fails here
    except (zipfile.BadZipFile, EOFError):
        raise ValueError(f"{config.display_path(path)}: not a .keras model (a .keras file is a zip archive and this "
                         "one is not: truncated, corrupted or another format?)") from None  # fmt: skip
    if damaged:
        raise ValueError(f"{config.display_path(path)}: a damaged .keras archive ({damaged} fails its checksum: "
                         "truncated or corrupted?)")  # fmt: skip
    try:
        return use_fast_kernels(keras.saving.load_model(path, compile=False, safe_mode=True), fast=False)
    except Exception as error:  # a user's file: whatever Keras raises, the model cannot be used here
        model = _load_from_newer_keras(path)
        if model is not None:
            return use_fast_kernels(model, fast=False)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"{config.display_path(path)}: cannot be loaded as a model of this series "
                         f"({type(error).__name__}: {first_line[:300]}){_saved_by(path)}") from error  # fmt: skip


def _saved_by(path: Path) -> str:
    """", saved by Keras X; this is Keras Y" when the versions differ, else "": the likely cause of a failed load."""
    try:
        with zipfile.ZipFile(path) as archive:
            saved = json.loads(archive.read("metadata.json")).get("keras_version")
    except Exception:  # noqa: BLE001 - only a hint for the message
        return ""
    return f"; saved by Keras {saved}, this is Keras {keras.__version__}" if saved and saved != keras.__version__ else ""


# Options a newer Keras writes into every .keras file that older ones refuse as unknown keywords, with the value at
# which each changes nothing. Keras 3.15 (which saved the shipped models) writes input_axes=None and
# output_axes=None into every initializer and renorm=False, with its unused renorm_clipping and renorm_momentum,
# into BatchNormalization; Keras 3.13 (Colab's) refused the shipped models for it.
_INERT_INITIALIZER_VALUE = None
_BATCH_NORM_RENORM = ("renorm", "renorm_clipping", "renorm_momentum")


def _without_unknown_options(value):
    """A model config without the options this Keras does not know, where they are set so that they change nothing.

    An unknown option set otherwise is kept: dropping it would change the model, so the load fails and says why.
    """
    if isinstance(value, list):
        return [_without_unknown_options(item) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key: _without_unknown_options(item) for key, item in value.items()}
    settings, name = value.get("config"), str(value.get("class_name"))
    if not isinstance(settings, dict):
        return value
    if value.get("module") == "keras.initializers" and isinstance(getattr(keras.initializers, name, None), type):
        accepted = inspect.signature(getattr(keras.initializers, name).__init__).parameters
        value["config"] = {key: item for key, item in settings.items() if key in accepted or item is not _INERT_INITIALIZER_VALUE}
    elif name == "BatchNormalization" and settings.get("renorm") is False:
        if "renorm" not in inspect.signature(keras.layers.BatchNormalization.__init__).parameters:
            value["config"] = {key: item for key, item in settings.items() if key not in _BATCH_NORM_RENORM}
    return value


def _load_from_newer_keras(path: Path) -> keras.Model | None:
    """The model of a file saved by a newer Keras, loaded without its None-valued options this Keras lacks; None when
    that changes nothing or does not help."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        original = json.loads(members["config.json"])
    except Exception:  # noqa: BLE001 - not a readable archive: the caller reports the first error
        return None
    portable = _without_unknown_options(original)
    if portable == original:
        return None
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        with zipfile.ZipFile(copy, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, json.dumps(portable) if name == "config.json" else data)
        try:
            return keras.saving.load_model(copy, compile=False, safe_mode=True)
        except Exception:  # noqa: BLE001 - the caller reports the first error
            return None


# The members every .keras archive that Keras 3 writes holds: an archive without them is not a whole model.
_KERAS_MEMBERS = frozenset({"metadata.json", "config.json", "model.weights.h5"})
# The vocabulary a model was trained with, inside its .keras archive (Keras ignores members it does not know): a
# vocabulary.txt beside the model with two lines swapped was accepted and read "the" as "tha".
VOCABULARY_MEMBER = "vocabulary.txt"


def add_vocabulary(path: Path, vocabulary: Vocabulary) -> None:
    """Store ``vocabulary`` in the .keras archive at ``path`` (a file being written: :func:`save_model` does this)."""
    with zipfile.ZipFile(path, "a") as archive:
        if VOCABULARY_MEMBER in archive.namelist():
            raise ValueError(f"{config.display_path(path)} already holds a vocabulary")
        archive.writestr(VOCABULARY_MEMBER, vocabulary.to_text())


def saved_vocabulary(path: Path | str) -> Vocabulary | None:
    """The vocabulary stored in a .keras model by :func:`save_model`, or None (a model saved without one)."""
    with zipfile.ZipFile(path) as archive:
        if VOCABULARY_MEMBER not in archive.namelist():
            return None
        text = archive.read(VOCABULARY_MEMBER).decode("utf-8")
    return Vocabulary.from_text(text, f"{config.display_path(path)} ({VOCABULARY_MEMBER} inside it)")


def save_model(model: keras.Model, path: Path | str, overwrite: bool = False, vocabulary: Vocabulary | None = None) -> Path:
    """Write ``model`` to ``path`` atomically: into a temporary file beside it, checked, then renamed over it.

    Keras writes in place, so a kill or a full disk mid-write left a broken file where the model was; here the
    earlier file stays whole until the new one is complete. An existing file is replaced only with ``overwrite``.
    ``vocabulary`` (the one the model writes) is stored inside the archive, so a reader can check the one it is given.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{config.display_path(path)}: a model file must end in .keras")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{config.display_path(path)} exists: pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.keras")  # same folder: os.replace stays atomic
    try:
        keras.saving.save_model(model, partial)
        if vocabulary is not None:
            add_vocabulary(partial, vocabulary)
        with open(partial, "rb") as written:
            os.fsync(written.fileno())  # on disk before the rename, so a power cut cannot leave a renamed empty file
        _check_written_archive(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _check_written_archive(path: Path) -> None:
    """Raise ``OSError`` unless ``path`` is a whole .keras archive: a zip whose members pass their checksums."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged, members = archive.testzip(), set(archive.namelist())
    except (zipfile.BadZipFile, EOFError) as error:
        raise OSError(f"{config.display_path(path)}: the model just written is not a zip archive ({error})") from None
    if damaged or not _KERAS_MEMBERS <= members:
        raise OSError(f"{config.display_path(path)}: the model just written is damaged "
                      f"({damaged or 'members missing: ' + ', '.join(sorted(_KERAS_MEMBERS - members))})")  # fmt: skip


def predict_logits(model, images) -> np.ndarray:
    """The model's logits for one batch of images, also when it was built under a multi-replica strategy.

    Under such a strategy Keras 3.15's ``predict_on_batch`` gives every replica the whole batch and returns
    all their outputs (36 rows for 18 images on 2 replicas, seen in tests/test_devices.py); ``predict``
    splits the batch between the replicas as it should. ``model`` is a Keras model or anything with
    ``predict_on_batch`` (``utils.export.TFLiteModel``).
    """
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return model.predict_on_batch(images)
    return model.predict(images, batch_size=len(images), verbose=0)
