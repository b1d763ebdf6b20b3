"""A grid of random ``ok`` words of a real mini-IAM with their text: to check by eye that each crop holds its word.

    python bench/words_grid.py DIR [--count 200] [--seed 0] [--out bench/copiste_words_grid.png] [--split SPLIT] [--dpi 80]

Draws ``--count`` words at random (seeded) among the ``ok`` words of the mini-IAM in ``DIR`` (as written by
``python -m utils.realwords``), each crop at its own aspect above its text and id, numbered, so that the wrong ones can
be named. Prints the words in the grid's order, then one JSON line: count, ok_words, seed, out.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

COLUMNS = 8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a mini-IAM made by python -m utils.realwords")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default=None, help="only the words of this split (train, validation, test)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "copiste_words_grid.png")
    parser.add_argument("--dpi", type=int, default=80, help="resolution: 80 fits a screen, 120 shows every stroke")
    args = parser.parse_args()

    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.iam import load_iam

    dataset = load_iam(args.folder, validate=False)
    words = [record for record in dataset.records if record.status == "ok"
             and (args.split is None or dataset.splits.get(record.word_id) == args.split)]  # fmt: skip
    chosen = random.Random(args.seed).sample(words, min(args.count, len(words)))
    rows = -(-len(chosen) // COLUMNS)
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(COLUMNS * 2.4, rows * 1.05))
    for number, axis in enumerate(axes.flat):
        axis.axis("off")
        if number >= len(chosen):
            continue
        record = chosen[number]
        axis.imshow(cv2.imread(str(record.path), cv2.IMREAD_GRAYSCALE), cmap="gray", vmin=0, vmax=255)
        axis.set_title(f"{number + 1}. {record.text}", fontsize=9, loc="left", pad=2)
        print(f"{number + 1:>4} {record.word_id} {record.text}")
    figure.suptitle(f"{len(chosen)} random 'ok' words of {len(words):,} ({args.folder.name}, seed {args.seed}): does each crop hold exactly its word?",
                    fontsize=13)  # fmt: skip
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (rows + 1)))  # room for the title above the first row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=args.dpi)
    print(json.dumps({"count": len(chosen), "ok_words": len(words), "seed": args.seed, "out": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
