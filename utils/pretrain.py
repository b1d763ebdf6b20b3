"""Train the model that the series ships in ``models/``: fonts first, then a little real handwriting.

    python -m utils.pretrain [--minutes 75] [--finetune-minutes 8] [--words 60000] [--seed 42] [--overwrite]

Stage 1 generates the embedded default at ``--words`` words (``data/``, cached), trains chapter 04's
regularised CRNN on it for ``--minutes`` and saves ``models/synthetic-only.keras``: what fonts alone
teach. Stage 2 fine-tunes that model on the DHSD fine-tuning writers (``dhsd/``), stopping on the
DHSD validation writers, and saves ``models/crnn.keras``. ``models/vocabulary.txt`` serves both, and
``models/recipe.json`` records the settings, the data, the times and the error rates.

Each stage keeps its run in ``artifacts/pretrain/<stage>/``, and the settings it was made with beside it
(``<stage>.settings.json``): an interrupted command, started again with the same arguments, resumes where it
stopped, and a finished stage is not trained again. A stage made with other settings is refused, naming them,
never reused. Every argument is checked before anything is trained: budgets are numbers above 0, and ``--out``
must be a folder that can be written. Existing files in ``models/`` are never replaced without ``--overwrite``
(which moves them aside).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from utils.setup import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402

from utils import cli, config, dhsd  # noqa: E402
from utils.dataset import load_index  # noqa: E402
from utils.devices import default_preset  # noqa: E402
from utils.encoding import Vocabulary  # noqa: E402
from utils.model import load_model, save_model  # noqa: E402
from utils.pipeline import make_datasets  # noqa: E402
from utils.synthetic import font_paths, generate_mini_iam  # noqa: E402
from utils.training import RunFolder, fine_tune, read_dataset, sha256, train_regularised, with_rehearsal  # noqa: E402

STAGES = ("synthetic-only", "fine-tuned")
RECIPE_FILE = "recipe.json"
SETTINGS_SUFFIX = ".settings.json"  # beside each stage's run folder: what it was made with


def shipped_vocabulary() -> Vocabulary:
    """Every character of IAM: the shipped model can then be fine-tuned on IAM or any subset of it."""
    return Vocabulary(config.IAM_CHARSET)


def _finished(run: RunFolder) -> bool:
    return run.model.is_file() and run.history.is_file() and not run.interrupted


def _settings_file(run: RunFolder) -> Path:
    return run.folder.with_name(run.folder.name + SETTINGS_SUFFIX)


def check_stage(run: RunFolder, settings: dict) -> None:
    """Refuse a stage folder that holds a run (finished or interrupted) made with other settings than ``settings``.

    A folder without training in it is free: ``settings`` are recorded beside it, for the next command to check.
    Only the keys of ``settings`` are compared, so the arguments can be checked before a stage's model exists.
    """
    record = _settings_file(run)
    if not (run.folder.is_dir() and any(run.folder.iterdir())):
        record.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
        return
    try:
        made_with = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        made_with = None
    if not isinstance(made_with, dict):
        raise ValueError(f"{config.display_path(run.folder)} holds a run whose settings are not recorded "
                         f"({config.display_path(record)} is missing or unreadable): move the folder away to train afresh")  # fmt: skip
    differ = [f"{key} {made_with.get(key)!r} (now {value!r})" for key, value in settings.items() if made_with.get(key) != value]
    if differ:
        raise ValueError(f"{config.display_path(run.folder)} was made with {', '.join(differ)}: pass the same arguments "
                         "to reuse or resume it, or move the folder away to train afresh")  # fmt: skip


def _check_out(out: Path) -> None:
    """``--out`` must be a folder, or a path under one, that this user can write: checked before any training."""
    existing = next(path for path in (out, *out.parents) if path.exists() or path == Path(path.anchor or "."))
    if not existing.is_dir():
        where = "is" if existing == out else f"is under {config.display_path(existing)}, which is"
        raise ValueError(f"--out {config.display_path(out)} {where} a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {config.display_path(out)}: {config.display_path(existing)} cannot be written")


def pretrain(words: int, seed: int, minutes: float, finetune_minutes: float, out: Path, overwrite: bool) -> dict:
    """Both stages, resumable; returns the recipe written to ``out/recipe.json``."""
    cli.check_positive(minutes, "--minutes")
    cli.check_positive(finetune_minutes, "--finetune-minutes")
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise ValueError(f"--words must be a whole number above 0, not {words!r}")
    _check_out(out)
    targets = [out / config.SHIPPED_SYNTHETIC_MODEL.name, out / config.SHIPPED_MODEL.name, out / config.VOCABULARY_FILE,
               out / RECIPE_FILE]
    existing = [path for path in targets if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(config.display_path(p) for p in existing)} exist: pass --overwrite to "
                              "move them aside and train new ones")  # fmt: skip
    work = config.artifacts_dir() / "pretrain"
    runs = {stage: RunFolder(work / stage) for stage in STAGES}
    keras.utils.set_random_seed(seed)
    vocabulary = shipped_vocabulary()
    recipe: dict = {"seed": seed, "preset": default_preset(), "vocabulary": "".join(vocabulary.characters),
                    "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
                    "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}  # fmt: skip
    synthetic_settings = {"words": words, "seed": seed, "minutes": minutes, "preset": recipe["preset"],
                          "vocabulary": recipe["vocabulary"]}  # fmt: skip
    tuned_settings = {**synthetic_settings, "finetune_minutes": finetune_minutes, "learning_rate": config.FINETUNE_LEARNING_RATE,
                      "freeze_convolutions": config.FINETUNE_FREEZE_CONVOLUTIONS, "rehearsal": config.FINETUNE_REHEARSAL}  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    check_stage(runs["synthetic-only"], synthetic_settings)  # both, before anything is generated or trained
    check_stage(runs["fine-tuned"], tuned_settings)

    # Stage 1: the embedded default, at a size that fills the budget with new words.
    started = time.perf_counter()
    data_dir = config.DATA_DIR / f"pretrain-mini-iam-{words}-seed{seed}"
    generate_mini_iam(data_dir, words=words, seed=seed)
    os.environ["HTR_DATA_DIR"] = str(data_dir)  # load_index and the pipeline's cache follow these
    os.environ["HTR_ARTIFACTS_DIR"] = str(work)
    frame = load_index()
    data = make_datasets(frame, vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE,
                         eval_batch_size=config.EVAL_BATCH_SIZE)  # fmt: skip
    recipe["data"] = {"synthetic_words": words, "fonts": len(font_paths()),
                      "generate_seconds": round(time.perf_counter() - started, 1),  # generating and indexing
                      **{f"synthetic_{split}": len(data.words[split]) for split in config.SPLITS}}  # fmt: skip
    synthetic_run = runs["synthetic-only"]
    if _finished(synthetic_run):
        print(f"Stage 1 already done: {config.display_path(synthetic_run.model)}")
        model = load_model(synthetic_run.model)
    else:
        print(f"Stage 1: {recipe['preset']} CRNN, {minutes:g} min on {words:,} synthetic words")
        model, _ = train_regularised(data, synthetic_run, minutes, seed=seed, preset=recipe["preset"])
    history = synthetic_run.read_history()
    font_test = read_dataset(model, data["test"], vocabulary)
    recipe["synthetic_only"] = {"minutes_budget": minutes, "train_minutes": round(history["seconds"].sum() / 60, 1),
                                "epochs": len(history), "font_val_cer": round(float(history["val_cer"].min()), 4),
                                "font_test_cer": round(font_test.cer, 4)}  # fmt: skip

    # Stage 2: the DHSD fine-tuning writers; the validation writers decide when to stop.
    real = make_datasets(dhsd.load_dhsd(), vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE,
                         eval_batch_size=config.EVAL_BATCH_SIZE, splits=config.DHSD_SPLITS, training_split="finetune")  # fmt: skip
    before = {split: read_dataset(model, real[split], vocabulary).cer for split in ("validation", "test")}
    tuned_run = runs["fine-tuned"]
    check_stage(tuned_run, {**tuned_settings, "synthetic_model_sha256": sha256(synthetic_run.model)})  # built on this one
    if _finished(tuned_run):
        print(f"Stage 2 already done: {config.display_path(tuned_run.model)}")
        tuned = load_model(tuned_run.model)
    else:
        tuned = load_model(synthetic_run.model)
        print(f"Stage 2: fine-tuning on the DHSD fine-tuning writers for {finetune_minutes:g} min")
        train = with_rehearsal(real["finetune"], data["train"])  # config.FINETUNE_REHEARSAL of the batches are synthetic
        fine_tune(tuned, train, real["validation"], vocabulary, tuned_run, minutes=finetune_minutes)
    tuned_history = tuned_run.read_history()
    after = {split: read_dataset(tuned, real[split], vocabulary).cer for split in ("validation", "test")}
    recipe["fine_tuned"] = {"minutes_budget": finetune_minutes, "learning_rate": config.FINETUNE_LEARNING_RATE,
                            "freeze_convolutions": config.FINETUNE_FREEZE_CONVOLUTIONS, "rehearsal": config.FINETUNE_REHEARSAL,
                            "train_minutes": round(tuned_history["seconds"].sum() / 60, 1), "epochs": len(tuned_history),
                            "font_test_cer": round(read_dataset(tuned, data["test"], vocabulary).cer, 4)}  # fmt: skip
    recipe["dhsd_cer"] = {"synthetic_only": {k: round(v, 4) for k, v in before.items()},
                          "fine_tuned": {k: round(v, 4) for k, v in after.items()}}  # fmt: skip
    recipe["total_minutes"] = round((time.perf_counter() - started) / 60, 1)

    # Into models/: earlier files moved aside (only with --overwrite, checked above).
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for path in existing:
        path.rename(path.with_name(f"{path.stem}.{stamp}{path.suffix}"))
    for source, target in ((synthetic_run.model, config.SHIPPED_SYNTHETIC_MODEL.name), (tuned_run.model, config.SHIPPED_MODEL.name)):
        # Without the optimizer's state (a third of the size, all a reader needs); atomic, and never over a file.
        save_model(load_model(source), out / target, vocabulary=vocabulary)
    vocabulary.save(out / config.VOCABULARY_FILE)
    (out / RECIPE_FILE).write_text(json.dumps(recipe, indent=1) + "\n", encoding="utf-8")
    return recipe


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.pretrain", description=__doc__.split("\n")[0])
    number, whole = cli.argument(cli.positive_number), cli.argument(cli.whole_number)
    parser.add_argument("--minutes", type=number, default=75.0, help="training budget of stage 1 (default 75)")
    parser.add_argument("--finetune-minutes", type=number, default=config.FINETUNE_MINUTES, help="budget of stage 2")
    parser.add_argument("--words", type=whole, default=60_000, help="synthetic words to generate (default 60,000)")
    parser.add_argument("--seed", type=whole, default=42)
    parser.add_argument("--out", type=Path, default=config.SHIPPED_MODELS_DIR, help="where the models go (default models/)")
    parser.add_argument("--overwrite", action="store_true", help="move existing models aside and write new ones")
    args = parser.parse_args(argv)
    try:
        recipe = pretrain(args.words, args.seed, args.minutes, args.finetune_minutes, args.out, args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(recipe, indent=1))
    return 0


if __name__ == "__main__":
    from utils import cli

    cli.run(main)
