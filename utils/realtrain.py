"""Train the shipped reader on real hands, in stages: Copiste's and DHSD's training writers together, fonts rehearsed.

    python -m utils.realtrain --copiste data/copiste-r1 --start models/crnn.keras --minutes 40 --stage copiste-r1

A stage starts from a trained model (``--start``), trains on the ``ok`` words of the Copiste training writers (a
mini-IAM made by ``python -m utils.realwords``) and the DHSD fine-tuning writers, with ``--rehearsal`` of the batches
drawn from the fonts (the synthetic mini-IAM the shipped model was pretrained on), for ``--minutes``, and keeps the
epoch that reads the validation writers of both best. Its run lives in ``artifacts/realtrain/<stage>/``: an
interrupted stage, started again with the same arguments, resumes. It ends by measuring the character error rate
of its model and of the start on every split (``figures.json`` in the run folder); ``--keep`` copies its model and
figures into ``models/stages/`` (committed: the next session's stage starts from there), ``--ship`` puts its model in
``models/`` (the one there moved aside) and adds the stage to ``models/recipe.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from utils.setup import import_tensorflow_quietly

import_tensorflow_quietly()

import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from utils import cli, config, dhsd  # noqa: E402
from utils.iam import load_iam, records_to_frame  # noqa: E402
from utils.model import load_model, save_model  # noqa: E402
from utils.pipeline import make_dataset, make_datasets, select_words  # noqa: E402
from utils.pretrain import RECIPE_FILE, check_stage, shipped_vocabulary  # noqa: E402
from utils.synthetic import generate_mini_iam  # noqa: E402
from utils.training import RunFolder, fine_tune, read_dataset, sha256, with_rehearsal  # noqa: E402

FONT_WORDS, FONT_SEED = 100_000, 42  # the synthetic mini-IAM the shipped model was pretrained on (models/recipe.json)
COLUMNS = ["word_id", "path", "text", "gray_level", "status", "split", "image_problem", "writer"]


def iam_frame(folder: Path | str, source: str) -> pd.DataFrame:
    """The words of a mini-IAM (its own splits), absolute paths, with a ``source`` column."""
    dataset = load_iam(folder)
    frame = records_to_frame(dataset)
    frame["path"] = [str(Path(dataset.layout.root).resolve() / path) for path in frame["path"]]
    frame["writer"] = frame["writer_id"].fillna(frame["form_id"])
    return frame[COLUMNS].assign(source=source)


def dhsd_frame() -> pd.DataFrame:
    """DHSD's words with its fine-tuning split called ``train``, with a ``source`` column."""
    frame = dhsd.load_dhsd().copy()
    frame["split"] = frame["split"].replace({"finetune": "train"})
    return frame[COLUMNS].assign(source="dhsd")


def font_frame() -> pd.DataFrame:
    """The synthetic mini-IAM of the shipped model's pretraining (generated into data/ once)."""
    folder = config.DATA_DIR / f"pretrain-mini-iam-{FONT_WORDS}-seed{FONT_SEED}"
    generate_mini_iam(folder, words=FONT_WORDS, seed=FONT_SEED)
    return iam_frame(folder, "fonts")


def measure(model, frames: dict[str, pd.DataFrame], vocabulary) -> dict[str, float]:
    """CER of ``model`` on the usable words of each named frame (``ok``, readable, that CTC can fit), as training
    measures its validation words."""
    figures = {}
    for name, frame in frames.items():
        words, _ = select_words(frame.assign(split=name), name, vocabulary)
        dataset = make_dataset(words, vocabulary, training=False, batch_size=config.EVAL_BATCH_SIZE, name=name)
        figures[name] = round(read_dataset(model, dataset, vocabulary).cer, 4)
    return figures


def train_stage(copiste: Path, start: Path, minutes: float, stage: str, rehearsal: float, dhsd_share: float = 0.0, seed: int = 42) -> dict:
    """One stage (see the module's docstring); returns its figures, also written to the run's ``figures.json``."""
    import keras

    cli.check_positive(minutes, "--minutes")
    if not 0 <= rehearsal < 1 or not 0 <= dhsd_share < 1 or rehearsal + dhsd_share >= 1:
        raise ValueError(f"--rehearsal {rehearsal} and --dhsd-share {dhsd_share}: each at least 0, together below 1")
    keras.utils.set_random_seed(seed)
    vocabulary = shipped_vocabulary()
    run = RunFolder(config.artifacts_dir() / "realtrain" / stage)
    settings = {"copiste": str(Path(copiste).resolve()), "start_sha256": sha256(start), "minutes": minutes,
                "rehearsal": rehearsal, "dhsd_share": dhsd_share, "seed": seed}  # fmt: skip
    run.folder.mkdir(parents=True, exist_ok=True)  # empty: free for these settings
    check_stage(run, settings)
    started = time.perf_counter()
    real = pd.concat([iam_frame(copiste, "copiste"), dhsd_frame()], ignore_index=True)
    fonts = font_frame()
    data = make_datasets(real, vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE, eval_batch_size=config.EVAL_BATCH_SIZE, seed=seed)
    font_data = make_datasets(fonts, vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE, eval_batch_size=config.EVAL_BATCH_SIZE, seed=seed)
    model = load_model(start)
    if not (run.model.is_file() and run.history.is_file() and not run.interrupted):
        if dhsd_share:  # DHSD's few words drawn more often than their share of the real words: Copiste sets the epoch
            by_source = {source: make_datasets(real[real["source"] == source], vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE,
                                               seed=seed, splits=("train",), verbose=False)["train"] for source in ("copiste", "dhsd")}  # fmt: skip
            train = tf.data.Dataset.sample_from_datasets(
                [by_source["copiste"], by_source["dhsd"].repeat(), font_data["train"].repeat()],
                weights=[1 - rehearsal - dhsd_share, dhsd_share, rehearsal], seed=seed, stop_on_empty_dataset=True)
        else:
            train = with_rehearsal(data["train"], font_data["train"], synthetic_share=rehearsal, seed=seed)
        fine_tune(model, train, data["validation"], vocabulary, run, minutes=minutes, learning_rate=config.FINETUNE_LEARNING_RATE)
    trained = load_model(run.model)
    history = run.read_history()
    parts = {f"{source}_{split}": real[(real["source"] == source) & (real["split"] == split)]
             for source in ("copiste", "dhsd") for split in ("validation", "test")}  # fmt: skip
    parts["fonts_test"] = fonts[fonts["split"] == "test"]
    used = data.words["train"]
    figures = {
        "stage": stage, "start": str(start), "copiste": str(copiste), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "minutes_budget": minutes, "train_minutes": round(float(history["seconds"].sum()) / 60, 1), "epochs": len(history),
        "best_epoch": int(history["val_cer"].idxmin()) + 1, "rehearsal": rehearsal, "dhsd_share": dhsd_share, "seed": seed,
        "train_words": {source: int((used["source"] == source).sum()) for source in ("copiste", "dhsd")},
        "train_writers": {source: int(used.loc[used["source"] == source, "writer"].nunique()) for source in ("copiste", "dhsd")},
        "cer": measure(trained, parts, vocabulary), "start_cer": measure(load_model(start), parts, vocabulary),
        "total_minutes": round((time.perf_counter() - started) / 60, 1),
    }  # fmt: skip
    (run.folder / "figures.json").write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return figures


def keep_stage(stage: str) -> Path:
    """Copy a finished stage's model (without the optimizer's state) and its figures into ``models/stages/``, where the
    next session's stage can start from it (artifacts/ is not committed); never over an existing file."""
    run = RunFolder(config.artifacts_dir() / "realtrain" / stage)
    target = config.SHIPPED_MODELS_DIR / "stages" / f"{stage}.keras"
    figures = target.with_suffix(".json")
    if target.exists() or figures.exists():
        raise FileExistsError(f"{config.display_path(target)} exists: the stage was kept already (give another --stage)")
    target.parent.mkdir(parents=True, exist_ok=True)
    save_model(load_model(run.model), target, vocabulary=shipped_vocabulary())
    figures.write_text((run.folder / "figures.json").read_text(encoding="utf-8"), encoding="utf-8")
    return target


def ship(stage: str) -> Path:
    """Put a finished stage's model into ``models/`` (the model there moved aside, never lost) and add the stage
    to ``models/recipe.json``."""
    run = RunFolder(config.artifacts_dir() / "realtrain" / stage)
    figures = json.loads((run.folder / "figures.json").read_text(encoding="utf-8"))
    target = config.SHIPPED_MODEL
    if target.exists():
        target.rename(target.with_name(f"{target.stem}.{datetime.now().strftime('%Y%m%d-%H%M%S')}{target.suffix}"))
    save_model(load_model(run.model), target, vocabulary=shipped_vocabulary())
    recipe_path = config.SHIPPED_MODELS_DIR / RECIPE_FILE
    recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
    recipe.setdefault("real_stages", []).append(figures)
    recipe_path.write_text(json.dumps(recipe, indent=1) + "\n", encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.realtrain", description=__doc__.split("\n")[0])
    number = cli.argument(cli.positive_number)
    parser.add_argument("--copiste", type=Path, required=True, help="the Copiste mini-IAM (python -m utils.realwords)")
    parser.add_argument("--start", type=Path, default=config.SHIPPED_MODEL, help="the model the stage starts from")
    parser.add_argument("--minutes", type=number, default=40.0, help="training budget (default 40)")
    parser.add_argument("--stage", required=True, help="the stage's name: its run folder in artifacts/realtrain/")
    parser.add_argument("--rehearsal", type=float, default=0.25, help="share of batches from the fonts (default 0.25)")
    parser.add_argument("--dhsd-share", type=float, default=0.0, help="share of batches from DHSD (default 0: as many as its words)")
    parser.add_argument("--keep", action="store_true", help="then keep the stage's model in models/stages/ (committed)")
    parser.add_argument("--ship", action="store_true", help="then put the stage's model in models/ and the recipe")
    args = parser.parse_args(argv)
    figures = train_stage(args.copiste, args.start, args.minutes, args.stage, args.rehearsal, args.dhsd_share)
    print(json.dumps(figures, indent=1))
    if args.keep:
        print(f"kept: {config.display_path(keep_stage(args.stage))}")
    if args.ship:
        print(f"shipped: {config.display_path(ship(args.stage))}")
    return 0


if __name__ == "__main__":
    cli.run(main)
