"""Training: a real learning signal, error-rate logging, checkpoints, resuming, and keeping earlier runs."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from utils import config
from utils.encoding import Vocabulary
from utils.model import build_crnn, load_model, saved_vocabulary
from utils.preprocess import load_image
from utils.synthetic import make_writers, render_word
from utils.training import (
    BatchProgress,
    ErrorRates,
    RunFolder,
    TimeBudget,
    budget_learning_rate,
    compile_crnn,
    fine_tune,
    read_dataset,
    train_crnn,
    with_rehearsal,
)

WORDS = ["the", "and", "of", "to", "in", "was", "he", "it", "on", "at", "as", "be", "by", "we", "or", "me"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """16 training-font word images through the real preprocessing, and their labels."""
    folder = tmp_path_factory.mktemp("words")
    writers = [style for style in make_writers(42) if style.split == "train"]
    images = []
    for index, text in enumerate(WORDS):
        path = folder / f"{index}.png"
        keras.utils.save_img(path, render_word(text, writers[index % len(writers)], np.random.default_rng(index))[..., None])
        images.append(load_image(str(path)))
    vocabulary = Vocabulary.from_texts(WORDS)
    return tf.stack(images), tf.constant(vocabulary.encode_batch(WORDS).ids), vocabulary


def datasets(batch, size=8):
    images, labels, _ = batch
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(size)


def small_model(vocabulary, **kwargs):
    keras.utils.set_random_seed(0)
    return compile_crnn(build_crnn("compact", len(vocabulary), **kwargs), weight_decay=0.0)


def test_the_ctc_loss_falls_on_a_small_batch(batch):
    images, labels, vocabulary = batch
    model = small_model(vocabulary)
    first = float(model.evaluate(images, labels, verbose=0))
    for _ in range(60):
        model.train_on_batch(images, labels)
    last = float(model.evaluate(images, labels, verbose=0))
    # An untrained model's CTC loss on these words is about 40; a model that learned nothing
    # settles on all-blank output (about 10 here). Memorising 16 words goes far below both.
    assert first > 25
    assert last < first / 4


def test_labels_padding_does_not_count_as_characters(batch):
    images, labels, vocabulary = batch
    model = small_model(vocabulary)
    wider = tf.pad(labels, [[0, 0], [0, 10]])  # more padding, same words
    assert float(model.evaluate(images, labels, verbose=0)) == pytest.approx(float(model.evaluate(images, wider, verbose=0)), rel=1e-5)


def test_read_dataset_returns_true_texts_from_the_labels(batch):
    images, labels, vocabulary = batch
    reading = read_dataset(small_model(vocabulary), datasets(batch), vocabulary, keep_images=True)
    assert reading.references == WORDS
    assert len(reading.predictions) == len(WORDS) and all(isinstance(text, str) for text in reading.predictions)
    assert reading.images.shape == (16, 64, 128, 1)
    assert 0 <= reading.cer


class Interrupt(keras.callbacks.Callback):
    """Simulates Ctrl-C at the end of an epoch (after the backup of that epoch was written)."""

    def __init__(self, after_epoch: int):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after_epoch:
            raise KeyboardInterrupt


class EpochsSeen(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch + 1)


def test_a_run_logs_error_rates_keeps_the_best_model_and_its_vocabulary(batch, tmp_path):
    images, labels, vocabulary = batch
    model = small_model(vocabulary, dropout=0.1)
    run = RunFolder(tmp_path / "run")
    history = train_crnn(model, datasets(batch), datasets(batch, 16), vocabulary, run, epochs=3,
                         train_sample=datasets(batch, 16), verbose=False)  # fmt: skip
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"loss", "val_loss", "val_cer", "val_wer", "cer", "learning_rate"} <= set(history.columns)
    assert history["val_cer"].between(0, 5).all()
    assert Vocabulary.load(run.vocabulary) == vocabulary
    assert saved_vocabulary(run.model) == vocabulary  # inside the model too: a reader checks the file against it
    assert not run.interrupted  # the backup is removed when a run finishes
    batch_norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert batch_norms and all("call" in vars(layer) for layer in batch_norms)  # trained on the fast kernels (a CPU)
    # The model file holds the best epoch, and the model in memory ends with the same weights.
    saved = load_model(run.model)
    np.testing.assert_allclose(saved.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6)


def interrupted_run(batch, folder, after_epoch: int, epochs: int) -> RunFolder:
    """A run of ``epochs`` stopped by Ctrl-C at the end of epoch ``after_epoch``."""
    vocabulary = batch[2]
    run = RunFolder(folder)
    with pytest.raises(KeyboardInterrupt):
        train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=epochs,
                   callbacks=[Interrupt(after_epoch)], verbose=False)  # fmt: skip
    return run


def test_an_interrupted_run_resumes_at_the_next_epoch(batch, tmp_path):
    images, labels, vocabulary = batch
    run = interrupted_run(batch, tmp_path / "run", after_epoch=2, epochs=4)
    assert run.interrupted
    assert list(pd.read_csv(run.history)["epoch"]) == [0, 1]
    seen = EpochsSeen()
    history = train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=4,
                         callbacks=[seen], verbose=False)  # fmt: skip
    assert seen.epochs == [3, 4]  # k = 2 epochs were done: it goes on with epoch 3
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert not run.interrupted


def test_resuming_with_another_vocabulary_is_refused(batch, tmp_path):
    run = interrupted_run(batch, tmp_path / "run", after_epoch=1, epochs=3)
    other = Vocabulary("xyz")
    with pytest.raises(ValueError, match="interrupted run with another vocabulary"):
        train_crnn(small_model(other), datasets(batch), datasets(batch), other, run, epochs=3, verbose=False)


def test_a_finished_run_is_moved_aside_never_overwritten(batch, tmp_path, capsys):
    images, labels, vocabulary = batch
    run = RunFolder(tmp_path / "run")
    train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=1, verbose=False)
    first = run.model.read_bytes()
    train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=1)
    aside = [path for path in tmp_path.iterdir() if path.name.startswith("run.")]
    assert len(aside) == 1 and (aside[0] / "model.keras").read_bytes() == first
    assert "moved to" in capsys.readouterr().out


def test_a_time_budget_stops_training_and_lowers_the_rate_along_a_cosine(batch, tmp_path):
    images, labels, vocabulary = batch
    limit = TimeBudget(minutes=1e-9)  # up after the first batch (0 is refused: it once meant "no budget")
    history = train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, RunFolder(tmp_path / "r"),
                         epochs=50, callbacks=[limit], verbose=False)  # fmt: skip
    assert limit.stopped and len(history) == 1
    model = small_model(vocabulary)
    budget = TimeBudget(minutes=5.0)  # the decay starts after 3 minutes: far beyond two small epochs on a busy machine
    model.fit(datasets(batch, 4), epochs=2, verbose=0, shuffle=False, callbacks=[budget])
    rate = float(model.optimizer.learning_rate.numpy())
    assert not budget.stopped and rate == pytest.approx(config.LEARNING_RATE)  # the decay starts later in the budget
    start = 1 - config.LR_DECAY_FRACTION
    assert budget_learning_rate(0.0, 1e-3) == budget_learning_rate(start, 1e-3) == pytest.approx(1e-3)
    assert budget_learning_rate(start + config.LR_DECAY_FRACTION / 2, 1e-3) == pytest.approx((1e-3 + config.LR_MIN) / 2)
    assert budget_learning_rate(1.0, 1e-3) == budget_learning_rate(1.5, 1e-3) == pytest.approx(config.LR_MIN)


def test_error_rates_callback_prints_one_line_per_epoch(batch, tmp_path, capsys):
    images, labels, vocabulary = batch
    model = small_model(vocabulary)
    model.fit(datasets(batch), epochs=2, verbose=0, shuffle=False, callbacks=[ErrorRates(datasets(batch), vocabulary, epochs=2)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "val CER" in lines[1]


def test_cosine_schedule_needs_its_length_and_unknown_schedules_are_refused(batch):
    vocabulary = batch[2]
    with pytest.raises(ValueError, match="decay_steps"):
        compile_crnn(build_crnn("compact", len(vocabulary)), lr_schedule="cosine")
    with pytest.raises(ValueError, match="'plateau' or 'cosine'"):
        compile_crnn(build_crnn("compact", len(vocabulary)), lr_schedule="step")
    model = compile_crnn(build_crnn("compact", len(vocabulary)), lr_schedule="cosine", decay_steps=100)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)


def test_a_resumed_time_budget_counts_the_time_already_spent(batch):
    images, labels, vocabulary = batch
    model = small_model(vocabulary)
    budget = TimeBudget(minutes=1.0, spent_seconds=60.0)  # the earlier part of the run used the whole minute
    history = model.fit(datasets(batch, size=4), epochs=3, callbacks=[budget], verbose=0, shuffle=False)
    assert budget.stopped and len(history.history["loss"]) == 1  # stopped after its first batch
    fresh = TimeBudget(minutes=1.0)
    model.fit(datasets(batch, size=4), epochs=1, callbacks=[fresh], verbose=0, shuffle=False)
    assert not fresh.stopped


@pytest.mark.parametrize("freeze", [True, False])
def test_fine_tune_trains_at_its_own_rate_and_freezes_the_convolutions_only_when_asked(batch, tmp_path, freeze, monkeypatch):
    monkeypatch.setenv("HTR_QUICK", "1")  # without minutes or epochs: quick mode's own epoch count
    images, labels, vocabulary = batch
    model = small_model(vocabulary)
    convolutional = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization))]
    dense = model.layers[-1]
    conv_before = [w.copy() for w in convolutional[0].get_weights()]
    dense_before = [w.copy() for w in dense.get_weights()]
    history = fine_tune(model, datasets(batch), datasets(batch), vocabulary, RunFolder(tmp_path / "tuned"), minutes=None,
                        learning_rate=2e-4, freeze_convolutions=freeze, verbose=False)  # fmt: skip
    assert len(history) == config.FINETUNE_EPOCHS_QUICK and (tmp_path / "tuned" / "model.keras").is_file()
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(2e-4)
    assert all(layer.trainable is not freeze for layer in convolutional) and dense.trainable
    conv_changed = any(not np.array_equal(a, b) for a, b in zip(conv_before, convolutional[0].get_weights()))
    assert conv_changed is not freeze
    assert any(not np.array_equal(a, b) for a, b in zip(dense_before, dense.get_weights()))


def test_rehearsal_mixes_synthetic_batches_in_and_ends_with_the_real_ones(batch):
    images, labels, vocabulary = batch
    real = tf.data.Dataset.from_tensor_slices((images[:8], labels[:8])).batch(2)  # 4 batches
    synthetic = tf.data.Dataset.from_tensor_slices((1.0 - images[8:], labels[8:])).batch(2)
    assert with_rehearsal(real, synthetic, 0.0) is real
    mixed = list(with_rehearsal(real, synthetic, 0.5, seed=1))
    from_real = [bool(np.any(np.all(np.isclose(b[0].numpy()[0], images[:8].numpy()), axis=(1, 2, 3)))) for b in mixed]
    assert sum(from_real) == 4  # every real batch once: then the epoch ends
    assert len(mixed) > 4  # and synthetic batches in between
    with pytest.raises(ValueError, match="below 1"):
        with_rehearsal(real, synthetic, 1.0)


# --- Damaged files: a kill mid-write, a resume over what it left (issue 12, items 3 and 4) ---------------------
def kill_mid_write(monkeypatch):
    """Simulates a kill while Keras writes a .keras file: half of it on disk, then the process stops."""
    from keras.src.saving import saving_lib

    real = saving_lib.save_model

    def half_written(model, filepath, *args, **kwargs):
        real(model, filepath, *args, **kwargs)
        whole = Path(filepath).read_bytes()
        Path(filepath).write_bytes(whole[: len(whole) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(saving_lib, "save_model", half_written)


def aside_files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


@pytest.fixture(scope="module")
def stopped_after_two(batch, tmp_path_factory) -> Path:
    """One run of 3 epochs stopped after epoch 2 (its backup holds epochs 2 and 1), made once: tests damage copies."""
    return interrupted_run(batch, tmp_path_factory.mktemp("stopped") / "run", after_epoch=2, epochs=3).folder


def copy_of(folder: Path, tmp_path: Path) -> RunFolder:
    return RunFolder(Path(shutil.copytree(folder, tmp_path / "run")))


def test_a_kill_while_the_best_model_is_written_leaves_no_broken_model_file(batch, tmp_path, monkeypatch):
    vocabulary = batch[2]
    run = RunFolder(tmp_path / "run")
    kill_mid_write(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=1, verbose=False)
    assert not run.model.exists() or zipfile.is_zipfile(run.model)  # Keras wrote in place: half a zip was left there
    assert not [path for path in run.folder.rglob("*.keras") if not zipfile.is_zipfile(path)]


def test_a_damaged_best_model_is_moved_aside_on_resume_and_the_run_finishes(batch, stopped_after_two, tmp_path, capsys):
    images, labels, vocabulary = batch
    run = copy_of(stopped_after_two, tmp_path)
    whole = run.model.read_bytes()
    run.model.write_bytes(whole[: len(whole) // 2])  # what a kill during its write left
    model = small_model(vocabulary)
    history = train_crnn(model, datasets(batch), datasets(batch), vocabulary, run, epochs=3, verbose=False)
    # Epoch 3 does not beat epochs 1-2 (all 100% CER here): before the fix nothing rewrote the file and the
    # run died at the end in load_weights (BadZipFile), its backup already deleted.
    assert history["val_cer"].iloc[2] >= history["val_cer"].iloc[:2].min()
    assert list(history["epoch"]) == [1, 2, 3] and not run.interrupted
    aside = aside_files(run.folder, f"model.{config.DAMAGED_TAG}-*.keras")
    assert len(aside) == 1 and aside[0].read_bytes() == whole[: len(whole) // 2]  # reported and kept, not deleted
    assert "model.keras is damaged" in capsys.readouterr().out
    np.testing.assert_allclose(load_model(run.model).predict_on_batch(images), model.predict_on_batch(images), atol=1e-6)


def test_the_backup_is_kept_until_the_final_model_is_verified(batch, stopped_after_two, tmp_path, monkeypatch):
    vocabulary = batch[2]
    run = copy_of(stopped_after_two, tmp_path)

    class DamageTheModel(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            run.model.write_bytes(run.model.read_bytes()[:100])

    from keras.src.saving import saving_lib

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saving_lib, "save_model", disk_full)
    with pytest.raises(OSError, match="No space left"):  # epochs=2: nothing left to train, only the run's end
        train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=2,
                   callbacks=[DamageTheModel()], verbose=False)  # fmt: skip
    assert run.interrupted  # no whole model at the end: the backup stays, the run can be resumed
    monkeypatch.undo()
    train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=2, verbose=False)
    assert not run.interrupted and load_model(run.model)
    assert len(aside_files(run.folder, f"model.{config.DAMAGED_TAG}-*.keras")) == 1


def test_a_truncated_backup_metadata_falls_back_to_the_older_state(batch, stopped_after_two, tmp_path, capsys):
    vocabulary = batch[2]
    run = copy_of(stopped_after_two, tmp_path)
    metadata = run.backup / "training_metadata.json"
    metadata.write_text(metadata.read_text()[:5])
    seen = EpochsSeen()
    history = train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=2,
                         callbacks=[seen], verbose=False)  # fmt: skip
    assert seen.epochs == [2]  # the state before the damaged one: after epoch 1
    assert list(history["epoch"]) == [1, 2] and not run.interrupted  # epoch 2 logged once
    assert "training state is damaged" in capsys.readouterr().out
    kept = aside_files(run.folder, f"backup.{config.DAMAGED_TAG}-*/training_metadata.json")
    assert len(kept) == 1 and len(kept[0].read_text()) == 5


@pytest.mark.parametrize("checksums", [True, False])  # False: a backup written before checksums (Keras' own files)
def test_damaged_backup_weights_fall_back_without_logging_an_epoch_twice(batch, stopped_after_two, tmp_path, checksums):
    vocabulary = batch[2]
    run = copy_of(stopped_after_two, tmp_path)
    if not checksums:
        for name in ("training_metadata.json", "training_metadata.json.bkp"):
            saved = json.loads((run.backup / name).read_text())
            (run.backup / name).write_text(json.dumps({"epoch": saved["epoch"], "batch": saved["batch"]}))
    weights = run.backup / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    history = train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=2, verbose=False)
    assert list(history["epoch"]) == [1, 2]  # Keras' own fallback resumed after epoch 1 and logged epoch 2 twice
    assert list(pd.read_csv(run.history)["epoch"]) == [0, 1]


def test_a_backup_damaged_beyond_repair_is_moved_aside_and_the_run_starts_over(batch, stopped_after_two, tmp_path, capsys):
    vocabulary = batch[2]
    run = copy_of(stopped_after_two, tmp_path)
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        (run.backup / name).write_text("{")
    seen = EpochsSeen()
    history = train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=1,
                         callbacks=[seen], verbose=False)  # fmt: skip
    assert seen.epochs == [1] and list(history["epoch"]) == [1] and not run.interrupted
    out = capsys.readouterr().out
    assert "no whole training state" in out and "the run starts over" in out and "moved to" in out
    earlier = [path for path in tmp_path.iterdir() if path.name.startswith("run.")]
    assert len(earlier) == 1 and (earlier[0] / "backup" / "training_metadata.json").read_text() == "{"  # kept
    assert list(pd.read_csv(earlier[0] / "history.csv")["epoch"]) == [0, 1]


def test_a_rerun_keeps_only_the_last_earlier_run_and_says_what_it_removed(batch, tmp_path, capsys):
    images, labels, vocabulary = batch
    run = RunFolder(tmp_path / "run")
    for stamp in ("20260101-000000", "20260102-000000"):  # two reruns ago, and one
        (tmp_path / f"run.{stamp}").mkdir()
        (tmp_path / f"run.{stamp}" / "model.keras").write_bytes(b"older")
    kept_anyway = [tmp_path / "run.mine", tmp_path / "run.damaged-20260101-000000"]
    for path in kept_anyway:
        path.mkdir()
    train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=1, verbose=False)
    last = run.model.read_bytes()
    train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, run, epochs=1, verbose=False)
    out = capsys.readouterr().out
    earlier = sorted(path.name for path in tmp_path.iterdir() if re.fullmatch(r"run\.\d{8}-\d{6}", path.name))
    assert len(earlier) == 1 and (tmp_path / earlier[0] / "model.keras").read_bytes() == last  # the last run, whole
    assert "run.20260101-000000" in out and "run.20260102-000000" in out and "Removed the older run" in out
    assert all(path.is_dir() for path in kept_anyway)  # only folders named <run>.<time> are ever removed


def test_the_text_progress_bar_counts_every_batch_on_stdout(batch, tmp_path, capfd):
    images, labels, vocabulary = batch
    progress = BatchProgress(widget=False)
    progress.TEXT_SECONDS = 0.0  # draw every update, so the test sees them
    train_crnn(small_model(vocabulary), datasets(batch, size=4), datasets(batch), vocabulary, RunFolder(tmp_path / "r"),
               epochs=2, callbacks=[progress], verbose=False, progress=False)  # fmt: skip
    out, err = capfd.readouterr()
    batches = -(-len(images) // 4)
    assert progress.steps == batches  # learned in epoch 1, the total of epoch 2's bar
    assert f"{batches}/{batches}" in out and "epoch 2" in out
    assert "batch" in out and "batch" not in err  # never on stderr


def test_a_headless_run_keeps_no_progress_bar_in_its_outputs(batch, tmp_path, capfd, monkeypatch):
    # make run executes the chapters headless and commits their outputs: a finished bar there is noise.
    for name in ("JPY_SESSION_NAME", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)
    images, labels, vocabulary = batch
    train_crnn(small_model(vocabulary), datasets(batch), datasets(batch), vocabulary, RunFolder(tmp_path / "r"), epochs=1)
    out, err = capfd.readouterr()
    assert "epoch 1/1" in out  # the epoch's line is printed ...
    assert "batch/s" not in out and "batch/s" not in err  # ... and no bar
