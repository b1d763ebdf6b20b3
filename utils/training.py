"""Training the CRNN: CTC loss, callbacks that fight overfitting, resuming, reading a dataset back.

``train_crnn`` fits a compiled model and keeps everything of the run in one folder,
``artifacts/models/<run>/``: ``model.keras`` (the epoch with the best validation CER),
``vocabulary.txt``, ``history.csv`` (one row per epoch) and ``backup/`` while it runs, so an
interrupted run (Ctrl-C, kernel restart, killed process) resumes at the next epoch when started again.
A finished run is never overwritten: starting the same run again moves it aside first.
Every model and backup file is written atomically and checked before a resume uses it: a file damaged by
a kill mid-write is reported and renamed ``*.damaged-<time>`` (kept, never deleted), and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import h5py
import keras
import numpy as np
import pandas as pd
import tensorflow as tf
import tqdm
import tqdm.auto

from utils import config
from utils.cli import check_positive
from utils.decoding import decode
from utils.devices import check_keras_can_fit, default_preset
from utils.encoding import Vocabulary
from utils.metrics import character_error_rate, word_error_rate
from utils.model import build_crnn, fast_kernels_here, load_model, predict_logits, save_model, use_fast_kernels
from utils.pipeline import Datasets, make_dataset
from utils.setup import has_front_end


# --- Compiling ----------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="htr")
class CTCLoss(keras.losses.Loss):
    """Keras' CTC loss (``keras.losses.CTC``: logits in, blank = id 0, a label's length = its non-zero ids),
    computed on a CPU by TensorFlow's native CTC kernel.

    ``keras.losses.CTC`` runs TensorFlow's dense CTC: a loop over the 31 steps of small operations, forward and
    backward, that took a tenth of the compact CRNN's training step on 2 CPU cores. The native kernel takes the
    labels as a sparse tensor and computes the loss and its gradient in one C++ pass: the same values (tested).
    ``native=None`` chooses it where :func:`utils.model.fast_kernels_here`; XLA cannot compile it, so
    :func:`compile_crnn` passes ``native=False`` with ``jit_compile``.
    """

    def __init__(self, native: bool | None = None, name: str = "ctc_loss", reduction: str | None = "sum_over_batch_size",
                 dtype=None):  # fmt: skip
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.native = native

    def call(self, y_true, y_pred):
        native = fast_kernels_here() if self.native is None else self.native
        if not native:
            return keras.losses.CTC(reduction=None).call(y_true, y_pred)
        labels = tf.sparse.from_dense(tf.cast(y_true, "int32"))  # the padding (0) is left out: the true lengths
        steps = tf.fill([tf.shape(y_pred)[0]], tf.shape(y_pred)[1])
        return tf.nn.ctc_loss(labels=labels, logits=tf.cast(y_pred, "float32"), label_length=None, logit_length=steps,
                              logits_time_major=False, blank_index=0)  # fmt: skip

    def get_config(self) -> dict:
        return {**super().get_config(), "native": self.native}


def compile_crnn(
    model: keras.Model,
    learning_rate: float = config.LEARNING_RATE,
    weight_decay: float = config.WEIGHT_DECAY,
    lr_schedule: str = config.LR_SCHEDULE,
    decay_steps: int | None = None,
    jit_compile: bool | str = False,
) -> keras.Model:
    """Attach the optimizer (AdamW with ``weight_decay``, Adam without) and the CTC loss.

    :class:`CTCLoss` (Keras' CTC loss on TensorFlow's native kernel) takes the logits and counts a label's length
    as its non-zero ids, so the padding never counts as characters. ``lr_schedule="cosine"`` needs ``decay_steps`` (epochs x steps).
    ``jit_compile``: XLA, see :func:`utils.devices.jit_compile` (off by default: slower on a CPU).
    """
    if lr_schedule == "cosine":
        if not decay_steps:
            raise ValueError("the cosine schedule needs decay_steps (epochs x steps per epoch)")
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha=config.LR_MIN / learning_rate)
    elif lr_schedule == "plateau":
        rate = learning_rate
    else:
        raise ValueError(f"lr_schedule {lr_schedule!r}: expected 'plateau' or 'cosine'")
    if weight_decay > 0:
        optimizer = keras.optimizers.AdamW(rate, weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.Adam(rate)
    model.compile(optimizer=optimizer, loss=CTCLoss(native=False) if jit_compile else CTCLoss(), jit_compile=jit_compile)
    return model


# --- Reading a dataset back -----------------------------------------------------------------------
@dataclass
class Reading:
    """What a model read from a dataset: true texts, predicted texts and (optionally) the images."""

    references: list[str]
    predictions: list[str]
    images: np.ndarray | None = None

    @property
    def cer(self) -> float:
        return character_error_rate(self.references, self.predictions)

    @property
    def wer(self) -> float:
        return word_error_rate(self.references, self.predictions)


def read_dataset(
    model: keras.Model,
    dataset: tf.data.Dataset,
    vocabulary: Vocabulary,
    beam_width: int | None = None,
    keep_images: bool = False,
) -> Reading:
    """Run the model over a dataset of (images, labels) and decode; the true texts come from the labels."""
    references, predictions, images = [], [], []
    for batch_images, labels in dataset:
        logits = predict_logits(model, batch_images)
        predictions += decode(logits, vocabulary, beam_width)
        references += [vocabulary.decode(row) for row in np.asarray(labels)]
        if keep_images:
            images.append(np.asarray(batch_images))
    return Reading(references, predictions, np.concatenate(images) if keep_images and images else None)


# --- Callbacks ------------------------------------------------------------------------------------
class ErrorRates(keras.callbacks.Callback):
    """Decode the validation set each epoch and log ``val_cer`` and ``val_wer`` (and ``cer`` on training words).

    Keras' loss is not what we care about: this puts the character error rate into the logs,
    where early stopping, the checkpoint and the CSV log read it.
    Put it before the callbacks that read its logs. Prints one line per epoch when ``verbose``.
    """

    def __init__(self, validation: tf.data.Dataset, vocabulary: Vocabulary, train_sample: tf.data.Dataset | None = None,
                 epochs: int | None = None, verbose: bool = True):  # fmt: skip
        super().__init__()
        self.validation, self.vocabulary, self.train_sample = validation, vocabulary, train_sample
        self.epochs, self.verbose = epochs, verbose
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        reading = read_dataset(self.model, self.validation, self.vocabulary)
        logs["val_cer"], logs["val_wer"] = reading.cer, reading.wer
        if self.train_sample is not None:
            train = read_dataset(self.model, self.train_sample, self.vocabulary)
            logs["cer"], logs["wer"] = train.cer, train.wer
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["seconds"] = time.perf_counter() - self._started
        if self.verbose:
            of = f"/{self.epochs}" if self.epochs else ""
            parts = [f"epoch {epoch + 1}{of}", f"loss {logs.get('loss', float('nan')):6.2f}"]
            if "val_loss" in logs:
                parts.append(f"val_loss {logs['val_loss']:6.2f}")
            if "cer" in logs:
                parts.append(f"train CER {logs['cer']:6.1%}")
            parts += [f"val CER {logs['val_cer']:6.1%}", f"val WER {logs['val_wer']:6.1%}",
                      f"lr {logs['learning_rate']:.1e}", f"{logs['seconds']:4.0f} s"]  # fmt: skip
            print("  ".join(parts), flush=True)


class BatchProgress(keras.callbacks.Callback):
    """A progress bar within each epoch (tqdm), the loss beside it: what a learner watches during a long epoch.

    Only a batch-end hook that counts, and the loss is read every ``UPDATE_SECONDS``: reading it after every
    batch would make Keras wait for each step (bench/progress.py measures what the bar costs). A widget bar
    where a person watches the notebook; else a text bar on stdout (a terminal), redrawn every few seconds at
    most, and never on stderr.
    """

    UPDATE_SECONDS = 2.0
    TEXT_SECONDS = 5.0

    def __init__(self, steps: int | None = None, widget: bool | None = None):
        """``steps``: batches per epoch, when known; else the first epoch counts them for the next ones."""
        super().__init__()
        self.steps = steps
        self.widget = has_front_end() if widget is None else widget
        self.bar = None
        self._last = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        if self.widget:
            self.bar = tqdm.auto.tqdm(total=self.steps, desc=f"epoch {epoch + 1}", unit="batch", leave=False)
        else:
            self.bar = tqdm.tqdm(total=self.steps, desc=f"epoch {epoch + 1}", unit="batch", leave=False, file=sys.stdout,
                                 mininterval=self.TEXT_SECONDS, ascii=True)  # fmt: skip
        self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        now = time.perf_counter()
        if logs and "loss" in logs and now - self._last >= self.UPDATE_SECONDS:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.2f}", refresh=False)
            self._last = now

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.steps = self.steps or self.bar.n
            self.bar.close()
            self.bar = None

    on_train_end = on_epoch_end


def budget_learning_rate(fraction: float, initial: float) -> float:
    """The rate after ``fraction`` (0 to 1) of a time budget: ``initial``, then a cosine down to ``config.LR_MIN``."""
    decay_start = 1.0 - config.LR_DECAY_FRACTION
    progress = min(max(fraction - decay_start, 0.0) / config.LR_DECAY_FRACTION, 1.0)
    return config.LR_MIN + (initial - config.LR_MIN) * 0.5 * (1 + math.cos(math.pi * progress))


class TimeBudget(keras.callbacks.Callback):
    """Stop training once ``minutes`` have passed, and (``cosine``) lower the learning rate towards the end.

    A run that knows its length can plan its learning rate: the compiled rate until the last
    ``config.LR_DECAY_FRACTION`` of the budget, then a cosine down to ``config.LR_MIN`` when time is
    up (big steps while the model is far from good, small ones to settle), set after every batch.
    The epoch under way when time is up ends early, is still validated and logged, and the best
    model is kept. Only a batch-end hook, and the rate is set every few seconds: a batch-begin hook
    or a variable assigned after every batch makes Keras wait for each step (measured: up to 45% slower).
    A resumed run passes the seconds its earlier part already spent (``spent_seconds``), so the
    whole run keeps to one budget and one schedule.
    """

    UPDATE_SECONDS = 5.0

    def __init__(self, minutes: float, cosine: bool = True, spent_seconds: float = 0.0):
        super().__init__()
        self.seconds = check_positive(minutes, "a time budget (minutes)") * 60
        self.cosine = cosine
        self.spent_seconds = spent_seconds
        self.stopped = False
        self._started = self._last_set = 0.0
        self._initial_rate = self._rate = 0.0

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter() - self.spent_seconds
        self._initial_rate = self._rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        elapsed = time.perf_counter() - self._started
        if elapsed >= self.seconds:
            self.model.stop_training = True
            self.stopped = True
        elif self.cosine and elapsed - self._last_set >= self.UPDATE_SECONDS:
            # Assigning the rate waits for the step in flight, so do it every few seconds, not every batch.
            rate = budget_learning_rate(elapsed / self.seconds, self._initial_rate)
            if rate != self._rate:
                self.model.optimizer.learning_rate.assign(rate)
                self._rate = rate
            self._last_set = elapsed


# --- A run and its folder --------------------------------------------------------------------------
@dataclass(frozen=True)
class RunFolder:
    """The files of one training run, in ``artifacts/models/<name>/``."""

    folder: Path

    @classmethod
    def named(cls, name: str) -> "RunFolder":
        return cls(config.artifacts_dir() / config.MODELS_DIR / name)

    @property
    def model(self) -> Path:
        return self.folder / "model.keras"

    @property
    def vocabulary(self) -> Path:
        return self.folder / "vocabulary.txt"

    @property
    def history(self) -> Path:
        return self.folder / "history.csv"

    @property
    def backup(self) -> Path:
        return self.folder / "backup"

    @property
    def interrupted(self) -> bool:
        """True when a run in this folder stopped before it finished (its backup is still there)."""
        return self.backup.is_dir() and any(self.backup.iterdir())

    def read_history(self) -> pd.DataFrame:
        """One row per epoch, epochs counted from 1 (the CSV log of Keras counts from 0)."""
        history = pd.read_csv(self.history)
        history["epoch"] += 1
        return history


def _aside(path: Path, why: str) -> Path:
    """Rename a damaged file or folder to ``<name>.damaged-<time>`` beside it and say so: kept, never deleted."""
    stem, suffix = (path.stem, path.suffix) if path.is_file() else (path.name, "")
    aside = path.with_name(f"{stem}.{config.DAMAGED_TAG}-{datetime.now():%Y%m%d-%H%M%S}{suffix}")
    path.rename(aside)
    print(f"{config.display_path(path)} is damaged ({why}): moved to {config.display_path(aside)}", flush=True)
    return aside


def _replace_atomically(path: Path, write) -> None:
    """Call ``write(temporary)`` for a file beside ``path``, then rename it over ``path``: never half a file there."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks: what a backup or a pretraining stage records of the file it rests on."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _readable_h5(path: Path) -> bool:
    """Whether every array of an HDF5 file reads back (a truncated file fails): for backups written before checksums."""

    def read(_, item):
        if isinstance(item, h5py.Dataset):
            item[()]

    try:
        with h5py.File(path, "r") as file:
            file.visititems(read)
    except Exception:  # noqa: BLE001 - whatever h5py raises, the file cannot be restored
        return False
    return True


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore (two states kept) with atomic writes, each state's weights checksummed in its metadata.

    Keras writes its files in place: a kill mid-write left a state that failed every resume. Here the current state
    is copied to the previous one, then replaced, file by file, each by a rename, so one whole state exists at every
    instant and :meth:`state` tells it from a torn one. The backup is not deleted at the end of ``fit``:
    :func:`train_crnn` removes it once the final model is verified.
    """

    def __init__(self, backup_dir: Path | str):
        super().__init__(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)
        self._latest_written = False  # once this callback wrote the latest state, it need not check it again

    @property
    def states(self) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
        """(weights, metadata) of the latest state, then of the one before it."""
        return ((Path(self._weights_path), Path(self._training_metadata_path)),
                (Path(self._prev_weights_path), Path(self._prev_training_metadata_path)))  # fmt: skip

    @staticmethod
    def state(weights: Path, metadata: Path) -> tuple[int | None, str]:
        """The epoch a saved state resumes at, or None and why it cannot be used."""
        try:
            saved = json.loads(metadata.read_text(encoding="utf-8"))
            epoch, expected = int(saved["epoch"]), saved.get("weights_sha256")
        except FileNotFoundError:
            return None, f"{metadata.name} is missing"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            return None, f"{metadata.name} is unreadable: {type(error).__name__}: {error}"
        if not weights.is_file():
            return None, f"{weights.name} is missing"
        if expected is not None and sha256(weights) != expected:
            return None, f"{weights.name} does not match its checksum in {metadata.name}"
        if expected is None and not _readable_h5(weights):  # a backup written before checksums
            return None, f"{weights.name} is unreadable"
        return epoch, ""

    def _save_model(self):
        (latest_weights, latest_metadata), (previous_weights, previous_metadata) = self.states
        latest_weights.parent.mkdir(parents=True, exist_ok=True)
        if self._latest_written or self.state(latest_weights, latest_metadata)[0] is not None:  # latest -> previous
            for source, target in ((latest_weights, previous_weights), (latest_metadata, previous_metadata)):
                _replace_atomically(target, lambda partial, source=source: shutil.copyfile(source, partial))
        # Keras wants weights files to end in .weights.h5; it is renamed over the latest once written.
        partial = latest_weights.with_name(f".latest.{os.getpid()}.partial.weights.h5")
        try:
            self.model.save_weights(partial, overwrite=True)
            metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights_sha256": sha256(partial)}
            os.replace(partial, latest_weights)
        finally:
            partial.unlink(missing_ok=True)
        _replace_atomically(latest_metadata, lambda path: path.write_text(json.dumps(metadata), encoding="utf-8"))
        self._latest_written = True


class BestModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras' ModelCheckpoint (a whole ``.keras`` model) written atomically by :func:`utils.model.save_model`, with
    the run's ``vocabulary`` inside it.

    Keras writes in place: a kill mid-write left a file that is no zip where the best model was.
    """

    def __init__(self, filepath, vocabulary: Vocabulary, **kwargs):
        super().__init__(filepath, **kwargs)
        self.vocabulary = vocabulary

    def _save_model(self, epoch, batch, logs):
        path = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, path):  # the same run's best epoch so far: replaced by design
            save_model(self.model, path, overwrite=True, vocabulary=self.vocabulary)


def _restore_backup(run: RunFolder) -> int | None:
    """The epoch an interrupted run resumes at: its latest backed-up state, else the one before (the damaged one
    moved aside); None when neither is whole."""
    (latest, previous), reasons = SafeBackupAndRestore(run.backup).states, []
    for number, (weights, metadata) in enumerate((latest, previous)):
        epoch, why = SafeBackupAndRestore.state(weights, metadata)
        if epoch is None:
            reasons.append(why)
            continue
        if number == 1:  # the older state becomes the latest, which Keras restores
            aside = run.folder / f"backup.{config.DAMAGED_TAG}-{datetime.now():%Y%m%d-%H%M%S}"
            aside.mkdir()
            for path in latest:
                if path.exists():
                    path.rename(aside / path.name)
            for source, target in zip(previous, latest):
                _replace_atomically(target, lambda partial, source=source: shutil.copyfile(source, partial))
            print(f"{config.display_path(run.backup)}: the latest training state is damaged ({reasons[0]}; moved to "
                  f"{config.display_path(aside)}): resuming from the one before it, after epoch {epoch}",
                  flush=True)  # fmt: skip
        return epoch
    print(f"{config.display_path(run.backup)}: no whole training state to resume from ({'; '.join(reasons)}): "
          "the run starts over", flush=True)  # fmt: skip
    return None


def _trim_history(run: RunFolder, epochs_done: int, verbose: bool) -> None:
    """Keep one row per epoch in ``history.csv``, for the epochs the backup holds: the resumed run logs the rest.

    The CSV row of an epoch is written before its backup, and a damaged backup falls back one epoch further:
    rows past the restored epoch would otherwise appear twice.
    """
    if not run.history.is_file():
        return
    header, *rows = run.history.read_text(encoding="utf-8").splitlines(keepends=True) or [""]
    kept: dict[int, str] = {}
    for row in rows:
        first = row.split(",", 1)[0].strip()
        if row.endswith("\n") and first.isdigit() and int(first) < epochs_done:  # a half-written last row is dropped
            kept[int(first)] = row  # an epoch logged twice (by an earlier version) keeps its later row
    trimmed = header + "".join(kept[epoch] for epoch in sorted(kept))
    if trimmed != header + "".join(rows):
        _replace_atomically(run.history, lambda path: path.write_text(trimmed, encoding="utf-8"))
        if verbose:
            print(f"{config.display_path(run.history)}: {len(rows) - len(kept)} row(s) after epoch {epochs_done} "
                  "(logged after the last backup, or twice) removed: those epochs are trained again")  # fmt: skip


def _check_best_model(run: RunFolder) -> None:
    """Move a best-model file that does not load aside (reported, kept): the resumed run writes a new one."""
    if run.model.exists():
        try:
            load_model(run.model)
        except (ValueError, OSError) as error:
            _aside(run.model, str(error).split(": ", 1)[-1])


def _start_run(run: RunFolder, vocabulary: Vocabulary, verbose: bool) -> int | None:
    """Prepare the folder; the epochs done when an interrupted run resumes, else None. A finished run is moved aside.

    A resumed run's files are checked first: a damaged backup falls back to the state before it, or the run starts
    over (the folder moved aside, damaged backup included); a damaged best model is moved aside.
    """
    if run.interrupted:
        saved = Vocabulary.load(run.vocabulary) if run.vocabulary.is_file() else None
        if saved != vocabulary:
            raise ValueError(
                f"{config.display_path(run.folder)} holds an interrupted run with another vocabulary; "
                "delete or rename that folder to start afresh"
            )
        epochs_done = _restore_backup(run)
        if epochs_done is not None:
            _trim_history(run, epochs_done, verbose)
            _check_best_model(run)
            if verbose:
                print(f"Resuming the interrupted run in {config.display_path(run.folder)} after epoch {epochs_done}")
            return epochs_done
        verbose = True  # the earlier run is moved aside below: always say where
    if run.folder.exists() and any(run.folder.iterdir()):
        aside = run.folder.with_name(f"{run.folder.name}.{datetime.now():%Y%m%d-%H%M%S}")
        run.folder.rename(aside)
        if verbose:
            print(f"An earlier run was in {config.display_path(run.folder)}: moved to {config.display_path(aside)}")
        _remove_older_runs(run)
    run.folder.mkdir(parents=True, exist_ok=True)
    vocabulary.save(run.vocabulary)
    return None


def _remove_older_runs(run: RunFolder) -> None:
    """Keep the newest ``config.EARLIER_RUNS_KEPT`` earlier copies of ``run`` (``<run>.<time>``), delete the rest, saying so.

    Every rerun of chapter 04 moves the last run aside: without this, each left another copy behind. Only folders
    named exactly so are touched (a ``*.damaged-*`` file or a folder you renamed is kept); None keeps every copy.
    """
    if config.EARLIER_RUNS_KEPT is None:
        return
    pattern = re.compile(re.escape(run.folder.name) + r"\.\d{8}-\d{6}")
    earlier = sorted(path for path in run.folder.parent.iterdir() if path.is_dir() and pattern.fullmatch(path.name))
    for old in earlier[: max(len(earlier) - config.EARLIER_RUNS_KEPT, 0)]:
        shutil.rmtree(old)
        print(f"Removed the older run {config.display_path(old)} (config.EARLIER_RUNS_KEPT = {config.EARLIER_RUNS_KEPT})")


def _finish_run(model: keras.Model, run: RunFolder, vocabulary: Vocabulary) -> None:
    """Give ``model`` the best epoch's weights from ``run.model``, then remove the backup: only once that file loaded.

    A best model that does not load is moved aside (reported) and the model as trained is saved in its place;
    if even that fails, the backup stays and the run can be resumed.
    """
    try:
        model.load_weights(run.model)  # the best epoch of the whole run, resumed parts included
    except Exception as error:  # noqa: BLE001 - whatever the file's fault, the weights in memory replace it
        if run.model.exists():
            _aside(run.model, f"{type(error).__name__}: {str(error)[:200]}")
        save_model(model, run.model, vocabulary=vocabulary)
        print(f"{config.display_path(run.model)}: saved the model as it ended training instead", flush=True)
    if run.backup.exists():
        shutil.rmtree(run.backup)


def train_crnn(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    vocabulary: Vocabulary,
    run: RunFolder | str,
    epochs: int | None = None,
    train_sample: tf.data.Dataset | None = None,
    patience: int = config.EARLY_STOPPING_PATIENCE,
    minutes: float | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: bool = True,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Fit a compiled CRNN with early stopping on validation CER; return the history (one row per epoch).

    ``progress`` shows a bar within each epoch (:class:`BatchProgress`); None: when ``verbose`` and someone
    watches (a notebook front end, or a terminal), not in a headless run whose outputs are kept (``make run``).
    The learning rate: with a time budget (``minutes``) the compiled rate, then a cosine down to
    ``config.LR_MIN`` over the last part of the budget (:class:`TimeBudget`); without one it halves when the
    validation loss stalls; a cosine over epochs compiled into the optimizer (:func:`compile_crnn`)
    is left alone. At the end the model holds the weights of its best epoch, also in ``run.model``.
    ``minutes`` is None (no budget) or a finite number above 0: 0, a negative number or NaN raises ValueError.
    On a CPU the model trains on faster kernels with the same arithmetic (:func:`utils.model.use_fast_kernels`).
    """
    if minutes is not None:
        check_positive(minutes, "a time budget (minutes)")  # `if minutes:` once read 0 as "no budget"
    check_keras_can_fit(model.distribute_strategy)  # before the run folder is touched
    use_fast_kernels(model)
    run = RunFolder.named(run) if isinstance(run, str) else run
    epochs = epochs or config.epochs()
    resumed = _start_run(run, vocabulary, verbose) is not None
    best_so_far, spent_seconds = None, 0.0
    if resumed and run.history.is_file():
        earlier = pd.read_csv(run.history)
        if run.model.is_file() and len(earlier):  # without a best model, the next epoch writes one
            best_so_far = float(earlier["val_cer"].min())
        spent_seconds = float(earlier["seconds"].sum()) if "seconds" in earlier else 0.0
    scheduled = isinstance(getattr(model.optimizer, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule)
    rate = []
    if minutes is not None:
        rate = [TimeBudget(minutes, cosine=not scheduled, spent_seconds=spent_seconds)]
    elif not scheduled:
        # The rate follows the validation loss, which keeps falling while the CER still sits at 100%
        # (the all-blank phase at the start): halving on the CER would slow the escape from it.
        rate = [keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=config.LR_PLATEAU_PATIENCE,
                                                  min_lr=config.LR_MIN, mode="min")]  # fmt: skip
    if progress is None:
        progress = verbose and (has_front_end() or sys.stdout.isatty())
    steps = [
        *([BatchProgress()] if progress else []),  # first: its bar is gone before the epoch's line is printed
        ErrorRates(validation, vocabulary, train_sample, epochs, verbose),
        *rate,
        keras.callbacks.EarlyStopping("val_cer", mode="min", patience=patience, restore_best_weights=True, min_delta=1e-4),
        BestModelCheckpoint(run.model, vocabulary, monitor="val_cer", mode="min", save_best_only=True,
                            initial_value_threshold=best_so_far),  # fmt: skip
        keras.callbacks.CSVLogger(str(run.history), append=resumed),
        SafeBackupAndRestore(run.backup),
        *(callbacks or []),
    ]
    with warnings.catch_warnings():
        # Keras warns at the end of the first epoch when it could not know the epoch's length in
        # advance (ours is unknown: a file broken since indexing would be skipped); that is expected.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(train, validation_data=validation, epochs=epochs, callbacks=steps, shuffle=False, verbose=0)
    _finish_run(model, run, vocabulary)
    return run.read_history()


# --- Fine-tuning on a little real data ----------------------------------------------------------------
def fine_tune(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    vocabulary: Vocabulary,
    run: RunFolder | str,
    minutes: float | None = None,
    learning_rate: float | None = None,
    freeze_convolutions: bool | None = None,
    epochs: int | None = None,
    patience: int | None = None,
    verbose: bool = True,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Go on training a trained CRNN on a few real words: its own learning rate, the same loss.

    A synthetic model already knows letters; real writers differ in how strokes join and vary,
    which a few hundred words show it. ``freeze_convolutions`` keeps the feature extractor
    (convolutions and their batch normalisation) as it is and trains only the BiLSTMs and the
    output layer. Returns the history; the model ends with its best epoch's weights, as in :func:`train_crnn`.
    Settings left out come from ``config.FINETUNE_*``, read when called; quick mode trains
    ``config.FINETUNE_EPOCHS_QUICK`` epochs instead of minutes.
    """
    minutes = config.minutes(config.FINETUNE_MINUTES) if minutes is None else minutes
    learning_rate = config.FINETUNE_LEARNING_RATE if learning_rate is None else learning_rate
    freeze_convolutions = config.FINETUNE_FREEZE_CONVOLUTIONS if freeze_convolutions is None else freeze_convolutions
    patience = config.FINETUNE_PATIENCE if patience is None else patience
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization)):
            layer.trainable = not freeze_convolutions
    compile_crnn(model, learning_rate=learning_rate)
    if epochs is None:  # a fine-tuning epoch is short: with a time budget, the budget ends it
        if minutes is not None:
            epochs = 10 * config.EPOCHS
        else:
            epochs = config.FINETUNE_EPOCHS_QUICK if config.quick_mode() else config.EPOCHS
    return train_crnn(model, train, validation, vocabulary, run, epochs=epochs, patience=patience, minutes=minutes,
                      verbose=verbose, progress=progress)  # fmt: skip


def with_rehearsal(real: tf.data.Dataset, synthetic: tf.data.Dataset, synthetic_share: float | None = None,
                   seed: int | None = None) -> tf.data.Dataset:
    """Fine-tuning batches drawn at random from the real words and (a ``synthetic_share`` of them) the synthetic ones.

    Rehearsal: batches of what the model learned first keep it from forgetting it (fonts, lower-case
    words) while it adapts to a few real writers. An epoch ends when the real batches run out.
    ``synthetic_share`` defaults to ``config.FINETUNE_REHEARSAL``.
    """
    share = config.FINETUNE_REHEARSAL if synthetic_share is None else synthetic_share
    if not 0 <= share < 1:
        raise ValueError(f"synthetic_share {share}: expected at least 0 and below 1")
    if share == 0:
        return real
    return tf.data.Dataset.sample_from_datasets([real, synthetic.repeat()], weights=[1 - share, share],
                                                seed=config.seed() if seed is None else seed, stop_on_empty_dataset=True)


# --- Chapter 04's recipe in one call -------------------------------------------------------------------
def train_regularised(
    data: Datasets,
    run: RunFolder | str,
    minutes: float | None,
    seed: int | None = None,
    preset: str | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: bool = True,
) -> tuple[keras.Model, pd.DataFrame]:
    """Build, compile and train chapter 04's regularised CRNN on ``data`` (from ``make_datasets``).

    Dropout, AdamW, batch normalisation (``config.BATCH_NORM``), early stopping on validation CER and
    a training-CER sample, for ``minutes`` of training (None: ``config.epochs()`` epochs). The
    benchmarks and ``utils.pretrain`` call this; chapter 04 writes the same steps out for the reader.
    """
    seed = config.seed() if seed is None else seed
    model = build_crnn(preset or default_preset(), len(data.vocabulary), dropout=config.DROPOUT, batch_norm=config.BATCH_NORM)
    compile_crnn(model)
    train_words = data.words["train"]
    sample = train_words.sample(min(config.TRAIN_CER_WORDS, len(train_words)), random_state=seed)
    train_sample = make_dataset(sample, data.vocabulary, training=False, batch_size=config.EVAL_BATCH_SIZE, name="train_sample")
    history = train_crnn(model, data["train"], data["validation"], data.vocabulary, run, epochs=1000 if minutes is not None else None,
                         train_sample=train_sample, minutes=minutes, callbacks=callbacks, verbose=verbose)  # fmt: skip
    return model, history
