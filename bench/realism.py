"""Realism ablation: does each switch of the embedded default help a model read real handwriting?

    python bench/realism.py [--minutes 15] [--words 10000] [--seed 42] [--without pressure,drift+texture,...]

For each variant it generates the embedded default (``--words`` words, same texts, fonts and
writers) with the realism switches of ``config.SYNTHETIC_REALISM`` set as the variant says, trains
chapter 04's regularised configuration on it for ``--minutes`` (``utils.training.train_regularised``,
the CPU preset) and reads the DHSD *validation* writers through ``utils.predict``'s own
preprocessing (greedy). The test writers are not looked at: the switches are chosen on validation.
Variants: every switch on (the default), every switch off, and each item of ``--without`` off in
turn: a switch, or several joined by ``+`` (default: every switch alone; ``--without ""``: none).
A second run of the default with seed + 1 shows how much two runs of the same recipe differ: a
difference smaller than that is noise, not an effect. A variant needs a budget that takes its model
past CTC's all-blank phase (at 100% CER every variant looks the same): 15 minutes or more on 2 cores.

Prints a table, then one JSON line with: minutes, words, real_words, seed, variants (per variant:
realism, epochs, real_cer, font_val_cer) and noise (the two default runs' real-CER difference).
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
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget of each variant (default 15)")
    parser.add_argument("--words", type=int, default=None, help="embedded-default size (default config.SYNTHETIC_WORDS)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--without", default=None,
                        help="comma-separated switches (or groups joined by +) to turn off in turn (default: each switch)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="htr-realism-"))
    os.environ["HTR_ARTIFACTS_DIR"] = str(work / "artifacts")

    from utils.setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from utils import config, dhsd
    from utils.dataset import load_index
    from utils.metrics import evaluate_texts
    from utils.pipeline import make_datasets, select_words
    from utils.predict import predict_images
    from utils.synthetic import generate_mini_iam
    from utils.training import RunFolder, read_dataset, train_regularised

    default = dict(config.SYNTHETIC_REALISM)
    groups = [[name] for name in default] if args.without is None else [item.split("+") for item in args.without.split(",") if item]
    unknown = {name for group in groups for name in group} - set(default)
    if unknown:
        parser.error(f"unknown switches {sorted(unknown)}: expected some of {', '.join(default)}")
    variants = [("all on", default, args.seed), ("all on, seed + 1", default, args.seed + 1), ("all off", {}, args.seed)]
    variants += [(f"without {'+'.join(group)}", {k: v for k, v in default.items() if k not in group}, args.seed)
                 for group in groups]  # fmt: skip
    words = args.words or config.SYNTHETIC_WORDS
    real = dhsd.load_dhsd()

    rows = []
    for name, realism, seed in variants:
        # Same texts, writers and fonts in every variant (the data seed stays); only the realism and the training seed vary.
        data_dir = work / name.replace(" ", "-").replace(",", "").replace("+", "plus")
        generate_mini_iam(data_dir, words=words, seed=args.seed, realism=realism)
        os.environ["HTR_DATA_DIR"] = str(data_dir)
        data = make_datasets(load_index(), batch_size=config.TRAIN_BATCH_SIZE, eval_batch_size=config.EVAL_BATCH_SIZE,
                             verbose=False)  # fmt: skip
        keras.utils.set_random_seed(seed)
        model, history = train_regularised(data, RunFolder(work / "runs" / data_dir.name), args.minutes, seed=seed,
                                           verbose=False)  # fmt: skip
        validation, _ = select_words(real, "validation", data.vocabulary)
        texts = [p.text for p in predict_images(model, list(validation["path"]), data.vocabulary)]
        rows.append({"variant": name, "realism": realism, "epochs": len(history),
                     "real_cer": round(evaluate_texts(list(validation["text"]), texts)["cer"], 4),
                     "font_val_cer": round(read_dataset(model, data["validation"], data.vocabulary).cer, 4)})  # fmt: skip
        print(f"  {name}: {rows[-1]['epochs']} epochs, DHSD validation CER {rows[-1]['real_cer']:.1%}, "
              f"font validation CER {rows[-1]['font_val_cer']:.1%}", flush=True)

    base = rows[0]["real_cer"]
    noise = abs(rows[1]["real_cer"] - base)
    print(f"\nRealism ablation: chapter 04's configuration, {args.minutes:g} min each on {words:,} synthetic words; "
          f"read on the DHSD validation writers ({len(validation)} words)")
    width = max(len(row["variant"]) for row in rows)
    print(f"{'variant':<{width}} {'epochs':>6} {'real CER':>9} {'vs all on':>10} {'font val CER':>13}")
    for row in rows:
        print(f"{row['variant']:<{width}} {row['epochs']:>6} {row['real_cer']:>9.1%} {row['real_cer'] - base:>+10.1%} "
              f"{row['font_val_cer']:>13.1%}")
    print(f"two runs of the default differ by {noise:.1%}: smaller differences are noise."
          " A positive 'vs all on' means the model reads real writers worse without that switch.")
    print(json.dumps({"minutes": args.minutes, "words": words, "real_words": len(validation), "seed": args.seed,
                      "variants": rows, "noise": round(noise, 4)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
