"""Accuracy benchmark: chapter 04's default configuration, trained for a fixed wall-clock budget.

    python bench/accuracy.py [--minutes 15 | --epochs N] [--words 10000] [--seed 42] [--precision auto] [--keras-kernels]

Generates a fresh mini-IAM (into a temporary folder), trains the chapter's regularised model
(``config.PRESET_CPU`` on a CPU, augmentation, dropout, AdamW, plateau schedule, early stopping
on validation CER) for ``--minutes`` of training, and prints the CER and WER on the validation
split (writers seen in training? no: held-out fonts) and on the test split (other held-out fonts)
every minute and at the end. ``--epochs N`` trains N epochs instead of a budget (early stopping ends sooner
only after 8 epochs without progress: ``config.EARLY_STOPPING_PATIENCE``): the accuracy
per epoch, which a faster step must not change (compare ``--keras-kernels``, Keras' own kernels, with the
default fast ones at the same seeds). The best model is saved to artifacts/bench/model.keras (with
vocabulary.txt and history.csv beside it; an earlier one is moved aside, never overwritten).

Prints a table, then one JSON line with: minutes, epochs, val_cer, val_wer, test_cer, test_wer,
test_word_accuracy, test_cer_beam, test_cer_lexicon, train_img_s, words, preset, parameters, precision,
seed, kernels, per_epoch (the validation CER after each epoch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=None, help="training budget in minutes (default 15)")
    budget.add_argument("--epochs", type=int, default=None, help="train this many epochs, with no time budget")
    parser.add_argument("--words", type=int, default=None, help="mini-IAM size (default: the chapter's, config.SYNTHETIC_WORDS)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "artifacts" / "bench", help="folder of the saved model")
    parser.add_argument("--precision", default=None,
                        help="Keras dtype policy: auto, float32, mixed_bfloat16 or mixed_float16 (default: config.MIXED_PRECISION)")
    parser.add_argument("--keras-kernels", action="store_true",
                        help="train on Keras' own kernels (config.FAST_CPU_KERNELS = False): the code path before the fast ones")
    args = parser.parse_args()
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: train at least 1 epoch")
    if args.epochs is None and args.minutes is None:
        args.minutes = 15.0

    work = Path(tempfile.mkdtemp(prefix="htr-accuracy-"))
    os.environ["HTR_DATA_DIR"] = str(work / "mini-iam")
    os.environ["HTR_ARTIFACTS_DIR"] = str(work / "artifacts")
    os.environ["HTR_SEED"] = str(args.seed)

    from utils.setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from utils import config
    from utils.dataset import load_index
    from utils.decoding import Lexicon
    from utils.metrics import evaluate_texts
    from utils.model import build_crnn
    from utils.pipeline import make_datasets, make_dataset
    from utils.synthetic import generate_mini_iam
    from utils.devices import default_preset, jit_compile, precision_policy, use_precision
    from utils.training import RunFolder, compile_crnn, read_dataset, train_crnn

    words = args.words or config.SYNTHETIC_WORDS
    config.FAST_CPU_KERNELS = config.FAST_CPU_KERNELS and not args.keras_kernels
    kernels = "keras" if args.keras_kernels else "fast"
    keras.utils.set_random_seed(args.seed)
    started = time.perf_counter()
    generate_mini_iam(Path(os.environ["HTR_DATA_DIR"]), words=words, seed=args.seed)
    frame = load_index()
    data = make_datasets(frame, batch_size=config.TRAIN_BATCH_SIZE, eval_batch_size=config.EVAL_BATCH_SIZE, verbose=False)
    print(f"mini-IAM of {words:,} words generated in {time.perf_counter() - started:.0f} s:")
    print(data.summary())
    train_words = data.words["train"]
    sample = train_words.sample(min(config.TRAIN_CER_WORDS, len(train_words)), random_state=args.seed)
    train_sample = make_dataset(sample, data.vocabulary, training=False, batch_size=config.EVAL_BATCH_SIZE, name="train_sample")

    preset = default_preset()
    precision = use_precision(precision_policy(setting=args.precision))
    model = build_crnn(preset, len(data.vocabulary), dropout=config.DROPOUT, batch_norm=config.BATCH_NORM)
    compile_crnn(model, jit_compile=jit_compile())
    print(f"model: {preset} preset, batch norm {config.BATCH_NORM!r}, {model.count_params():,} parameters, batches of "
          f"{config.TRAIN_BATCH_SIZE}, {precision}, {kernels} kernels; "
          + (f"{args.epochs} epochs" if args.epochs else f"budget {args.minutes:g} min of training"))  # fmt: skip

    class EveryMinute(keras.callbacks.Callback):
        """CER/WER on validation and test after each minute of training, and the pure training speed.

        Only batch-end hooks: a callback with ``on_train_batch_begin`` makes Keras wait before every
        step, which halved the training speed here. The speed counts the time between batch ends
        within an epoch, so validation and these reports are not in it.
        """

        def __init__(self):
            super().__init__()
            self.rows, self.next_minute, self.step_seconds, self.images = [], 1, 0.0, 0
            self._started = self._last = 0.0

        def on_train_begin(self, logs=None):
            self._started = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._last = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            self.step_seconds += now - self._last
            self.images += config.TRAIN_BATCH_SIZE
            self._last = now
            if now - self._started >= 60 * self.next_minute:
                self.next_minute += 1
                self.report()
                self._last = time.perf_counter()

        @property
        def minutes(self) -> float:
            return (time.perf_counter() - self._started) / 60

        def report(self, final=False):
            val = read_dataset(self.model, data["validation"], data.vocabulary)
            test = read_dataset(self.model, data["test"], data.vocabulary)
            row = {"minute": self.minutes, "val_cer": val.cer, "val_wer": val.wer,
                   "test_cer": test.cer, "test_wer": test.wer, "final": final}  # fmt: skip
            self.rows.append(row)
            label = "best" if final else f"{row['minute']:.1f}"
            print(f"  [{label:>5} min] val CER {val.cer:6.2%}  WER {val.wer:6.2%} | test CER {test.cer:6.2%}  WER {test.wer:6.2%}",
                  flush=True)  # fmt: skip

    clock = EveryMinute()
    run = RunFolder(args.out)
    history = train_crnn(model, data["train"], data["validation"], data.vocabulary, run, epochs=args.epochs or 1000,
                         train_sample=train_sample, minutes=args.minutes, callbacks=[clock])  # fmt: skip
    minutes = clock.minutes  # wall clock of training: steps, validation each epoch and the reports above
    clock.report(final=True)

    val = read_dataset(model, data["validation"], data.vocabulary)
    test = read_dataset(model, data["test"], data.vocabulary)
    beam = read_dataset(model, data["test"], data.vocabulary, beam_width=config.BEAM_WIDTH)
    lexicon = Lexicon(train_words["text"].value_counts().index)
    test_scores = evaluate_texts(test.references, test.predictions)
    beam_scores = evaluate_texts(beam.references, beam.predictions)
    lexicon_scores = evaluate_texts(beam.references, lexicon.correct_all(beam.predictions))
    val_scores = evaluate_texts(val.references, val.predictions)
    train_img_s = clock.images / clock.step_seconds

    print()
    print(f"Accuracy benchmark: {preset} preset ({precision}), mini-IAM of {words:,} words (seed {args.seed}), "
          f"{minutes:.1f} min of training, {len(history)} epochs, {train_img_s:.0f} training images/s on {kernels} kernels")  # fmt: skip
    print("validation CER after each epoch: " + ", ".join(f"{cer:.2%}" for cer in history["val_cer"]))
    print(f"best epoch {int(history.loc[history['val_cer'].idxmin(), 'epoch'])} by validation CER; model: {run.model}")
    print()
    print(f"{'split (writers never seen in training)':<42} {'words':>6} {'CER':>7} {'WER':>7} {'word acc':>9} {'ignoring case':>14}")
    for name, reading, scores in (
        ("validation, greedy", val, val_scores),
        ("test, greedy", test, test_scores),
        (f"test, beam search ({config.BEAM_WIDTH})", beam, beam_scores),
        ("test, beam + training-words lexicon", beam, lexicon_scores),
    ):
        print(f"{name:<42} {len(reading.references):>6} {scores['cer']:>7.2%} {scores['wer']:>7.2%} "
              f"{scores['word_accuracy']:>9.2%} {scores['word_accuracy_nocase']:>14.2%}")  # fmt: skip
    result = {
        "minutes": round(minutes, 2),
        "epochs": int(len(history)),
        "val_cer": round(val_scores["cer"], 4),
        "val_wer": round(val_scores["wer"], 4),
        "test_cer": round(test_scores["cer"], 4),
        "test_wer": round(test_scores["wer"], 4),
        "test_word_accuracy": round(test_scores["word_accuracy"], 4),
        "test_cer_beam": round(beam_scores["cer"], 4),
        "test_cer_lexicon": round(lexicon_scores["cer"], 4),
        "train_img_s": round(train_img_s, 1),
        "words": words,
        "preset": preset,
        "precision": precision,
        "parameters": model.count_params(),
        "seed": args.seed,
        "kernels": kernels,
        "per_epoch": [round(float(cer), 4) for cer in history["val_cer"]],
        "per_minute": [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in clock.rows],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
