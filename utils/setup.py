"""The setup every chapter runs first: install what Colab lacks, check versions, report the mode.

Each notebook's first code cell finds the repository (cloning it on Colab) and calls :func:`prepare`.
That cell is the same in every chapter, and its ``REPO_URL`` is ``config.REPO_URL``
(tests/test_notebooks.py holds them together): a fork changes the two.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.metadata
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

from utils import config

# import name -> (pip name, minimum version). TensorFlow is checked, never installed here:
# Colab ships its own build, and a pip install over it breaks the GPU runtime.
REQUIREMENTS = {
    "numpy": ("numpy", "1.26"),
    "cv2": ("opencv-python-headless", "4.8"),
    "PIL": ("pillow", "10.0"),
    "pandas": ("pandas", "2.0"),
    "matplotlib": ("matplotlib", "3.7"),
    "seaborn": ("seaborn", "0.13"),
    "wordfreq": ("wordfreq", "3.0"),
    "rapidfuzz": ("rapidfuzz", "3.0"),
    "kagglehub": ("kagglehub", "0.3"),
    "tqdm": ("tqdm", "4.60"),
    "anywidget": ("anywidget", "0.9"),
}
TENSORFLOW_MINIMUM = "2.16"  # the first release with Keras 3


def in_colab() -> bool:
    return "google.colab" in sys.modules


def has_front_end() -> bool:
    """True when a person watches this kernel (JupyterLab, Notebook, VS Code, Colab); False when it runs headless.

    Widgets (progress bars, the upload and drawing pads of chapter 04) need a front end to show them. A kernel
    that jupyter_server started has ``JPY_SESSION_NAME`` (the notebook's path); VS Code sets ``VSCODE_PID``;
    nbconvert, nbclient and nbval start kernels with neither, and Colab is recognised by its module.
    """
    return in_colab() or any(os.environ.get(name) for name in ("JPY_SESSION_NAME", "VSCODE_PID"))


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _installed_version(module: str, pip_name: str) -> str | None:
    try:
        importlib.import_module(module)
    except ImportError:
        return None
    for name in (pip_name, module, "opencv-python", "opencv-contrib-python"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return getattr(sys.modules[module], "__version__", "?")


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Mute what C++ code writes to the process's stderr (file descriptor 2) for the moment.

    Python errors still surface as exceptions: only the C-level stream is redirected.
    """
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_FILTER_STARTED = False


def drop_native_notices(notices: tuple[str, ...] = ()) -> None:
    """From now on, drop the lines of the process's native stderr that contain one of ``notices``; pass every other.

    Some TensorFlow notices come from C++ at the first training step (the oneDNN DT_BOOL line, on CPUs it
    even misjudges), long after the import: muting stderr then would hide real errors too, so fd 2 goes
    through a pipe and a thread that forwards every line but those. Once per process; ``config.NATIVE_NOTICES``
    by default.
    """
    global _FILTER_STARTED
    if _FILTER_STARTED:
        return
    notices = notices or config.NATIVE_NOTICES
    sys.stderr.flush()
    target = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not any(notice.encode() in line for notice in notices):
                        os.write(target, line + b"\n")
            if pending:
                os.write(target, pending)

    thread = threading.Thread(target=forward, name="native-stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:  # at exit: end the pipe, so that a last line without a newline is still written
        sys.stderr.flush()
        os.dup2(target, 2)
        thread.join(timeout=2)

    atexit.register(restore)
    _FILTER_STARTED = True


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's native stderr muted for the moment.

    TF 2.21 prints its oneDNN/CUDA notices (and a cuInit error on a machine without a GPU)
    before its logging reads ``TF_CPP_MIN_LOG_LEVEL``, and Jupyter shows them as cell output.
    """
    with native_stderr_muted():
        import tensorflow as tf

        tf.zeros(1)  # the first op probes the devices: that is when the cuInit line comes
        tf.get_logger().setLevel("ERROR")  # Python-side notices, such as "N out of the last M calls triggered retracing"


def _gpu_hint() -> str:
    """One line on the accelerator: chapter 04 trains about 10 times faster on a GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU: {len(gpus)} found, chapter 04 trains the full-size model on it"
    if in_colab():
        return "No GPU: for chapter 04, choose Runtime > Change runtime type > T4 GPU, then run again"
    return "No GPU: chapter 04 trains the compact model on the CPU (or set SKIP_TRAINING there)"


def prepare(check_tensorflow: bool = True, quick: bool = False) -> None:
    """Install missing packages on Colab, check versions, quiet TensorFlow, style the plots.

    ``quick=True`` turns quick mode on from the notebook (as ``HTR_QUICK=1`` does, which Colab cannot set
    before the kernel starts); False leaves the environment's choice.
    """
    if quick:
        os.environ["HTR_QUICK"] = "1"
    if sys.version_info < (3, 10):
        raise RuntimeError(f"Python 3.10 or newer is needed, this is {sys.version.split()[0]}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ log lines out of the outputs
    versions = {"python": sys.version.split()[0]}
    missing = [pip for module, (pip, _) in REQUIREMENTS.items() if _installed_version(module, pip) is None]
    if missing and in_colab():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
        importlib.invalidate_caches()
    elif missing:
        raise ImportError(f"missing packages: {' '.join(missing)}. Install them with: pip install -r requirements.txt")
    for module, (pip, minimum) in REQUIREMENTS.items():
        version = _installed_version(module, pip) or "missing"
        if version == "missing" or _version_tuple(version) < _version_tuple(minimum):
            raise ImportError(f"{pip} {version} is too old or missing: {minimum} or newer is needed")
        versions[pip] = version
    if check_tensorflow:
        try:
            tf_version = importlib.metadata.version("tensorflow")
        except importlib.metadata.PackageNotFoundError:
            tf_version = None
        if tf_version is None or _version_tuple(tf_version) < _version_tuple(TENSORFLOW_MINIMUM):
            raise ImportError(f"TensorFlow {TENSORFLOW_MINIMUM} or newer is needed (found {tf_version})")
        versions["tensorflow"] = tf_version
        import_tensorflow_quietly()
        drop_native_notices()
    from utils.plots import use_series_style

    use_series_style()
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"Quick mode: {'ON: small data, few epochs' if config.quick_mode() else 'off (full size; QUICK = True for a quick run)'}"
        f"{' | running in Colab' if in_colab() else ''}"
    )
    if check_tensorflow:
        print(_gpu_hint())
