"""Benchmark of the foundation: mini-IAM generation, `utils.iam check`, chapter 01 in quick mode.

    python bench/foundation.py [--words 2000] [--skip-notebook]

Prints a table, then one JSON line with: words, generate_s, generate_words_s, check_s,
chapter01_quick_s, cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from utils.iam import load_iam  # noqa: E402
from utils.synthetic import generate_mini_iam  # noqa: E402


def timed(action):
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=2000)
    parser.add_argument("--skip-notebook", action="store_true", help="do not time chapter 01")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        layout, generate_s = timed(lambda: generate_mini_iam(Path(tmp) / "mini", words=args.words, seed=42))
        rows.append((f"generate {args.words} words", generate_s, f"{args.words / generate_s:,.0f} words/s"))
        dataset, check_s = timed(lambda: load_iam(layout.root))
        rows.append((f"parse + validate + split {len(dataset.records)} words", check_s, f"{len(dataset.records) / check_s:,.0f} words/s"))
    chapter_s = None
    if not args.skip_notebook:
        env = dict(os.environ, HTR_QUICK="1", TF_CPP_MIN_LOG_LEVEL="2")
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                       "--output-dir", tmp, str(REPO_ROOT / "notebooks" / "01_loading.ipynb")]  # fmt: skip
            _, chapter_s = timed(lambda: subprocess.run(command, env=env, check=True, capture_output=True))
        rows.append(("chapter 01, quick mode, top to bottom", chapter_s, "incl. kernel start; mini-IAM already in data/"))
    print(f"{'step':45} {'seconds':>8}  rate")
    for name, seconds, rate in rows:
        print(f"{name:45} {seconds:8.2f}  {rate}")
    print(json.dumps({
        "words": args.words,
        "generate_s": round(generate_s, 2),
        "generate_words_s": round(args.words / generate_s),
        "check_s": round(check_s, 2),
        "chapter01_quick_s": round(chapter_s, 1) if chapter_s else None,
        "cores": os.cpu_count(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
