"""Choose the dataset the series runs on, obtain it, and keep its index in artifacts/.

:func:`resolve_dataset` decides, in this order: ``HTR_DATA_DIR`` if set; the real IAM
under ``data/``; a Kaggle download if you opted in (``HTR_DOWNLOAD=kaggle``); else the
synthetic mini-IAM, generated into ``data/`` once and reused. It says which it chose.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from utils import config
from utils.iam import IamDataset, IamLayout, find_dataset, find_datasets, load_iam, records_to_frame, split_dir_setting
from utils.synthetic import generate_mini_iam

INDEX_FILE = "index.csv"
INDEX_META_FILE = "index.json"


class DownloadError(RuntimeError):
    """The Kaggle download failed; the message says how to place the files by hand."""


def kaggle_dir() -> Path:
    """Where a Kaggle download goes (``HTR_KAGGLE_DIR``, default data/kaggle; blank means unset)."""
    chosen = config.env_setting("HTR_KAGGLE_DIR")
    return Path(chosen) if chosen is not None else config.DATA_DIR / "kaggle"


MANUAL_HINT = (
    "To place IAM by hand: download https://www.kaggle.com/datasets/{handle} on a machine with internet,\n"
    "unzip it into {data}/ so that {data}/iam_words/words/ and {data}/iam_words/words.txt exist\n"
    "(or unzip anywhere and set HTR_DATA_DIR to that folder), then check it with\n"
    "    python -m utils.iam check {data}"
)


def download_from_kaggle(target: Path | str | None = None) -> Path:
    """Download IAM words from Kaggle with kagglehub into ``target``; return the folder.

    Needs internet and Kaggle credentials (``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME`` and
    ``KAGGLE_KEY``). Fails fast offline with a DownloadError that says what to do instead.
    """
    target = Path(target) if target is not None else kaggle_dir()
    hint = MANUAL_HINT.format(handle=config.KAGGLE_DATASET, data=config.DATA_DIR)
    try:
        import kagglehub
    except ImportError as error:
        raise DownloadError(f"kagglehub is not installed ({error}): pip install kagglehub\n{hint}") from error
    try:
        try:
            path = kagglehub.dataset_download(config.KAGGLE_DATASET, output_dir=str(target))
        except TypeError:  # kagglehub older than output_dir: steer its cache instead
            os.environ["KAGGLEHUB_CACHE"] = str(target)
            path = kagglehub.dataset_download(config.KAGGLE_DATASET)
    except Exception as error:  # kagglehub raises requests, HTTP and its own errors
        reason = f"{type(error).__name__}: {error}"
        if any(word in reason for word in ("401", "403", "Unauthorized", "credentials")):
            reason += "\nKaggle refused the request: set KAGGLE_USERNAME and KAGGLE_KEY (kaggle.com > Settings > API)."
        elif any(word in reason for word in ("resolve", "Connection", "Max retries", "timed out")):
            reason += "\nNo connection to Kaggle: are you offline?"
        raise DownloadError(f"Could not download {config.KAGGLE_DATASET} from Kaggle.\n{reason}\n{hint}") from error
    return Path(path)


@dataclass
class Resolution:
    layout: IamLayout
    source: str  # "HTR_DATA_DIR", "data", "kaggle" or "synthetic"
    reason: str

    def __str__(self) -> str:
        return f"Dataset: {self.layout.describe()}\n  chosen because {self.reason}"


def mini_iam_dir(words: int, seed: int) -> Path:
    """Folder of the generated mini-IAM with these parameters (one per size and seed)."""
    return config.DATA_DIR / f"mini-iam-{words}w-seed{seed}"


def resolve_dataset(download: bool | None = None, words: int | None = None, verbose: bool = True) -> Resolution:
    """Pick the dataset: HTR_DATA_DIR, else IAM in data/, else Kaggle (opt-in), else the mini-IAM.

    A blank HTR_DATA_DIR is unset; folders named ``*.partial`` (an interrupted generation) are never picked.
    """
    data_dir_env = config.data_dir_setting()
    if data_dir_env is not None:
        resolution = Resolution(find_dataset(data_dir_env), "HTR_DATA_DIR", f"HTR_DATA_DIR={data_dir_env}")
    else:
        # What the series made itself is no IAM: a mini-IAM of fonts, or of real words cut by utils.realwords.
        real = [layout for layout in find_datasets(config.DATA_DIR) if not layout.synthetic and not layout.real_words]
        download = (config.env_setting("HTR_DOWNLOAD") or "").lower() == "kaggle" if download is None else download
        if real:
            resolution = Resolution(real[0], "data", f"IAM was found under {config.display_path(config.DATA_DIR)}/")
        elif download:
            folder = download_from_kaggle()
            resolution = Resolution(find_dataset(folder), "kaggle", f"you opted in to the Kaggle download ({folder})")
        else:
            words = words or config.synthetic_word_count()
            layout = generate_mini_iam(mini_iam_dir(words, config.seed()), words=words, seed=config.seed())
            resolution = Resolution(
                layout,
                "synthetic",
                f"no IAM under {config.display_path(config.DATA_DIR)}/ and no HTR_DATA_DIR: using the embedded synthetic mini-IAM "
                f"({words} words{', quick mode' if config.quick_mode() else ''}). Set HTR_DOWNLOAD=kaggle to download IAM.",
            )
    if verbose:
        print(resolution)
    return resolution


# --- The index: one row per word, saved for the later chapters --------------------------
def save_index(dataset: IamDataset, folder: Path | None = None) -> Path:
    """Write the dataset's index (records, image sizes, problems, splits) to artifacts/."""
    folder = folder or config.artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    records_to_frame(dataset).to_csv(folder / INDEX_FILE, index=False)
    meta = {
        "dataset_root": str(dataset.layout.root.resolve()),
        "synthetic": dataset.layout.synthetic,
        "split_method": dataset.split_method,
        "split_dir": _split_setting(),
        "words": len(dataset.records),
    }
    (folder / INDEX_META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return folder / INDEX_FILE


def _split_setting() -> str | None:
    """The HTR_SPLIT_DIR in force, as the index remembers it: another one means another index."""
    split_dir = split_dir_setting()
    return str(split_dir.resolve()) if split_dir else None


def load_index(folder: Path | None = None):
    """The saved index as a DataFrame with absolute image paths; rebuilt first when absent or stale.

    Stale: made from another dataset or with another ``HTR_SPLIT_DIR``. This is how chapters 02-04
    start without running chapter 01 first.
    """
    import pandas as pd

    folder = folder or config.artifacts_dir()
    meta_file = folder / INDEX_META_FILE
    resolution = resolve_dataset(verbose=False)
    root = resolution.layout.root.resolve()
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    fresh = meta.get("dataset_root") == str(root) and meta.get("split_dir") == _split_setting()
    if not fresh:
        save_index(load_iam(resolution.layout.root), folder)
    frame = pd.read_csv(folder / INDEX_FILE, dtype={"writer_id": str, "text": str}, keep_default_na=False, na_values=[""])
    frame["path"] = [str(root / p) for p in frame["path"]]
    return frame


def usable_words(frame, statuses=config.TRAIN_STATUSES):
    """Rows of the index the series learns from: a wanted status, a readable image, a split, a first id."""
    keep = (
        frame["image_problem"].isna()
        & frame["status"].isin(statuses)
        & frame["split"].notna()
        & ~frame["word_id"].duplicated()
    )
    return frame[keep]
