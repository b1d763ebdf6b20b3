"""The tf.data input pipeline: index rows -> batches of (images, labels) for training and evaluation.

records -> read file -> decode -> preprocess -> cache (uint8, before augmentation) -> shuffle
every epoch -> batch -> augment (train only) -> prefetch, with AUTOTUNE parallelism. Augmentation
comes after batching because its ops are several times faster on a whole batch than per image.
:func:`make_datasets` builds train, validation and test at once and reports every word it drops.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from utils import config
from utils.dataset import usable_words
from utils import preprocess
from utils.encoding import Vocabulary, ctc_feasible

AUTOTUNE = tf.data.AUTOTUNE
DROP_UNKNOWN = "has characters not in the vocabulary"
DROP_TOO_LONG = f"needs more than {config.TIME_STEPS} CTC steps"
CHECK_HINT = "check the dataset and its split files with: python -m utils.iam check DIR"


class EmptySplitError(ValueError):
    """A split of the index without one usable word: nothing to train or measure on, so nothing is built or saved."""


@dataclass
class SplitReport:
    """What happened to one split's words on their way into the pipeline."""

    split: str
    usable: int  # words of this split with status ok, a readable image and a split
    dropped: Counter = field(default_factory=Counter)  # reason -> words
    unknown: Counter = field(default_factory=Counter)  # character -> occurrences in dropped words

    @property
    def kept(self) -> int:
        return self.usable - sum(self.dropped.values())

    def __str__(self) -> str:
        text = f"{self.split:<10} {self.kept:>7,} words kept of {self.usable:,}"
        for reason, count in self.dropped.items():
            text += f"; {count:,} dropped: {reason}"
            if reason == DROP_UNKNOWN:
                text += " (" + ", ".join(f"{c!r} x{n}" for c, n in self.unknown.most_common(8)) + ")"
        return text


# --- Vocabulary -------------------------------------------------------------------------
def build_vocabulary(frame: pd.DataFrame) -> Vocabulary:
    """The vocabulary of the usable training words: validation and test must not shape it."""
    train = usable_words(frame)
    return Vocabulary.from_texts(train.loc[train["split"] == "train", "text"])


def vocabulary_for(frame: pd.DataFrame, folder: Path | None = None, verbose: bool = True) -> Vocabulary:
    """Build the vocabulary from the training split and keep it in ``artifacts/vocabulary.txt``.

    When that file holds a different vocabulary (the data changed), the old file is kept as
    ``vocabulary.previous.txt`` and a message says so: a model trained on it still needs it.
    """
    path = (folder or config.artifacts_dir()) / config.VOCABULARY_FILE
    vocabulary = build_vocabulary(frame)
    if not len(vocabulary):  # an empty vocabulary.txt would later look like a valid, if useless, one
        raise EmptySplitError(f"the train split has no usable word to build a vocabulary from: {CHECK_HINT}")
    if path.is_file():
        if Vocabulary.load(path) == vocabulary:
            return vocabulary
        previous = path.with_name(path.stem + ".previous" + path.suffix)
        path.replace(previous)
        if verbose:
            print(f"The training words changed: the old vocabulary was moved to {config.display_path(previous)}")
    vocabulary.save(path)
    if verbose:
        print(f"Vocabulary of {len(vocabulary)} characters saved to {config.display_path(path)}")
    return vocabulary


# --- Selecting the words of a split --------------------------------------------------------
def select_words(
    frame: pd.DataFrame, split: str, vocabulary: Vocabulary, time_steps: int = config.TIME_STEPS
) -> tuple[pd.DataFrame, SplitReport]:
    """The usable words of ``split`` that the vocabulary can encode and CTC can fit, and a report."""
    words = usable_words(frame)
    words = words[words["split"] == split]
    report = SplitReport(split, len(words))
    texts = words["text"].tolist()
    unknown = [[c for c in text if c not in vocabulary] for text in texts]
    # Built as bool Series: mapping an empty string column keeps its string dtype, which `&` refuses.
    has_unknown = pd.Series([bool(chars) for chars in unknown], index=words.index, dtype=bool)
    too_long = pd.Series([not chars and not ctc_feasible(text, time_steps) for text, chars in zip(texts, unknown)],
                         index=words.index, dtype=bool)  # fmt: skip
    if has_unknown.any():
        report.dropped[DROP_UNKNOWN] = int(has_unknown.sum())
        report.unknown.update(c for chars in unknown for c in chars)
    if too_long.any():
        report.dropped[DROP_TOO_LONG] = int(too_long.sum())
    return words[~has_unknown & ~too_long].reset_index(drop=True), report


# --- One dataset ---------------------------------------------------------------------------
def _cache_prefix(words: pd.DataFrame, vocabulary: Vocabulary, name: str, contrast: str, position: str) -> Path:
    """A cache file name that changes whenever what it would hold changes.

    It hashes the words, the vocabulary, every preprocessing setting and the preprocessing code
    itself, so an edit to either never serves images made the old way.
    """
    key = json.dumps(
        [list(words["path"]), list(words["gray_level"]), list(words["text"]), vocabulary.characters,
         contrast, position, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, config.LABEL_WIDTH,
         config.PAPER_PERCENTILE, config.INK_PERCENTILE, config.MAX_UPSCALE, config.INK_CROP, config.INK_CROP_MARGIN],
    )
    digest = hashlib.sha256(key.encode("utf-8") + Path(preprocess.__file__).read_bytes()).hexdigest()[:16]
    return config.artifacts_dir() / "cache" / f"{name}-{digest}"


def _clear_unfinished_cache(prefix: Path) -> None:
    """Remove what a killed process left of a cache it never finished (TF would refuse to start)."""
    if prefix.with_name(prefix.name + ".index").exists():
        return
    for leftover in prefix.parent.glob(prefix.name + "*"):
        leftover.unlink()


def make_dataset(
    words: pd.DataFrame,
    vocabulary: Vocabulary,
    training: bool,
    batch_size: int = config.BATCH_SIZE,
    augment: bool | None = None,
    cache: str | None = None,
    seed: int | None = None,
    name: str = "words",
    contrast: str | None = None,
    position: str | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 images [B, 64, 128, 1], int32 labels [B, LABEL_WIDTH] padded with 0).

    ``training`` shuffles every epoch and drops the last partial batch; ``augment`` (default:
    ``training``) distorts training images after the cache, so each epoch sees new versions.
    ``cache``: "disk" (``config.PIPELINE_CACHE``), "memory" or "none". Images were validated
    when the index was built; a file broken since then is skipped with a TensorFlow warning.
    """
    augment = training if augment is None else augment
    cache = cache or config.PIPELINE_CACHE
    seed = config.seed() if seed is None else seed
    contrast, position = contrast or config.CONTRAST, position or config.PAD_POSITION
    if training:  # mix writers in the cached order too: the shuffle buffer only mixes locally
        words = words.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    encoded = vocabulary.encode_batch(list(words["text"]))
    if encoded.unknown_rows:
        raise ValueError(f"{len(encoded.unknown_rows)} words have characters not in the vocabulary: select_words() drops them")
    gray_levels = words["gray_level"].fillna(-1).astype(np.int32).to_numpy()
    dataset = tf.data.Dataset.from_tensor_slices((words["path"].astype(str).to_numpy(), gray_levels, encoded.ids))
    dataset = dataset.map(
        lambda path, gray, label: (preprocess.to_uint8(preprocess.load_image(path, gray, contrast, position)), label),
        num_parallel_calls=AUTOTUNE,
    ).ignore_errors(log_warning=True)
    if cache == "disk":
        prefix = _cache_prefix(words, vocabulary, name, contrast, position)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        _clear_unfinished_cache(prefix)
        dataset = dataset.cache(str(prefix))
    elif cache == "memory":
        dataset = dataset.cache()
    elif cache != "none":
        raise ValueError(f"cache {cache!r}: expected 'disk', 'memory' or 'none'")
    if training:
        dataset = dataset.shuffle(min(config.SHUFFLE_BUFFER, max(len(words), 1)), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=training and len(words) >= batch_size, num_parallel_calls=AUTOTUNE)
    dataset = dataset.map(lambda images, labels: (preprocess.to_float(images), labels), num_parallel_calls=AUTOTUNE)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda batch, batch_seed: (preprocess.augment_batch(batch[0], batch_seed), batch[1]), num_parallel_calls=AUTOTUNE
        )
    return dataset.prefetch(AUTOTUNE)


# --- All three splits ------------------------------------------------------------------------
@dataclass
class Datasets:
    """The three datasets, the words behind them, the vocabulary and what was dropped."""

    vocabulary: Vocabulary
    datasets: dict[str, tf.data.Dataset]
    words: dict[str, pd.DataFrame]
    reports: dict[str, SplitReport]

    def __getitem__(self, split: str) -> tf.data.Dataset:
        return self.datasets[split]

    def summary(self) -> str:
        return "\n".join(str(report) for report in self.reports.values())


def make_datasets(
    frame: pd.DataFrame,
    vocabulary: Vocabulary | None = None,
    batch_size: int = config.BATCH_SIZE,
    eval_batch_size: int | None = None,
    augment: bool = True,
    cache: str | None = None,
    seed: int | None = None,
    verbose: bool = True,
    splits: tuple[str, ...] = config.SPLITS,
    training_split: str = "train",
) -> Datasets:
    """Train, validation and test datasets from the index (``load_index()``), in one call.

    The vocabulary defaults to :func:`vocabulary_for` (training words, saved in artifacts/).
    Only the training split is shuffled and augmented. Dropped words are counted per split.
    ``batch_size`` is the training batch; validation and test come in batches of ``eval_batch_size``
    (default: the same; without gradients to keep, larger batches just mean fewer steps).
    Other data name their own ``splits`` and ``training_split``: DHSD's are ``config.DHSD_SPLITS``
    and ``"finetune"`` (its vocabulary must then be given: the model's).
    Raises EmptySplitError, before anything is saved, when a split has no usable word.
    """
    usable = usable_words(frame)["split"].value_counts()
    empty = [split for split in splits if not usable.get(split, 0)]
    if empty:
        raise EmptySplitError(
            f"no usable word (status {'/'.join(config.TRAIN_STATUSES)}, a readable image) in the split(s) {', '.join(empty)} "
            f"of this index of {len(frame):,} words: {CHECK_HINT}"
        )
    vocabulary = vocabulary or vocabulary_for(frame, verbose=verbose)
    datasets, words, reports = {}, {}, {}
    for split in splits:
        words[split], reports[split] = select_words(frame, split, vocabulary)
        training = split == training_split
        datasets[split] = make_dataset(
            words[split], vocabulary, training=training, batch_size=batch_size if training else eval_batch_size or batch_size,
            augment=augment and training, cache=cache, seed=seed, name=split,
        )
    result = Datasets(vocabulary, datasets, words, reports)
    if verbose:
        print(result.summary())
    return result
