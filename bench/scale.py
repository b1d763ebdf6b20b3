"""Scale benchmark: a mini-IAM of the real IAM's size (115,320 words, 657 writers) through every stage.

    python bench/scale.py [--words 115320] [--writers 657] [--seed-slice 5000] [--keep DIR]

A rehearsal of what a user with the real IAM goes through, on this machine:
(1) generating the mini-IAM (IAM's word count, writers, share of ``err`` rows);
(2) ``python -m utils.iam check DIR`` (parse words.txt, decode every image);
(3) building the index that the chapters read (``load_index``);
(4) the input pipeline over the training split: the first epoch (reads, preprocesses and fills the disk
    cache), a warm epoch (from the cache) and a warm epoch with augmentation;
(5) for comparison, the seed's approach (every image loaded into one float32 array) on a slice of
    ``--seed-slice`` training words, extrapolated to the whole split, and run whole only when the
    extrapolation fits in half of this machine's free memory.
Stages 2-5 each run in a fresh process, so each peak RSS is that stage's own (TensorFlow included).

Prints a table, then one JSON line with: words, writers, generate_s, check_s, index_s, first_epoch_img_s,
warm_img_s, aug_img_s, peak_rss_mb (the largest of stages 2-4), and the stages' own figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline import run_worker  # noqa: E402  (bench/pipeline.py: its workers and their process isolation)


def run_measured(command: list[str], env: dict[str, str]) -> dict:
    """Run a command to its end; wall seconds, peak RSS in MB (``wait4``) and its output."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return {"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def available_memory_mb() -> float:
    """Memory the system could give a new process now (Linux's MemAvailable; elsewhere the free pages)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20


def index_worker() -> dict:
    """Build the chapters' index of the dataset in HTR_DATA_DIR (parse, validate, split, save)."""
    from utils.dataset import load_index

    frame = load_index()
    return {"rows": len(frame), "splits": frame["split"].value_counts().to_dict()}


def main() -> int:
    from utils import config
    from utils.synthetic import IAM_SIZE, generate_mini_iam

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=IAM_SIZE["words"])
    parser.add_argument("--writers", type=int, default=IAM_SIZE["writers"])
    parser.add_argument("--seed-slice", type=int, default=5000, help="training words the seed's loader is timed on")
    parser.add_argument("--keep", type=Path, default=None, help="keep (or reuse) the generated mini-IAM in this folder")
    parser.add_argument("--worker", choices=["index"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(index_worker()))
        return 0

    work = Path(tempfile.mkdtemp(prefix="htr-scale-"))
    data = args.keep or work / "mini-iam"
    artifacts = work / "artifacts"
    env = dict(os.environ, HTR_DATA_DIR=str(data), HTR_ARTIFACTS_DIR=str(artifacts), TF_CPP_MIN_LOG_LEVEL="2")
    try:
        reused = (data / "mini_iam.json").is_file()
        start = time.perf_counter()
        generate_mini_iam(data, words=args.words, seed=config.seed(), writers=args.writers, err_fraction=IAM_SIZE["err_fraction"])
        generate_s = time.perf_counter() - start
        disk_mb = sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 2**20
        print(f"generated {args.words:,} words ({args.writers} writers) in {generate_s:.0f} s{' (reused)' if reused else ''}", flush=True)

        check = run_measured([sys.executable, "-m", "utils.iam", "check", str(data), "--show", "3"], env)
        print(f"check: {check['seconds']:.0f} s", flush=True)
        index = run_measured([sys.executable, __file__, "--worker", "index"], env)
        index_rows = json.loads(index["stdout"].strip().splitlines()[-1])
        print(f"index: {index['seconds']:.0f} s", flush=True)
        start = time.perf_counter()
        pipeline = run_worker("pipeline", data, artifacts)
        pipeline["seconds"] = time.perf_counter() - start
        print(f"pipeline: {pipeline['seconds']:.0f} s", flush=True)

        seed_slice = run_worker("seed", data, artifacts, limit=args.seed_slice)
        seed_small = run_worker("seed", data, artifacts, limit=args.seed_slice // 5)
        # RSS grows linearly with the images held: fit the line through the two slices.
        per_image_mb = (seed_slice["rss_mb"] - seed_small["rss_mb"]) / (seed_slice["images"] - seed_small["images"])
        train_images = pipeline["images"]
        seed_full_rss = seed_slice["rss_mb"] + per_image_mb * (train_images - seed_slice["images"])
        seed_full_s = seed_slice["seconds"] * train_images / seed_slice["images"]
        free_mb = available_memory_mb()
        seed_full = run_worker("seed", data, artifacts) if seed_full_rss < free_mb / 2 else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "words": args.words,
        "writers": args.writers,
        "train_images": train_images,
        "disk_mb": round(disk_mb),
        "generate_s": round(generate_s, 1),
        "generate_reused": reused,
        "check_s": round(check["seconds"], 1),
        "check_rss_mb": round(check["rss_mb"]),
        "index_s": round(index["seconds"], 1),
        "index_rss_mb": round(index["rss_mb"]),
        "index_rows": index_rows["rows"],
        "first_epoch_img_s": round(pipeline["cold"]["img_s"]),
        "first_epoch_s": round(pipeline["cold"]["seconds"], 1),
        "first_batch_s": round(pipeline["cold"]["first_batch_s"], 2),
        "warm_img_s": round(pipeline["warm"]["img_s"]),
        "aug_img_s": round(pipeline["aug"]["img_s"]),
        "pipeline_rss_mb": round(pipeline["rss_mb"]),
        "peak_rss_mb": round(max(check["rss_mb"], index["rss_mb"], pipeline["rss_mb"])),
        "seed_slice_words": seed_slice["images"],
        "seed_slice_img_s": round(seed_slice["images"] / seed_slice["seconds"]),
        "seed_slice_rss_mb": round(seed_slice["rss_mb"]),
        "seed_full_rss_mb_extrapolated": round(seed_full_rss),
        "seed_full_s_extrapolated": round(seed_full_s, 1),
        "seed_full_rss_mb": round(seed_full["rss_mb"]) if seed_full else None,
        "seed_full_s": round(seed_full["seconds"], 1) if seed_full else None,
        "free_memory_mb": round(free_mb),
        "cores": os.cpu_count(),
    }
    print_table(result)
    print(json.dumps(result))
    return 0


def print_table(r: dict) -> None:
    print(f"\nScale: a mini-IAM of IAM's size, {r['words']:,} words by {r['writers']} writers ({r['disk_mb']:,} MB of PNGs), "
          f"{r['cores']} cores; training split {r['train_images']:,} images\n")  # fmt: skip
    print(f"{'stage':<56} {'seconds':>8} {'images/s':>9} {'peak RSS MB':>12}")
    rows = [
        ("generate the mini-IAM" + (" (reused: no timing)" if r["generate_reused"] else ""), r["generate_s"], r["words"] / r["generate_s"], None),
        ("python -m utils.iam check (parse + decode every image)", r["check_s"], r["words"] / r["check_s"], r["check_rss_mb"]),
        ("build the index (load_index)", r["index_s"], r["words"] / r["index_s"], r["index_rss_mb"]),
        ("pipeline, first epoch (preprocess, fill disk cache)", r["first_epoch_s"], r["first_epoch_img_s"], r["pipeline_rss_mb"]),
        ("pipeline, warm epoch (from the cache)", r["train_images"] / r["warm_img_s"], r["warm_img_s"], None),
        ("pipeline, warm epoch + augmentation", r["train_images"] / r["aug_img_s"], r["aug_img_s"], None),
        (f"seed loader, slice of {r['seed_slice_words']:,} words", r["seed_slice_words"] / r["seed_slice_img_s"], r["seed_slice_img_s"], r["seed_slice_rss_mb"]),
        ("seed loader, whole split, extrapolated", r["seed_full_s_extrapolated"], None, r["seed_full_rss_mb_extrapolated"]),
    ]  # fmt: skip
    if r["seed_full_s"] is not None:
        rows.append(("seed loader, whole split, measured", r["seed_full_s"], r["train_images"] / r["seed_full_s"], r["seed_full_rss_mb"]))
    for name, seconds, rate, rss in rows:
        rate_text = f"{rate:9,.0f}" if rate else f"{'':9}"
        rss_text = f"{rss:12,.0f}" if rss is not None else ""
        print(f"{name:<56} {seconds:8.1f} {rate_text} {rss_text}")
    if r["seed_full_s"] is None:
        print(f"(the seed loader was not run whole: {r['seed_full_rss_mb_extrapolated']:,} MB would not fit in half of "
              f"the {r['free_memory_mb']:,} MB free)")  # fmt: skip
    print(f"peak RSS of our stages (check, index, pipeline): {r['peak_rss_mb']:,} MB; the pipeline's covers its three epochs\n")


if __name__ == "__main__":
    sys.exit(main())
