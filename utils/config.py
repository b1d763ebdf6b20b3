"""Every constant of the series in one place: paths, image geometry, character set, sizes.

Environment overrides (read when called, so a notebook or a test can set them late):
``HTR_QUICK=1`` shrinks data and epochs; ``HTR_DATA_DIR`` points at an IAM copy;
``HTR_ARTIFACTS_DIR`` moves what the series writes; ``HTR_DOWNLOAD=kaggle`` opts in
to downloading IAM from Kaggle, into ``HTR_KAGGLE_DIR`` (default data/kaggle); ``HTR_SPLIT_DIR``
names a folder of split files (a published split); ``HTR_SEED`` changes the seed of everything random;
``HTR_SKIP_TRAINING=1`` makes chapter 04 use the shipped models instead of training.
A blank value means unset, for every one of them (:func:`env_setting`).
"""

from __future__ import annotations

import os
from pathlib import Path

from utils.cli import whole_number

# --- Paths -------------------------------------------------------------------
# Where Colab clones the series from: every chapter's first cell holds this same URL (tests/test_notebooks.py).
REPO_URL = "https://github.com/htr-notebooks/handwriting-recognition"
REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"  # git-ignored: datasets (IAM, the generated mini-IAM)
FONTS_DIR = Path(__file__).resolve().parent / "fonts"
TEST_DATA_DIR = REPO_ROOT / "test_data"


def display_path(path: Path | str) -> str:
    """A path as messages show it: relative to the repository when inside it, else absolute.

    Never raises: a path that cannot be resolved (a symlink loop raises RuntimeError, a
    missing permission OSError) is shown made absolute but not resolved.
    """
    try:
        path = Path(path).resolve()
    except (OSError, RuntimeError):
        path = Path(os.path.abspath(path))
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def artifacts_dir() -> Path:
    """Folder for everything the series produces (index, vocabulary, models, logs).

    Quick mode writes to artifacts/quick/, so a test run never replaces a full run's model.
    """
    chosen = env_setting("HTR_ARTIFACTS_DIR")
    if chosen is not None:
        return Path(chosen)
    return REPO_ROOT / "artifacts" / "quick" if quick_mode() else REPO_ROOT / "artifacts"


def env_flag(name: str) -> bool:
    """True when environment variable ``name`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def quick_mode() -> bool:
    """True when ``HTR_QUICK`` is set to a true value: CI and impatient learners."""
    return env_flag("HTR_QUICK")


def skip_training() -> bool:
    """True when ``HTR_SKIP_TRAINING`` is set: chapter 04 reads with the shipped models instead of training them.

    For a class, or a machine too slow to train; chapter 04's ``SKIP_TRAINING = True`` does the same.
    CI runs chapter 04 both ways.
    """
    return env_flag("HTR_SKIP_TRAINING")


class SettingError(ValueError):
    """An environment setting (``HTR_*``) that cannot be used; the message names it and says what it takes."""


def env_setting(name: str) -> str | None:
    """The value of environment variable ``name`` without surrounding blanks; None when unset or blank.

    Every ``HTR_*`` reader goes through here, so ``HTR_DATA_DIR=" "`` means unset, like an empty value.
    """
    value = os.environ.get(name, "").strip()
    return value or None


def data_dir_setting() -> Path | None:
    """The dataset folder the user chose with ``HTR_DATA_DIR``, or None. A relative path that is not there from here
    but is from the repository's root is taken from there: ``HTR_DATA_DIR=copiste make run`` runs the chapters in
    notebooks/."""
    value = env_setting("HTR_DATA_DIR")
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


def seed() -> int:
    """The seed of every random choice in the series (``HTR_SEED``, default 42).

    Raises SettingError naming HTR_SEED when it is not a whole number from 0 to MAX_SEED.
    """
    value = env_setting("HTR_SEED")
    if value is None:
        return 42
    try:
        number = whole_number(value)
    except ValueError:
        number = MAX_SEED + 1
    if number > MAX_SEED:
        raise SettingError(f"HTR_SEED={value!r} is not a seed: use a whole number from 0 to {MAX_SEED}, or unset it")
    return number


# --- The IAM Handwriting Word Database ----------------------------------------
# 78 symbols: the characters of IAM's word transcriptions.
IAM_CHARSET = "!\"#&'()*+,-./0123456789:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
IAM_WORD_COUNT = 115_320  # lines of words.txt that describe a word
IAM_OK_WORD_COUNT = 96_456  # of which segmented "ok"; the rest are "err"
IAM_ERR_FRACTION = 1 - IAM_OK_WORD_COUNT / IAM_WORD_COUNT  # 16.4%
IAM_WRITERS = 657
IAM_MAX_WORD_LENGTH = 21
KAGGLE_DATASET = "nibinv23/iam-handwriting-word-database"
# A published split (one form, line or word id per line) is read from a folder holding files per split,
# under any of these names: ours; the IAM line task's (largeWriterIndependentTextLineRecognitionTask:
# validationset1 + validationset2 make one validation split); the Aachen (RWTH) lists as Laia ships them
# (tr/va/te.lst) and as Kaldi's recipe does (*.uttlist); and IAM-A..D of shonenkov/IAM-Splitting (valid.txt).
SPLIT_FILE_NAMES = {
    "train": ("train.txt", "trainset.txt", "tr.lst", "train.lst", "train.uttlist"),
    "validation": ("validation.txt", "valid.txt", "validationset1.txt", "validationset2.txt", "va.lst", "valid.lst",
                   "validation.lst", "validation.uttlist"),
    "test": ("test.txt", "testset.txt", "te.lst", "test.lst", "test.uttlist"),
}  # fmt: skip
# Known broken images of the real IAM (empty files); the loader reports and skips them.
IAM_KNOWN_EMPTY_IMAGES = ("a01-117-05-02", "r06-022-03-05")

# Fractions of words in train / validation / test when no split file is given.
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
SPLITS = tuple(SPLIT_FRACTIONS)

# --- The synthetic mini-IAM (the embedded default) -----------------------------
SYNTHETIC_WORDS = 10_000  # the learner's default: enough to train a reader of unseen writers
SYNTHETIC_WORDS_QUICK = 1_200  # HTR_QUICK: the whole series in minutes on 2 cores
# Fonts held out of training: the "unseen writers" of validation and test.
SYNTHETIC_VALIDATION_FONTS = ("architects-daughter", "covered-by-your-grace", "patrick-hand", "playwrite-dk-loopet",
                              "yellowtail", "edu-tas-beginner", "just-another-hand", "zeyada")
SYNTHETIC_TEST_FONTS = ("indie-flower", "kalam", "schoolbell", "playwrite-us-trad", "parisienne",
                        "edu-nsw-act-cursive", "nothing-you-could-do", "la-belle-aurore")


# What real pages and phone photos add to a word, as the share of synthetic words that get each
# (utils.synthetic.render_word): pen pressure along the word, a drifting baseline, paper texture,
# ruled or squared paper, uneven light and shadows, a loose crop with pieces of the neighbouring
# lines, IAM's thresholded look (paper set to white) and JPEG compression. The shares are first
# choices; the README's ablation says what each is worth on the real validation writers.
SYNTHETIC_REALISM = {
    "pressure": 0.5,
    "drift": 0.5,
    "texture": 0.3,
    "ruled": 0.15,
    "squared": 0.05,
    "shadow": 0.2,
    "loose_crop": 0.3,
    "threshold": 0.2,
    "jpeg": 0.2,
}


def synthetic_word_count() -> int:
    """How many words the generated mini-IAM has in the current mode."""
    return SYNTHETIC_WORDS_QUICK if quick_mode() else SYNTHETIC_WORDS


# --- Real handwriting: the DHSD subset shipped in dhsd/ (utils/dhsd.py) -----------------
# 1,710 handwritten German place names by 35 writers (CC BY 4.0, credit in dhsd/README.md), split by
# writer in dhsd/splits/: the yardstick for reading real hands that fonts cannot be.
DHSD_DIR = REPO_ROOT / "dhsd"
COPISTE_DIR = REPO_ROOT / "copiste"  # real words cut from Copiste d'un jour's lines, in IAM's layout (utils.realwords)
COPISTE_MAX_BYTES = 23_500_000  # the images of the shipped subset; with words.txt, within the 25 MB it is given
DHSD_SPLITS = ("finetune", "validation", "test")


# Lines TensorFlow's C++ code writes to stderr that say nothing to a learner: the notebooks drop them
# (utils.setup.drop_native_notices) and pass every other line. The DT_BOOL notice comes at the first training step
# with the CTC loss, even on CPUs that have AVX-512.
NATIVE_NOTICES = ("oneDNN supports DT_BOOL only on platforms with AVX-512",)

# --- Figures (utils/plots.py) ---------------------------------------------------
# One style for the series, readable on a projector: fonts of at least 12 pt, a colour-blind-safe palette.
FIGURES_DIR = "figures"  # in artifacts/: every figure a chapter draws, as a PNG (plots.save_fig)
FIGURE_DPI = 300  # saved files, for slides and print (handson-ml3 saves at 300 too)
SCREEN_DPI = 100  # inline in the notebook
FONT_SIZE = 13  # points: labels and ticks; titles are 1.2 times larger
PALETTE = "colorblind"  # seaborn's colour-blind-safe palette (Okabe-Ito-like hues)


# --- Images and the model ------------------------------------------------------
IMAGE_HEIGHT = 64
IMAGE_WIDTH = 128
TIME_STEPS = 31  # width of the CRNN's output sequence for a 128-wide input

# --- Preprocessing (utils/preprocess.py) -----------------------------------------
# A crop's paper colour is this percentile of its gray values (most of a word crop is paper);
# its ink is the low one. Contrast normalisation stretches ink..paper to 0..1.
PAPER_PERCENTILE = 90
INK_PERCENTILE = 2
# "normalize": whiten everything lighter than IAM's gray level (the threshold IAM binarized
# the line with) when the word has one, else stretch ink..paper; "binarize": black and white
# at that threshold; "none": only scale to [0, 1].
CONTRAST = "normalize"
# Where the resized word sits in the 128 x 64 frame: "left" (like text on a line) or "center".
PAD_POSITION = "left"
# The most a small crop is enlarged: a full stop must not become as tall as an "o".
MAX_UPSCALE = 2.0
# Crop every image to its ink (plus this margin in pixels) before the resize: users' words come in
# larger canvases, with margins, ruled lines and bits of the lines above and below, and the model was
# only ever shown tight crops (measured when filing issue 11, DHSD words: CER 67% -> 51%). Read when called, so a notebook
# or a test can switch it; training and prediction both crop (preprocess_image).
INK_CROP = True
INK_CROP_MARGIN = 4

# --- Augmentation of the training split (utils/preprocess.py) -------------------------
# name: (probability that an image gets it, (low, high) of its uniformly drawn strength).
AUGMENTATION = {
    "shear": (0.5, (-0.35, 0.35)),  # slant: horizontal shift per pixel of height
    "rotation": (0.3, (-3.0, 3.0)),  # degrees
    "scale": (0.5, (0.85, 1.05)),  # zoom around the centre
    "shift_x": (0.3, (-2.0, 6.0)),  # pixels; words sit on the left, so mostly rightwards
    "shift_y": (0.3, (-4.0, 4.0)),  # pixels
    "elastic": (0.5, (0.0, 1.5)),  # pixels of smooth, random displacement (a grid distortion)
    "stroke": (0.4, (-0.5, 0.7)),  # <0 thins the ink, >0 thickens it (3x3 erosion/dilation, blended)
    "blur": (0.3, (0.4, 1.0)),  # Gaussian sigma in pixels
    "noise": (0.4, (0.0, 0.06)),  # standard deviation of the pixel noise
    "brightness": (0.4, (-0.10, 0.08)),  # added to every pixel
    "contrast": (0.4, (0.6, 1.15)),  # ink darkness multiplier (1 keeps it)
}
ELASTIC_GRID = (3, 9)  # rows, columns of the coarse random displacement field

# --- Encoding and the input pipeline (utils/encoding.py, utils/pipeline.py) ------------
VOCABULARY_FILE = "vocabulary.txt"  # in artifacts/: one token per line, line k is id k, line 0 the blank
LABEL_WIDTH = TIME_STEPS  # padded label width: every word that fits 31 CTC steps fits here
BATCH_SIZE = 64
EVAL_BATCH_SIZE = 256  # validation and test: no gradients to keep, so fewer, larger steps
SHUFFLE_BUFFER = 4096  # images (8 KB each once cached): enough to mix, bounded whatever the data size
PIPELINE_CACHE = "disk"  # "disk" (artifacts/cache/, bounded memory), "memory" or "none"
TRAIN_STATUSES = ("ok",)  # words.txt segmentation results the series trains and evaluates on

# --- The model (utils/model.py) ------------------------------------------------------------
# "paper" is the reference CRNN (10.8 M parameters; about 15 images/s of training on 2 CPU cores);
# "compact" has the same layers at a quarter of the convolution widths (about 13x faster).
PRESET_CPU = "compact"
PRESET_GPU = "paper"
COMPACT_LSTM_UNITS = 64  # per direction; the paper preset has 256
# Batch normalisation after which convolutions: "table" = 5 and 6, as the reference; "all" = every one
# but the last. Chapter 04 trains with "all": on the mini-IAM the CTC loss leaves its all-blank plateau
# in about half the epochs (measured: validation CER 46% after 4 epochs against 83% with "table").
BATCH_NORM = "all"
# How much of the running mean and variance each batch leaves (Keras' default is 0.99): 0.9, as in
# PyTorch and the original CRNN code, lets the statistics used at inference keep up with weights
# that change fast early in training; with 0.99 the validation CER jumped between epochs.
BATCH_NORM_MOMENTUM = 0.9
# Training kernels on a CPU (utils.model.use_fast_kernels, utils.training.CTCLoss): batch normalisation on
# TensorFlow's fused kernel, the LSTMs unrolled over their 31 steps, the CTC loss on TensorFlow's native kernel.
# The same arithmetic as Keras' own layers and loss, 1.35x (batches of 64) to 1.7x (chapter 04's) the training
# images/s on 2 CPU cores (python bench/speed.py); False keeps Keras' kernels (the comparison's old path). Off on a
# GPU or TPU: cuDNN's LSTM needs the loop, and the native CTC kernel runs on the CPU only. Quick mode keeps the loop.
FAST_CPU_KERNELS = True

# --- Training (utils/training.py) ---------------------------------------------------------
# The regularised configuration of chapter 04; its baseline turns augmentation and all of these off.
TRAIN_BATCH_SIZE = 32  # twice the updates per epoch of 64 for 10% less speed on a CPU: faster learning per minute
DROPOUT = 0.25  # on the sequence, before each BiLSTM
WEIGHT_DECAY = 1e-4  # AdamW's decoupled weight decay (0: plain Adam)
LEARNING_RATE = 1e-3
# Without a time budget: "plateau" halves the rate when the validation loss stalls, "cosine" decays it
# over the epochs. With a budget (chapter 04, the benchmark) the rate stays at LEARNING_RATE, then
# follows a cosine down to LR_MIN over the last LR_DECAY_FRACTION of the budget.
LR_SCHEDULE = "plateau"
LR_DECAY_FRACTION = 0.4
LR_PLATEAU_PATIENCE = 3  # epochs without a lower validation loss before the rate is halved
LR_MIN = 1e-5
EPOCHS = 60  # at most; early stopping or the time budget usually ends sooner
EPOCHS_QUICK = 3  # quick mode (CI): enough to show every cell runs, inside the test budget
# Chapter 04's wall-clock budgets on a CPU (minutes; None: no limit). Quick mode uses EPOCHS_QUICK instead.
TRAIN_MINUTES = 15.0  # the regularised run
BASELINE_MINUTES = 10.0  # the baseline run: enough epochs for its overfitting to show
EARLY_STOPPING_PATIENCE = 8  # epochs without a better validation CER before training stops
TRAIN_CER_WORDS = 512  # training words (not augmented) decoded each epoch for the training CER curve
MODELS_DIR = "models"  # in artifacts/: one folder per run (model.keras, vocabulary.txt, history.csv)
# Training a run again moves the finished one aside as <run>.<time>; only this many earlier copies of a run are kept.
EARLIER_RUNS_KEPT = 1


# The models the series ships (utils.pretrain): read by utils.predict when no --model is given.
SHIPPED_MODELS_DIR = REPO_ROOT / "models"
SHIPPED_MODEL = SHIPPED_MODELS_DIR / "crnn.keras"  # fine-tuned on the DHSD fine-tuning writers
SHIPPED_SYNTHETIC_MODEL = SHIPPED_MODELS_DIR / "synthetic-only.keras"  # the same before fine-tuning: fonts alone

# Fine-tuning a synthetic model on real writers (utils.training.fine_tune; chapter 04, utils.pretrain).
# Chosen with bench/finetune.py on the DHSD validation writers (README, Results): 1e-3 reads real writers better
# than 3e-4 in minutes of CPU; half of the batches rehearsing synthetic words keeps the fonts (and lower case).
FINETUNE_LEARNING_RATE = 1e-3  # training's starting rate: the cosine had ended far below it
FINETUNE_FREEZE_CONVOLUTIONS = False  # True trains only the BiLSTMs and the output layer
FINETUNE_MINUTES = 8.0
FINETUNE_EPOCHS_QUICK = 1  # HTR_QUICK: one pass over the real words shows the step runs (CI's time budget)
FINETUNE_PATIENCE = 15  # epochs are short (a thousand words), so wait longer before stopping
FINETUNE_REHEARSAL = 0.5  # share of fine-tuning batches drawn from the synthetic words (utils.training.with_rehearsal)


def epochs() -> int:
    """Most epochs a chapter-04 run trains in the current mode."""
    return EPOCHS_QUICK if quick_mode() else EPOCHS


def minutes(budget: float | None) -> float | None:
    """A chapter-04 time budget in the current mode: quick mode counts epochs, not minutes."""
    return None if quick_mode() else budget


# --- Devices, precision and XLA (utils/devices.py) -------------------------------------------------
# Keras dtype policy: "auto" = mixed_float16 on a GPU, mixed_bfloat16 on a TPU (and on a CPU with native
# bfloat16 when MIXED_PRECISION_CPU), else float32; or a policy name to force one.
MIXED_PRECISION = "auto"
# Off: on an AVX-512 BF16 CPU bfloat16 made the model's step 1.4-1.7x faster but chapter 04's whole loop only
# 10% (augmentation and validation share the cores), at the same accuracy; most CPUs have no native bfloat16.
MIXED_PRECISION_CPU = False
# XLA: "auto" = off on a CPU (measured slower), Keras' choice on a GPU or TPU; True or False to force it.
JIT_COMPILE = "auto"

# --- Decoding (utils/decoding.py) ---------------------------------------------------------
BEAM_WIDTH = 10
# The lexicon step replaces a prediction by the nearest known word when at most this fraction
# of its characters (at least one) would change.
LEXICON_MAX_EDIT_FRACTION = 0.25

# --- Limits on input (issue 12) ---
# The paper preset holds 10.8 million float32 weights (about 43 MB): a file far larger is not a model of this series.
MAX_MODEL_BYTES = 500_000_000
# A .tflite file is first opened and run once in a child process (utils.export.check_tflite_file): this long at most.
TFLITE_PROBE_SECONDS = 120
# A model or training backup found damaged (a kill mid-write) is renamed <name>.<DAMAGED_TAG>-<time>: kept.
DAMAGED_TAG = "damaged"
# HTR_SEED (config.seed) at most this: numpy's and pandas' RandomState take seeds below 2**32.
MAX_SEED = 2**32 - 1
# Pixels (width x height) of an image that any reader accepts, checked from the header before decoding (predict,
# preprocess.decode_gray, utils.iam's check through Pillow). 8192 x 8192: more than a phone photo of a word needs (48
# megapixels is 8000 x 6000); decoding an RGBA file takes about 45 bytes a pixel (3.9 GB at 81 megapixels, measured).
MAX_IMAGE_PIXELS = 2**26
# Bytes of an image file that predict reads, checked before it is read (its first bytes must be an image's): a 48
# megapixel phone JPEG is about 15 MB, a 16-bit PNG at MAX_IMAGE_PIXELS up to 512 MB uncompressed. A 1.5 GB video named
# .png once took 3.8 GB of memory before it was refused.
MAX_IMAGE_FILE_BYTES = 256_000_000
# Bytes of a --lexicon file: a word list of every IAM, Wikipedia or dictionary word is a few MB.
MAX_LEXICON_BYTES = 64_000_000
# Widest CTC beam predict accepts, ten times BEAM_WIDTH: the time grows with the width (one word on a CPU: 0.1 s at
# 100, 1.2 s at 1000, measured; 98 s at 100000 in issue 12).
MAX_BEAM_WIDTH = 100
# A model input whose pixels all lie within this of each other has no ink (transparent, uniform): predict refuses it.
BLANK_MAX_SPREAD = 2 / 255

# --- Your own handwriting (utils/handwriting.py, chapter 04 section 9) ---
# A photo of a line is split into words at its widest gaps (handwriting.split_line_into_words), in heights of the
# writing's band (its x-height): gaps from WORD_GAP_MIN to WORD_GAP_MAX band heights are cut at the largest jump between
# one and the next narrower; wider ones always cut, narrower ones never. Thin strokes straight over UNDERLINE_LENGTH band
# heights are underlines. Chosen on 150 real Copiste lines that are not the measured ones (bench/line_split.py --dev 150):
# the right word count on 29% of them (other bounds from 0.5 to 1.5 and 1.25 to 4 gave 13-32%), 26% of the 50 measured
# (the earlier splitter, runs of empty columns over 0.7 band heights: 6%). Gap widths alone cannot do much better there:
# on only 45-52% of those lines is every word gap 1.2 times wider than every gap inside a word.
WORD_GAP_MIN = 1.0
WORD_GAP_MAX = 2.25
UNDERLINE_LENGTH = 6.0
WORD_MARGIN = 6  # pixels of paper kept around each word cut from a line

# --- Real lines into words (utils/wordsplit.py, python -m utils.realwords) ---
# Where the word reader's alignment says two words meet, the widest gap between pieces of ink there is the cut. It is
# sure when at least SPLIT_MIN_GAP band heights wide and SPLIT_GAP_RATIO times any other gap there; a word is kept
# (ok) when both its cuts are sure and the reader, reading its crop alone, misses at most SPLIT_MAX_CER of its letters.
SPLIT_MIN_GAP = 0.2
SPLIT_GAP_RATIO = 1.5
SPLIT_MAX_CER = 0.5
# Blobs of ink outside the line's pieces that start this many band heights below its baseline are the next line's
# ascenders, which the line's polygon kept: a word's crop paints them out.
STRAY_BELOW_BASELINE = 0.5
DRAWING_PAD_SIZE = (640, 200)  # width, height in CSS pixels: a word written large, as on paper
DRAWING_STROKE = 7  # pen width in pixels
