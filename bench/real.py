"""Real-handwriting benchmark: how well a model reads the DHSD and Copiste test writers (people it never saw).

    python bench/real.py [--model models/crnn.keras] [--copiste copiste/]
    python bench/real.py --train-minutes 15 [--finetune-minutes 8] [--words 10000] [--seed 42]

The first form reads every DHSD test-writer word (``dhsd/``, split by writer) with ``--model``
(default: the shipped model) through ``utils.predict``'s own preprocessing, greedy decoding, and
prints CER, WER and word accuracy per writer and overall; the same for the ``ok`` words of the Copiste
test writers of the real mini-IAM in ``--copiste`` (default: the one shipped in ``copiste/``; every
test writer's words are there); then the CER on the font test split of a freshly generated embedded
default (``--words``, held-out fonts). Words that the model cannot
write (a space, as in "Bad Soden") or that need more than 31 CTC steps are left out, with counts.

The second form first trains chapter 04's configuration on the embedded default for
``--train-minutes`` (its synthetic-only model: ``real_*`` figures), then fine-tunes it on the DHSD
fine-tuning writers for ``--finetune-minutes``, stopping on the DHSD validation writers
(``finetuned_cer``). Models go to a temporary folder; nothing in ``models/`` is touched.

Prints the tables, then one JSON line with: real_cer, real_wer, real_word_acc (DHSD), finetuned_cer
(null without --train-minutes), copiste_cer, copiste_wer, copiste_word_acc, copiste_words,
copiste_per_writer, font_test_cer, train_minutes, words, left_out, per_writer, model.
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
    parser.add_argument("--model", type=Path, default=None, help="a .keras or .tflite model (default: models/crnn.keras)")
    parser.add_argument("--train-minutes", type=float, default=None, help="train chapter 04's model this long first")
    parser.add_argument("--finetune-minutes", type=float, default=None, help="fine-tuning budget (default config.FINETUNE_MINUTES)")
    parser.add_argument("--words", type=int, default=None, help="embedded-default size (default config.SYNTHETIC_WORDS)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--copiste", type=Path, default=None, help="a Copiste mini-IAM (default: copiste/, shipped)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="htr-real-"))
    os.environ["HTR_DATA_DIR"] = str(work / "mini-iam")
    os.environ["HTR_ARTIFACTS_DIR"] = str(work / "artifacts")
    os.environ["HTR_SEED"] = str(args.seed)

    from utils.setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from utils import config, dhsd
    from utils.dataset import load_index
    from utils.metrics import evaluate_texts
    from utils.pipeline import DROP_TOO_LONG, DROP_UNKNOWN, make_datasets, select_words
    from utils.predict import load_reader, predict_images
    from utils.synthetic import generate_mini_iam
    from utils.training import RunFolder, fine_tune, read_dataset, train_regularised

    words = args.words or config.SYNTHETIC_WORDS
    keras.utils.set_random_seed(args.seed)
    started = time.perf_counter()
    generate_mini_iam(Path(os.environ["HTR_DATA_DIR"]), words=words, seed=args.seed)
    frame = load_index()
    print(f"embedded default: {words:,} words, generated and indexed in {time.perf_counter() - started:.0f} s")

    train_minutes = None
    if args.train_minutes:
        data = make_datasets(frame, batch_size=config.TRAIN_BATCH_SIZE, eval_batch_size=config.EVAL_BATCH_SIZE, verbose=False)
        clock = time.perf_counter()
        model, history = train_regularised(data, RunFolder(work / "synthetic-only"), args.train_minutes, seed=args.seed)
        train_minutes = (time.perf_counter() - clock) / 60
        vocabulary = data.vocabulary
        model_name = f"chapter 04's configuration, {train_minutes:.1f} min on the embedded default"
    else:
        model_path = args.model or config.SHIPPED_MODEL
        model, vocabulary = load_reader(model_path)
        model_name = config.display_path(model_path)
        data = make_datasets(frame, vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE,
                             eval_batch_size=config.EVAL_BATCH_SIZE, verbose=False)  # fmt: skip

    # The DHSD test writers, as published (256 x 64 RGBA files), read through utils.predict.
    real = dhsd.load_dhsd()
    test_words, report = select_words(real, "test", vocabulary)
    unknown = ", ".join("a space" if c == " " else repr(c) for c in sorted(report.unknown))
    left_out = {f"cannot be written ({unknown})" if reason == DROP_UNKNOWN else reason: count
                for reason, count in report.dropped.items()}  # fmt: skip
    if set(report.dropped) - {DROP_UNKNOWN, DROP_TOO_LONG}:
        raise RuntimeError(f"unexpected reasons: {report.dropped}")

    def read_real(reader, test_words=test_words, name="DHSD") -> dict:
        predictions = predict_images(reader, test_words["path"], vocabulary)
        failed = [p for p in predictions if not p.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} {name} images could not be read, e.g. {failed[0].source}: {failed[0].error}")
        texts = [p.text for p in predictions]
        overall = evaluate_texts(list(test_words["text"]), texts)
        per_writer = {}
        for writer, rows in test_words.assign(prediction=texts).groupby("writer", sort=False):
            per_writer[writer] = {"words": len(rows), **evaluate_texts(list(rows["text"]), list(rows["prediction"]))}
        return {"overall": overall, "per_writer": per_writer, "examples": list(zip(test_words["text"][:8], texts[:8]))}

    # The Copiste test writers: the ok words of the real mini-IAM (cut from their lines by utils.realwords).
    copiste_dir = args.copiste or config.COPISTE_DIR
    copiste = None
    if (copiste_dir / "words.txt").is_file():
        from utils.iam import load_iam, records_to_frame

        dataset = load_iam(copiste_dir)
        words = records_to_frame(dataset)
        words = words[(words["split"] == "test") & (words["status"] == "ok") & words["image_problem"].isna()].copy()
        words["path"] = [str(copiste_dir.resolve() / path) for path in words["path"]]
        words["writer"] = words["writer_id"].fillna(words["form_id"])
        copiste_words, copiste_report = select_words(words.assign(split="test"), "test", vocabulary)
        copiste = read_real(model, copiste_words, "Copiste")
    else:
        print(f"no Copiste mini-IAM in {copiste_dir} (python -m utils.realwords makes one): its rows are left out")

    synthetic_only = read_real(model)
    font_test = read_dataset(model, data["test"], vocabulary).cer
    finetuned = None
    if args.train_minutes:
        tuning = make_datasets(real, vocabulary=vocabulary, batch_size=config.TRAIN_BATCH_SIZE, eval_batch_size=config.EVAL_BATCH_SIZE,
                               splits=("finetune", "validation"), training_split="finetune", verbose=False)  # fmt: skip
        fine_tune(model, tuning["finetune"], tuning["validation"], vocabulary, RunFolder(work / "fine-tuned"),
                  minutes=args.finetune_minutes, verbose=False)  # fmt: skip
        finetuned = read_real(model)

    def table(title: str, result: dict) -> None:
        print(f"\n{title}")
        print(f"{'writer':>8} {'words':>6} {'CER':>7} {'WER':>7} {'word acc':>9}")
        for writer, scores in sorted(result["per_writer"].items(), key=lambda item: (len(item[0]), item[0])):
            print(f"{writer:>8} {scores['words']:>6} {scores['cer']:>7.1%} {scores['wer']:>7.1%} {scores['word_accuracy']:>9.1%}")
        o = result["overall"]
        words = sum(scores["words"] for scores in result["per_writer"].values())
        print(f"{'all':>8} {words:>6} {o['cer']:>7.1%} {o['wer']:>7.1%} {o['word_accuracy']:>9.1%}")
        print("  e.g. " + ", ".join(f"{truth} -> {read}" for truth, read in result["examples"]))

    print(f"\nReal-handwriting benchmark: DHSD test writers ({test_words['writer'].nunique()} writers, "
          f"{len(test_words)} words read; left out: " + (", ".join(f"{n} {why}" for why, n in left_out.items()) or "none") + ")")  # fmt: skip
    table(f"model: {model_name}", synthetic_only)
    if finetuned:
        table("the same model fine-tuned on the DHSD fine-tuning writers", finetuned)
    if copiste:
        print(f"\nCopiste test writers ({copiste_words['writer'].nunique()} writers, {len(copiste_words)} ok words of "
              f"{config.display_path(copiste_dir)} read; left out: {sum(copiste_report.dropped.values())})")  # fmt: skip
        table(f"model: {model_name}", copiste)
    print(f"\nfont test split (held-out fonts of the embedded default, {len(data.words['test'])} words): CER {font_test:.1%}")

    overall = synthetic_only["overall"]
    result = {
        "real_cer": round(overall["cer"], 4),
        "real_wer": round(overall["wer"], 4),
        "real_word_acc": round(overall["word_accuracy"], 4),
        "finetuned_cer": round(finetuned["overall"]["cer"], 4) if finetuned else None,
        "finetuned_wer": round(finetuned["overall"]["wer"], 4) if finetuned else None,
        "finetuned_word_acc": round(finetuned["overall"]["word_accuracy"], 4) if finetuned else None,
        "copiste_cer": round(copiste["overall"]["cer"], 4) if copiste else None,
        "copiste_wer": round(copiste["overall"]["wer"], 4) if copiste else None,
        "copiste_word_acc": round(copiste["overall"]["word_accuracy"], 4) if copiste else None,
        "copiste_words": len(copiste_words) if copiste else 0,
        "copiste_per_writer": {w: round(s["cer"], 4) for w, s in copiste["per_writer"].items()} if copiste else {},
        "font_test_cer": round(font_test, 4),
        "train_minutes": round(train_minutes, 2) if train_minutes else None,
        "words": len(test_words),
        "left_out": left_out,
        "per_writer": {w: round(s["cer"], 4) for w, s in synthetic_only["per_writer"].items()},
        "model": model_name,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
