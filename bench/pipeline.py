"""Benchmark of the input pipeline against the seed's loading loop, and its cost to training.

    python bench/pipeline.py [--small 5000] [--large 20000] [--repeats 2]

On the training split of two generated mini-IAMs (reused from data/ when they exist):
(a) the seed's loop: cv2.imread + resize + pad into a Python list, then one array;
(b) our tf.data pipeline cold (preprocessing and filling its disk cache), (c) warm (from the
cache), (d) warm with augmentation; images/s, time to first batch and peak RSS, each in its
own process. Then the input-bound overhead: one epoch of training steps (``train_on_batch``) of a
compact CRNN fed by the pipeline vs fed by the same batches already in memory as tensors
(1.00 = the pipeline costs nothing).
It keeps the stand-in it was written with before chapter 04's compact preset existed (0.25 x the
paper CRNN's conv widths, BiLSTMs of 64, batch norm after convolutions 5 and 6), so that its README
figures stay reproducible; the table says so. bench/speed.py times the real presets.

Prints a table, then one JSON line with: seed_loop_img_s, pipeline_cold_img_s,
pipeline_warm_img_s, pipeline_aug_img_s, compact_train_img_s, overhead_ratio, overhead_ratio_aug,
rss_mb_small, rss_mb_large, words_small, words_large (and more: see the end of main()).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_words():
    """The usable training words of the dataset in HTR_DATA_DIR, and the vocabulary."""
    from utils.dataset import load_index
    from utils.pipeline import select_words, vocabulary_for

    frame = load_index()
    vocabulary = vocabulary_for(frame, verbose=False)
    words, _ = select_words(frame, "train", vocabulary)
    return words, vocabulary


# --- Workers: each runs in its own process, so its peak RSS is its own ------------------------
def seed_loop(limit: int | None = None) -> dict:
    """The seed's approach: every image (or the first ``limit``) read, resized and padded in Python, then one big array."""
    import cv2
    import numpy as np

    from utils import config

    words, _ = train_words()
    words = words.head(limit) if limit else words
    start = time.perf_counter()
    images = []
    for path in words["path"]:
        gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        scale = min(config.IMAGE_HEIGHT / gray.shape[0], config.IMAGE_WIDTH / gray.shape[1])
        size = (max(1, min(config.IMAGE_WIDTH, round(gray.shape[1] * scale))),
                max(1, min(config.IMAGE_HEIGHT, round(gray.shape[0] * scale))))  # fmt: skip
        canvas = np.full((config.IMAGE_HEIGHT, config.IMAGE_WIDTH), 255, np.uint8)
        canvas[: size[1], : size[0]] = cv2.resize(gray, size)
        images.append(canvas)
    array = np.array(images, dtype=np.float32)[..., None] / 255.0
    seconds = time.perf_counter() - start
    # The seed cannot hand out a batch before it has loaded everything.
    return {"images": len(array), "seconds": seconds, "first_batch_s": seconds, "rss_mb": peak_rss_mb()}


def pipeline_passes() -> dict:
    """Our pipeline over the training words: cold epoch, warm epoch, warm epoch with augmentation."""
    from utils.pipeline import make_dataset

    words, vocabulary = train_words()
    result = {"images": len(words), "rss_mb_before": peak_rss_mb()}
    plain = make_dataset(words, vocabulary, training=True, augment=False, cache="disk", name="bench")
    augmented = make_dataset(words, vocabulary, training=True, augment=True, cache="disk", name="bench")
    for name, dataset in (("cold", plain), ("warm", plain), ("aug", augmented)):
        start = time.perf_counter()
        first, count = None, 0
        for images, _ in dataset:
            count += len(images)
            first = first or time.perf_counter() - start
        seconds = time.perf_counter() - start
        result[name] = {"images": count, "seconds": seconds, "img_s": count / seconds, "first_batch_s": first}
    result["rss_mb"] = peak_rss_mb()
    return result


def standin_compact_crnn(num_classes: int):
    """Stand-in for chapter 04's `compact` preset: the paper CRNN's shape at 0.25 width, BiLSTM 64."""
    import keras
    from keras import layers

    from utils import config

    inputs = keras.Input((config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1))
    x = inputs
    for filters, pool, norm in ((16, (2, 2), False), (32, (2, 2), False), (64, None, False), (64, (2, 1), False),
                                (128, None, True), (128, (2, 1), True)):  # fmt: skip
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not norm)(x)
        if norm:
            x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D(pool)(x)
    x = layers.Conv2D(128, 2, padding="valid", activation="relu")(x)  # [3, 31, 128]
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((config.TIME_STEPS, -1))(x)
    for _ in range(2):
        x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    outputs = layers.Dense(num_classes)(x)
    model = keras.Model(inputs, outputs, name="standin_compact_crnn")

    def ctc(labels, logits):  # true label lengths: padding (0) never counts as a character
        label_length = keras.ops.sum(keras.ops.cast(labels != 0, "int32"), axis=-1)
        logit_length = keras.ops.full(keras.ops.shape(label_length), config.TIME_STEPS, dtype="int32")
        return keras.ops.ctc_loss(labels, logits, label_length, logit_length, mask_index=0)

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=ctc)
    return model


def training_overhead(repeats: int) -> dict:
    """Epoch time with batches already in memory vs from the pipeline, plain and augmented (fastest of repeats).

    The same loop (``train_on_batch``) drives all three, so the only difference is where the
    batches come from; in memory they are ready tensors, so the input costs nothing there.
    """
    import tensorflow as tf

    from utils.pipeline import make_dataset

    words, vocabulary = train_words()
    plain = make_dataset(words, vocabulary, training=True, augment=False, cache="disk", name="bench")
    augmented = make_dataset(words, vocabulary, training=True, augment=True, cache="disk", name="bench")
    in_memory = [(tf.constant(x), tf.constant(y)) for x, y in plain.as_numpy_iterator()]  # fills the cache too
    images = sum(len(x) for x, _ in in_memory)
    model = standin_compact_crnn(vocabulary.num_classes)
    for x, y in [*in_memory[:3], *plain.take(3)]:  # trace and warm up once
        model.train_on_batch(x, y)
    times = {"memory": [], "pipeline": [], "augmented": []}
    for _ in range(repeats):
        for name, batches in (("memory", in_memory), ("pipeline", plain), ("augmented", augmented)):
            start = time.perf_counter()
            for x, y in batches:
                model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in times.items()}
    return {"images": images, "steps": len(in_memory), "times": times, "best": best, "params": model.count_params()}


# worker name -> how it runs with the command line's arguments
WORKERS = {
    "seed": lambda args: seed_loop(args.limit),
    "pipeline": lambda args: pipeline_passes(),
    "train": lambda args: training_overhead(args.repeats),
}


def run_worker(kind: str, data: Path, artifacts: Path, repeats: int = 1, limit: int | None = None) -> dict:
    """Run one worker in a fresh Python process on the given dataset; return its JSON result."""
    env = dict(os.environ, HTR_DATA_DIR=str(data), HTR_ARTIFACTS_DIR=str(artifacts), TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, __file__, "--worker", kind, "--repeats", str(repeats)]
    command += ["--limit", str(limit)] if limit else []
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker {kind} on {data} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=5000, help="words in the small mini-IAM (at least 5,000)")
    parser.add_argument("--large", type=int, default=20000, help="words in the large mini-IAM")
    parser.add_argument("--repeats", type=int, default=3, help="training epochs per feeding, the fastest counts")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)  # seed worker: first N words
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    from utils import config
    from utils.dataset import mini_iam_dir
    from utils.synthetic import generate_mini_iam

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size_name, words in (("small", args.small), ("large", args.large)):
            layout = generate_mini_iam(mini_iam_dir(words, config.seed()), words=words, seed=config.seed())
            artifacts = Path(tmp) / size_name  # fresh: the first pass is really cold
            results[size_name] = {
                "seed": run_worker("seed", layout.root, artifacts, args.repeats),
                "pipeline": run_worker("pipeline", layout.root, artifacts, args.repeats),
            }
            if size_name == "small":
                results["train"] = run_worker("train", layout.root, artifacts, args.repeats)
    small, large, train = results["small"], results["large"], results["train"]
    seed_img_s = small["seed"]["images"] / small["seed"]["seconds"]
    compact_img_s = train["images"] / train["best"]["memory"]
    summary = {
        "seed_loop_img_s": round(seed_img_s),
        "pipeline_cold_img_s": round(small["pipeline"]["cold"]["img_s"]),
        "pipeline_warm_img_s": round(small["pipeline"]["warm"]["img_s"]),
        "pipeline_aug_img_s": round(small["pipeline"]["aug"]["img_s"]),
        "compact_train_img_s": round(compact_img_s, 1),
        "overhead_ratio": round(train["best"]["memory"] / train["best"]["pipeline"], 3),
        "overhead_ratio_aug": round(train["best"]["memory"] / train["best"]["augmented"], 3),
        "aug_overhead_share": round(1 - train["best"]["memory"] / train["best"]["augmented"], 3),
        "aug_vs_train_speed": round(small["pipeline"]["aug"]["img_s"] / compact_img_s, 1),
        "aug_cost_bound": round(compact_img_s / small["pipeline"]["aug"]["img_s"], 3),
        "seed_first_batch_s": round(small["seed"]["first_batch_s"], 2),
        "pipeline_first_batch_s": round(small["pipeline"]["cold"]["first_batch_s"], 2),
        "seed_first_batch_s_large": round(large["seed"]["first_batch_s"], 2),
        "pipeline_first_batch_s_large": round(large["pipeline"]["cold"]["first_batch_s"], 2),
        "rss_mb_small": round(small["pipeline"]["rss_mb"]),
        "rss_mb_large": round(large["pipeline"]["rss_mb"]),
        "seed_rss_mb_small": round(small["seed"]["rss_mb"]),
        "seed_rss_mb_large": round(large["seed"]["rss_mb"]),
        "words_small": args.small,
        "words_large": args.large,
        "train_images_small": small["pipeline"]["images"],
        "train_images_large": large["pipeline"]["images"],
        "model": "stand-in compact CRNN (0.25 width, BiLSTM 64)",
        "cores": os.cpu_count(),
    }
    print_table(small, large, train, summary)
    print(json.dumps(summary))


def print_table(small: dict, large: dict, train: dict, summary: dict) -> None:
    print(f"Input pipeline, {summary['cores']} cores; training split of mini-IAMs of "
          f"{summary['words_small']:,} and {summary['words_large']:,} words "
          f"({summary['train_images_small']:,} and {summary['train_images_large']:,} training images)\n")  # fmt: skip
    print(f"{'loader':38} {'img/s':>7} {'1st batch s':>12} {'1st batch s':>12} {'peak RSS MB':>12} {'peak RSS MB':>12}")
    print(f"{'':38} {'small':>7} {'small':>12} {'large':>12} {'small':>12} {'large':>12}")
    for name, key, phase in (
        ("(a) seed loop (cv2, list -> array)", "seed", None),
        ("(b) pipeline, cold (fills disk cache)", "pipeline", "cold"),
        ("(c) pipeline, warm (from cache)", "pipeline", "warm"),
        ("(d) pipeline, warm + augmentation", "pipeline", "aug"),
    ):
        run_small, run_large = (small[key][phase], large[key][phase]) if phase else (small[key], large[key])
        img_s = run_small["img_s"] if phase else run_small["images"] / run_small["seconds"]
        rss = f"{small[key]['rss_mb']:12,.0f} {large[key]['rss_mb']:12,.0f}" if phase in (None, "cold") else ""
        print(f"{name:38} {img_s:7,.0f} {run_small['first_batch_s']:12.2f} {run_large['first_batch_s']:12.2f} {rss}")
    print("(peak RSS is per process, TensorFlow included; the pipeline's covers its cold, warm and augmented passes)")
    print(f"\nTraining one epoch ({train['steps']} steps of {train['images'] // train['steps']}, "
          f"{summary['model']}, {train['params']:,} parameters), fastest of {len(train['times']['memory'])}:")  # fmt: skip
    memory = train["best"]["memory"]
    for name, label in (("memory", "batches already in memory"), ("pipeline", "fed by the pipeline"),
                        ("augmented", "fed by the pipeline + augmentation")):  # fmt: skip
        seconds = train["best"][name]
        spread = ", ".join(f"{t:.1f}" for t in train["times"][name])
        print(f"  {label:36} {seconds:6.2f} s {train['images'] / seconds:6.1f} img/s  ratio {memory / seconds:.3f}"
              f"  (epochs: {spread} s)")  # fmt: skip
    print(f"\nwarm + augmentation runs at {summary['aug_vs_train_speed']}x the training speed. Augmentation's measured "
          f"cost: {summary['aug_overhead_share']:.1%} of a training step;\nat most {summary['aug_cost_bound']:.1%} "
          f"if it could not overlap with training at all (training speed / augmentation speed)\n")  # fmt: skip


if __name__ == "__main__":
    main()
