"""Fine-tuning benchmark: which learning rate, and frozen convolutions or not, when a synthetic model meets real writers.

    python bench/finetune.py [--model models/synthetic-only.keras] [--minutes 4] [--variants 3e-4:all,1e-3:all,...]

Each variant starts from the same synthetic model, fine-tunes it on the DHSD fine-tuning writers
for ``--minutes`` (``utils.training.fine_tune``: augmentation on, early stopping on the DHSD
validation writers, best epoch kept) and is read on the validation and test writers through
``utils.predict``. Choose on validation; the test column is there to report, not to choose.
A variant is ``RATE:all`` (every layer trains) or ``RATE:frozen`` (convolutions and their batch
normalisation kept; only the BiLSTMs and the output layer train); ``+rehearsal`` after it draws half
of the batches from the synthetic words of a freshly generated embedded default (``--words``), so the
model keeps what it learned from fonts (``utils.training.with_rehearsal``). The font test CER of each
variant (on that embedded default's held-out fonts) shows what fine-tuning costs the fonts.

Prints a table, then one JSON line with, per variant: rate, frozen, rehearsal, epochs, val_cer, test_cer, font_test_cer;
and before (the model as given) and best (the variant with the lowest validation CER).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a synthetic .keras model (default: models/synthetic-only.keras)")
    parser.add_argument("--minutes", type=float, default=4.0, help="fine-tuning budget of each variant (default 4)")
    parser.add_argument("--variants", default="3e-4:all,1e-3:all,1e-4:all,3e-4:frozen")
    parser.add_argument("--words", type=int, default=None, help="embedded-default size (default config.SYNTHETIC_WORDS)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="htr-finetune-"))
    os.environ["HTR_ARTIFACTS_DIR"] = str(work)
    os.environ["HTR_DATA_DIR"] = str(work / "mini-iam")
    os.environ["HTR_SEED"] = str(args.seed)

    from utils.setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from utils import config, dhsd
    from utils.dataset import load_index
    from utils.metrics import evaluate_texts
    from utils.model import load_model
    from utils.pipeline import make_datasets
    from utils.predict import load_reader, predict_images
    from utils.synthetic import generate_mini_iam
    from utils.training import RunFolder, fine_tune, read_dataset, with_rehearsal

    model_path = args.model or config.SHIPPED_SYNTHETIC_MODEL
    model, vocabulary = load_reader(model_path)
    data = make_datasets(dhsd.load_dhsd(), vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE,
                         eval_batch_size=config.EVAL_BATCH_SIZE, splits=config.DHSD_SPLITS, training_split="finetune")  # fmt: skip

    generate_mini_iam(Path(os.environ["HTR_DATA_DIR"]), words=args.words or config.SYNTHETIC_WORDS, seed=args.seed)
    fonts = make_datasets(load_index(), vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE,
                          eval_batch_size=config.EVAL_BATCH_SIZE, verbose=False)  # fmt: skip

    def cer(reader, split: str) -> float:
        words = data.words[split]
        texts = [p.text for p in predict_images(reader, list(words["path"]), vocabulary)]
        return evaluate_texts(list(words["text"]), texts)["cer"]

    before = {"val_cer": round(cer(model, "validation"), 4), "test_cer": round(cer(model, "test"), 4),
              "font_test_cer": round(read_dataset(model, fonts["test"], vocabulary).cer, 4)}
    rows = []
    for variant in args.variants.split(","):
        setting, _, rehearsal = variant.partition("+")
        rate, layers = setting.split(":")
        keras.utils.set_random_seed(args.seed)
        tuned = load_model(model_path)
        train = with_rehearsal(data["finetune"], fonts["train"], 0.5 if rehearsal else 0.0)
        history = fine_tune(tuned, train, data["validation"], vocabulary, RunFolder(work / variant.replace(":", "-")),
                            minutes=args.minutes, learning_rate=float(rate), freeze_convolutions=layers == "frozen",
                            verbose=False)  # fmt: skip
        rows.append({"variant": variant, "rate": float(rate), "frozen": layers == "frozen", "rehearsal": bool(rehearsal),
                     "epochs": len(history), "val_cer": round(cer(tuned, "validation"), 4), "test_cer": round(cer(tuned, "test"), 4),
                     "font_test_cer": round(read_dataset(tuned, fonts["test"], vocabulary).cer, 4)})  # fmt: skip
        print(f"  {variant}: {rows[-1]}", flush=True)

    print(f"\nFine-tuning {config.display_path(model_path)} on {len(data.words['finetune'])} words by "
          f"{data.words['finetune']['writer'].nunique()} DHSD writers, {args.minutes:g} min each")
    print(f"{'variant':<22} {'epochs':>6} {'val CER':>8} {'test CER':>9} {'font test CER':>14}")
    print(f"{'before':<22} {'':>6} {before['val_cer']:>8.1%} {before['test_cer']:>9.1%} {before['font_test_cer']:>14.1%}")
    for row in rows:
        print(f"{row['variant']:<22} {row['epochs']:>6} {row['val_cer']:>8.1%} {row['test_cer']:>9.1%} {row['font_test_cer']:>14.1%}")
    best = min(rows, key=lambda row: row["val_cer"])
    print(f"best on the validation writers: {best['variant']}")
    print(json.dumps({"model": config.display_path(model_path), "minutes": args.minutes, "before": before,
                      "variants": rows, "best": best["variant"]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
