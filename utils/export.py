"""Export a trained CRNN for inference without Keras: a TensorFlow SavedModel and TensorFlow Lite files.

``export_all(model, vocabulary, folder)`` writes ``saved_model/`` (TF Serving, TF.js and other converters
start here), ``model.tflite`` (float32) and ``model_int8.tflite`` (dynamic-range quantisation: weights
stored as int8, about 4x smaller, activations still float), each with ``vocabulary.txt`` beside them.
:class:`TFLiteModel` runs a ``.tflite`` file with the same ``predict_on_batch`` as a Keras model, so
``utils.predict`` reads images with it unchanged (``python -m utils.predict ... --model model.tflite``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from utils import config
from utils.encoding import Vocabulary
from utils.model import check_model_size
from utils.setup import native_stderr_muted

SAVED_MODEL_DIR = "saved_model"
TFLITE_FILES = {"float32": "model.tflite", "int8": "model_int8.tflite"}  # quantisation -> file name
# TFLite models take one image at a time, with their LSTMs unrolled (tflite_copy): built-in TFLite ops only, no
# TensorFlow "Flex" ops, which phones and the interpreter of some TensorFlow versions lack.
TFLITE_BATCH = 1
TFLITE_IDENTIFIER = b"TFL3"  # bytes 4-8 of every TFLite flatbuffer


def _input_spec(batch: int | None) -> list[tf.TensorSpec]:
    return [tf.TensorSpec((batch, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1), tf.float32, name="image")]


def _free_target(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing export unless asked to; then remove it."""
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{config.display_path(path)} exists: pass overwrite=True to replace it")
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)


def _export_config(value, unroll: bool = False):
    """A model config with every mixed-precision dtype policy replaced by float32 (nested layers included), and
    with ``unroll`` every LSTM unrolled over its fixed number of time steps."""
    if isinstance(value, dict):
        policy = value.get("config", {}).get("name", "") if value.get("class_name") == "DTypePolicy" else ""
        if policy.startswith("mixed_"):
            return "float32"
        copied = {key: _export_config(item, unroll) for key, item in value.items()}
        if unroll and value.get("class_name") == "LSTM":
            copied["config"] = {**copied["config"], "unroll": True}
        return copied
    if isinstance(value, list):
        return [_export_config(item, unroll) for item in value]
    return value


def float32_copy(model: keras.Model) -> keras.Model:
    """The model itself when it computes in float32, else a float32 twin with the same weights.

    A model trained with mixed precision computes in float16 or bfloat16; exports and phones want float32
    (TFLite's int8 option then shrinks the weights).
    """
    if all(not layer.dtype_policy.name.startswith("mixed_") for layer in model.layers):
        return model
    twin = keras.Model.from_config(_export_config(model.get_config()))
    twin.set_weights(model.get_weights())
    return twin


def tflite_copy(model: keras.Model) -> keras.Model:
    """A float32 twin of the model, same weights, with its LSTMs unrolled over the 31 time steps.

    A recurrent loop converts to TFLite's built-in ops only on some versions: TensorFlow 2.20 with Keras 3.13
    (Colab's) kept it as TensorFlow "Flex" ops (``FlexTensorListReserve``) that the TFLite interpreter cannot
    run. Unrolled, each step is plain matrix products and activations, built-in everywhere, phones included.
    """
    twin = keras.Model.from_config(_export_config(model.get_config(), unroll=True))
    twin.set_weights(model.get_weights())
    return twin


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Keep TensorFlow's "INFO: Assets written to /tmp/..." lines and the converter's notices out of the output."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        with native_stderr_muted():
            yield
    finally:
        logger.setLevel(level)


def export_saved_model(model: keras.Model, folder: Path | str, overwrite: bool = False) -> Path:
    """The model as a TensorFlow SavedModel (float32, any batch size; signature ``serve``: images -> logits)."""
    folder = Path(folder)
    _free_target(folder, overwrite)
    with _quiet_export():
        float32_copy(model).export(str(folder), format="tf_saved_model", verbose=False, input_signature=_input_spec(None))
    return folder


def export_tflite(model: keras.Model, path: Path | str, quantization: str = "float32", overwrite: bool = False) -> Path:
    """The model as a TensorFlow Lite file: ``quantization`` "float32", or "int8" (dynamic range: int8 weights)."""
    if quantization not in TFLITE_FILES:
        raise ValueError(f"quantization {quantization!r}: expected one of {', '.join(TFLITE_FILES)}")
    path = Path(path)
    _free_target(path, overwrite)
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]} if quantization == "int8" else {}
    with _quiet_export():
        tflite_copy(model).export(str(path), format="litert", verbose=False, input_signature=_input_spec(TFLITE_BATCH), **options)
    return path


def export_all(model: keras.Model, vocabulary: Vocabulary, folder: Path | str, overwrite: bool = False) -> dict[str, Path]:
    """SavedModel, float32 and int8 TFLite files in ``folder``, with the vocabulary beside them."""
    folder = Path(folder)
    model = float32_copy(model)  # once, not once per file
    paths = {"saved_model": export_saved_model(model, folder / SAVED_MODEL_DIR, overwrite)}
    for quantization, name in TFLITE_FILES.items():
        paths[quantization] = export_tflite(model, folder / name, quantization, overwrite)
    vocabulary.save(folder / config.VOCABULARY_FILE)
    return paths


def _interpreter_class():
    """LiteRT's interpreter when its package is installed, else TensorFlow's (deprecated there, still working)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        return tf.lite.Interpreter


# Run in a child process before this one opens a .tflite file: the TFLite runtime does not verify a file's
# flatbuffer, and a truncated or corrupted one can crash the whole process (a segfault, nothing printed).
_PROBE = """
import sys
import numpy as np
from utils.export import _interpreter_class
interpreter = _interpreter_class()(model_path=sys.argv[1])
interpreter.allocate_tensors()
for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
interpreter.invoke()
"""
_probed: dict[tuple[str, int, int], None] = {}  # files already found usable in this process


def check_tflite_file(path: Path) -> None:
    """Raise ``ValueError`` naming ``path`` unless it is a TFLite model the runtime can open and run.

    Checked here: the size, the ``TFL3`` identifier, then one run on a blank image in a child process,
    so that a file that would crash the runtime ends in a message instead of a segfault.
    """
    check_model_size(path)
    with path.open("rb") as file:
        header = file.read(8)
    if header[4:8] != TFLITE_IDENTIFIER:
        raise ValueError(f"{config.display_path(path)}: not a TensorFlow Lite model (no {TFLITE_IDENTIFIER.decode()} "
                         "identifier at its start)")  # fmt: skip
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _probed:
        return
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(config.REPO_ROOT)}
    try:
        child = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True,
                               errors="replace", env=environment, timeout=config.TFLITE_PROBE_SECONDS)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ValueError(f"{config.display_path(path)}: the TFLite runtime did not read it within "
                         f"{config.TFLITE_PROBE_SECONDS} s (config.TFLITE_PROBE_SECONDS)") from None  # fmt: skip
    if child.returncode < 0:
        raise ValueError(f"{config.display_path(path)}: the TFLite runtime crashed reading it "
                         f"({signal.Signals(-child.returncode).name}): a truncated or corrupted file?")  # fmt: skip
    if child.returncode != 0:
        lines = [line for line in child.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {child.returncode}"
        raise ValueError(f"{config.display_path(path)}: not a usable TFLite model ({reason[:300]})")
    _probed[key] = None


class TFLiteModel:
    """A ``.tflite`` CRNN with the part of the Keras model API that reading needs: ``predict_on_batch``, ``output_shape``."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{config.display_path(self.path)}: no such TFLite file")
        check_tflite_file(self.path)
        with warnings.catch_warnings(), native_stderr_muted():  # and the runtime's "Created XNNPACK delegate"
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            self._interpreter = _interpreter_class()(model_path=str(self.path), num_threads=os.cpu_count())
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.output_shape = (None, *self._output["shape"][1:])

    def predict_on_batch(self, images) -> np.ndarray:
        """Logits [B, 31, classes] for images [B, 64, 128, 1], one image at a time."""
        images = np.asarray(images, dtype=np.float32)
        logits = []
        for image in images:
            self._interpreter.set_tensor(self._input["index"], image[None])
            self._interpreter.invoke()
            logits.append(self._interpreter.get_tensor(self._output["index"])[0].copy())
        return np.stack(logits) if logits else np.zeros((0, *self.output_shape[1:]), np.float32)
