"""What chapter 04's progress bar costs: training images/s with and without ``BatchProgress``.

    python bench/progress.py [--batches 60] [--rounds 4] [--batch 32]

The compact CRNN is fitted on in-memory batches (no input pipeline), in rounds that alternate without and
with the bar, so that a busy machine slows both alike; each round is one epoch of ``--batches`` batches after
a warm-up epoch. The bar is drawn as in a live notebook (redrawn every 0.1 s, the loss read every
``BatchProgress.UPDATE_SECONDS``), written to a null stream. The cost is 1 - (median with) / (median without).

Prints a table, then one JSON line with: batch, batches, rounds, without_img_s, with_img_s, cost_percent, device.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class NullBar(io.StringIO):
    """A stream that forgets what it is given: the bar's drawing cost without a terminal's."""

    def write(self, text: str) -> int:
        return len(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf
    import tqdm

    from bench.speed import cpu_name
    from utils import config
    from utils.model import build_crnn
    from utils.training import BatchProgress, compile_crnn

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((args.batch, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1), dtype=np.float32)
    labels = np.zeros((args.batch, config.LABEL_WIDTH), dtype=np.int32)
    labels[:, :5] = rng.integers(1, 60, (args.batch, 5))
    data = tf.data.Dataset.from_tensors((images, labels)).repeat(args.batches)
    model = compile_crnn(build_crnn("compact", 78, dropout=config.DROPOUT, batch_norm=config.BATCH_NORM))
    model.fit(data, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing and the first allocation

    class LiveBar(BatchProgress):
        def on_epoch_begin(self, epoch, logs=None):
            self.bar = tqdm.tqdm(total=self.steps, desc=f"epoch {epoch + 1}", file=NullBar(), mininterval=0.1)
            self._last = time.perf_counter()

    speeds: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(args.rounds):
        for name, callbacks in (("without", []), ("with", [LiveBar(steps=args.batches, widget=False)])):
            started = time.perf_counter()
            model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
            speeds[name].append(args.batch * args.batches / (time.perf_counter() - started))
    without, with_bar = statistics.median(speeds["without"]), statistics.median(speeds["with"])
    cost = 100 * (1 - with_bar / without)
    device = cpu_name()
    print(f"Progress bar cost, compact CRNN, batches of {args.batch}, {args.rounds} rounds of {args.batches} batches; {device}")
    print(f"{'':24}{'median img/s':>14}{'rounds (img/s)':>40}")
    for name, label in (("without", "without the bar"), ("with", "with BatchProgress")):
        rounds = ", ".join(f"{value:.0f}" for value in speeds[name])
        print(f"{label:24}{statistics.median(speeds[name]):14.1f}{rounds:>40}")
    print(f"cost: {cost:+.1f}% of the training speed")
    print(json.dumps({"batch": args.batch, "batches": args.batches, "rounds": args.rounds, "without_img_s": round(without, 1),
                      "with_img_s": round(with_bar, 1), "cost_percent": round(cost, 2), "device": device}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
