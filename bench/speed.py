"""Speed benchmark: training and inference images/s of both presets, against the CPU's fp32 peak.

    python bench/speed.py [--batch 64] [--paper-steps 6] [--compact-steps 8] [--rounds 6] [--ablation] [--mixed POLICY] [--no-switches]

The peak is measured here, in the same run: the best GFLOP/s of a large float32 matmul (4096 x 4096),
which is what a CPU does at its fastest. Each model's FLOPs per image are counted from its layers
(a multiply-add is 2 FLOPs; a training step is forward + backward, about 3x the forward FLOPs);
achieved GFLOP/s = FLOPs per image x images/s, and the ratio is that over the peak.
The compact preset (batch 64) and chapter 04's configuration of it are timed on both code paths, in
alternating rounds so that the machine's drift falls on both alike: Keras' kernels
(``config.FAST_CPU_KERNELS = False``, the code before the fast kernels) and the fast kernels
(``utils.model.use_fast_kernels``, ``utils.training.CTCLoss``); ``--ablation`` adds each fast kernel alone.
Then where the compact training step's time
goes, from TensorFlow's profiler: each operation's time summed by what it belongs to (convolutions, batch
norm, BiLSTMs, CTC loss, optimizer...), and the time the cores sat idle. Then a profile of the paper
preset's training step: its convolutional trunk and its recurrent head (BiLSTMs + dense) timed separately,
each with its own FLOPs and ratio. Batches are ready tensors in memory (``train_on_batch``), so the input
pipeline and augmentation cost nothing here: bench/pipeline.py measures them.
Then the speed switches (skip them with ``--no-switches``): both presets again with XLA (``jit_compile``),
with mixed precision (``--mixed``, default mixed_float16 on a GPU, mixed_bfloat16 on a CPU) and with both,
each as a ratio to plain float32. On a GPU the peak and the profile are the GPU's, measured the same way.

Prints a table, then one JSON line with: peak_gflops, paper_train_img_s, paper_train_gflops,
paper_train_ratio, paper_infer_img_s, paper_infer_gflops, compact_train_img_s, compact_train_gflops,
compact_train_ratio, compact_infer_img_s (fast kernels), compact_keras_train_img_s, compact_keras_train_ratio,
compact_speedup, chapter_train_img_s, chapter_keras_train_img_s, chapter_speedup, chapter_train_ratio,
compact_profile and chapter_profile (share of the step's time per part, both paths), with --ablation
ablation (each variant's speed-up over keras, compact_x and chapter_x), the paper profile
(paper_conv_*, paper_rnn_*), and for the switches
{preset}_{xla,mixed,mixed_xla}_train_img_s, _train_x and _infer_x (speed-ups over float32), mixed_policy, device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHARACTERS = 78  # IAM's character set: the output layer of the real task
TRAIN_FACTOR = 3  # backward pass = 2x forward (gradients for inputs and for weights)


def forward_flops(model) -> dict[str, int]:
    """FLOPs of one image's forward pass, per kind of layer (a multiply-add counts 2)."""
    from keras import layers

    flops = {"conv": 0, "rnn": 0, "dense": 0}
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            height, width, filters = layer.output.shape[1:]
            kh, kw = layer.kernel_size
            flops["conv"] += 2 * kh * kw * layer.input.shape[-1] * filters * height * width
        elif isinstance(layer, layers.Bidirectional):
            steps, features = layer.input.shape[1:]
            units = layer.forward_layer.units
            flops["rnn"] += 2 * steps * 2 * 4 * units * (features + units)  # 2 directions, 4 gates
        elif isinstance(layer, layers.Dense):
            steps, features = layer.input.shape[1:]
            flops["dense"] += 2 * steps * features * layer.units
    return flops


def matmul_peak(size: int = 4096, repeats: int = 10) -> float:
    """Best GFLOP/s of a float32 size x size matmul (the CPU's practical fp32 peak)."""
    import tensorflow as tf

    a = tf.random.uniform((size, size))
    b = tf.random.uniform((size, size))
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def images_per_second(step, batch: int, steps: int) -> float:
    """Images/s of ``step()`` (one batch each), after two warm-up steps; the median of 3 blocks of steps."""
    step(), step()
    rates = []
    block = max(1, steps // 3)
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(block):
            step()
        rates.append(batch * block / (time.perf_counter() - start))
    return sorted(rates)[1]


def random_batch(batch: int) -> tuple:
    """Random images and labels of 8 characters: a ready batch."""
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.random((batch, 64, 128, 1), dtype=np.float32)
    labels = rng.integers(1, CHARACTERS + 1, (batch, 31)).astype(np.int32)
    labels[:, 8:] = 0  # words of 8 characters
    return images, labels


def compiled_model(preset: str, batch_norm: str = "table", policy: str = "float32", xla: bool = False, fast: bool | None = None):
    """The preset as ``train_crnn`` trains it, compiled: on the fast kernels where this machine uses them
    (``fast=None``), or on Keras' own with ``fast=False`` (the code path before the fast kernels)."""
    import keras

    from utils.devices import use_precision
    from utils.model import build_crnn, fast_kernels_here, use_fast_kernels
    from utils.training import compile_crnn

    keras.utils.set_random_seed(0)
    fast = fast_kernels_here() if fast is None else fast
    try:
        use_precision(policy)
        # XLA cannot compile cuDNN's LSTM kernel (Keras would quietly turn XLA off): use the plain loop then.
        model = build_crnn(preset, CHARACTERS, dropout=0.25, batch_norm=batch_norm, use_cudnn=False if xla else "auto")
    finally:
        use_precision("float32")
    use_fast_kernels(model, fast=fast and not xla)
    compile_crnn(model, jit_compile=xla)
    model.loss.native = fast and not xla
    return model


def measure(preset: str, batch: int, steps: int, batch_norm: str = "table", policy: str = "float32", xla: bool = False) -> dict:
    """Training and inference speed of one preset under a dtype policy, with or without XLA."""
    images, labels = random_batch(batch)
    model = compiled_model(preset, batch_norm, policy, xla)
    train = images_per_second(lambda: model.train_on_batch(images, labels), batch, steps)
    infer = images_per_second(lambda: model.predict_on_batch(images), batch, steps * 2)
    flops = model_flops(model)
    forward = flops["forward_mflops"] * 1e6
    return {**flops, **rates(train, forward), "infer_img_s": infer, "infer_gflops": infer * forward / 1e9}


def model_flops(model) -> dict:
    flops = forward_flops(model)
    forward = sum(flops.values())
    return {"parameters": model.count_params(), "forward_mflops": forward / 1e6, "flops_share": {k: v / forward for k, v in flops.items()}}


def rates(train_img_s: float, forward: float) -> dict:
    return {"train_img_s": train_img_s, "train_gflops": train_img_s * TRAIN_FACTOR * forward / 1e9}


# The fast kernels one at a time (--ablation): which of Keras' kernels each variant keeps.
ABLATION = {
    "keras": {"ctc": False, "batch_norm": False, "unroll": False},
    "native CTC": {"ctc": True, "batch_norm": False, "unroll": False},
    "fused batch norm": {"ctc": False, "batch_norm": True, "unroll": False},
    "CTC + batch norm": {"ctc": True, "batch_norm": True, "unroll": False},
    "fast": {"ctc": True, "batch_norm": True, "unroll": True},
}


def partly_fast(preset: str, batch_norm: str, ctc: bool, batch_norm_fused: bool, unroll: bool):
    """The compiled preset with only some of the fast kernels (the ablation)."""
    from keras import layers

    model = compiled_model(preset, batch_norm, fast=True)
    model.loss.native = ctc
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization) and not batch_norm_fused:
            del layer.call
        if isinstance(layer, layers.Bidirectional):
            layer.forward_layer.unroll = layer.backward_layer.unroll = unroll
    return model


def compare_paths(preset: str, batch: int, batch_norm: str, steps: int, rounds: int, ablation: bool = False) -> dict[str, dict]:
    """Training images/s on Keras' kernels and on the fast ones (with ``ablation``, also each fast kernel alone and
    the CTC loss with batch norm), in alternating rounds of ``steps`` steps; the medians."""
    import statistics
    import time

    images, labels = random_batch(batch)
    models = {"keras": compiled_model(preset, batch_norm, fast=False)}
    if ablation:
        models.update({name: partly_fast(preset, batch_norm, kernels["ctc"], kernels["batch_norm"], kernels["unroll"])
                       for name, kernels in ABLATION.items() if name not in ("keras", "fast")})  # fmt: skip
    models["fast"] = compiled_model(preset, batch_norm)
    for model in models.values():
        for _ in range(3):  # tracing and warm-up
            model.train_on_batch(images, labels)
    measured = {path: [] for path in models}
    for _ in range(rounds):
        for path, model in models.items():
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(images, labels)
            measured[path].append(batch * steps / (time.perf_counter() - start))
    forward = model_flops(models["fast"])["forward_mflops"] * 1e6
    result = {}
    for path, model in models.items():
        infer = images_per_second(lambda model=model: model.predict_on_batch(images), batch, steps * 2) if path in ("keras", "fast") else 0.0
        result[path] = {**model_flops(model), **rates(statistics.median(measured[path]), forward), "rounds": measured[path],
                        "infer_img_s": infer, "infer_gflops": infer * forward / 1e9}  # fmt: skip
    return result


# Where an operation of the compact step belongs, from its name in TensorFlow's profile (first match wins).
PROFILE_PARTS = (
    ("convolutions", r"/conv\d|/relu\d"),  # a convolution fused with its ReLU is named after the ReLU
    ("batch norm", r"/bn\d"),
    ("max pooling", r"/pool\d"),
    ("BiLSTMs", r"/bilstm\d|/dropout\d|/columns_first|/map_to_sequence"),
    ("output layer", r"/logits"),
    ("optimizer", r"adamw?/|Assign(Add|Sub)?VariableOp"),
    ("CTC loss", r"ctc|ReduceLogSumExp|SparseTensor|^(add|mul|sub|while)(_\d+)?(/|$)|CTCLoss"),
)


def profile_step(preset: str, batch: int, batch_norm: str, fast: bool, steps: int = 10) -> dict[str, float] | None:
    """Share of a training step's time per part (``PROFILE_PARTS``, "other", and "idle": a core waiting), from
    TensorFlow's profiler; None where this TensorFlow cannot turn its trace into operation statistics."""
    import glob
    import re
    import tempfile

    import tensorflow as tf

    images, labels = random_batch(batch)
    model = compiled_model(preset, batch_norm, fast=None if fast else False)
    for _ in range(3):
        model.train_on_batch(images, labels)
    with tempfile.TemporaryDirectory() as folder:
        tf.profiler.experimental.start(folder)
        for _ in range(steps):
            model.train_on_batch(images, labels)
        tf.profiler.experimental.stop()
        try:
            from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

            data, _ = plugin.xspace_to_tools_data(glob.glob(f"{folder}/**/*.xplane.pb", recursive=True), "framework_op_stats", {})
            table = json.loads(data)[0]
        except Exception:  # noqa: BLE001 - an internal API of TensorFlow's: the table is left out, not the benchmark
            return None
    columns = [column["id"] for column in table["cols"]]
    shares = {name: 0.0 for name, _ in PROFILE_PARTS} | {"other": 0.0, "idle": 0.0}
    for row in table["rows"]:
        op = dict(zip(columns, (cell.get("v") for cell in row["c"])))
        name = op["operation"].split("/", 1)[1] if op["operation"].startswith("gradient_tape/") else op["operation"]
        part = "idle" if op["type"] == "IDLE" else next((part for part, pattern in PROFILE_PARTS if re.search(pattern, name)), "other")
        shares[part] += op["total_self_time"]
    total = sum(shares.values())
    return {part: time / total for part, time in shares.items()}


def profile_paper(batch: int, steps: int) -> dict:
    """The paper preset's training step split in two: the convolutional trunk and the recurrent head."""
    import keras
    import numpy as np

    from utils.model import build_crnn

    model = build_crnn("paper", CHARACTERS)
    flops = forward_flops(model)
    sequence = model.get_layer("map_to_sequence").output
    trunk = keras.Model(model.input, sequence)
    head_input = keras.Input(sequence.shape[1:])
    x = head_input
    for name in ("bilstm1", "bilstm2", "logits"):
        x = model.get_layer(name)(x)
    head = keras.Model(head_input, x)
    rng = np.random.default_rng(0)
    images = rng.random((batch, 64, 128, 1), dtype=np.float32)
    features = rng.standard_normal((batch, *sequence.shape[1:])).astype(np.float32)
    result = {}
    for name, part, inputs, part_flops in (
        ("conv", trunk, images, flops["conv"]),
        ("rnn", head, features, flops["rnn"] + flops["dense"]),
    ):
        part.compile(optimizer="adam", loss="mse")
        targets = np.zeros((batch, *part.output.shape[1:]), np.float32)
        rate = images_per_second(lambda: part.train_on_batch(inputs, targets), batch, steps)
        result[name] = {"train_img_s": rate, "train_gflops": rate * TRAIN_FACTOR * part_flops / 1e9,
                        "seconds_per_image": 1 / rate}  # fmt: skip
    return result


def speed_switches(args, plain: dict[str, dict], default_mixed: str) -> dict:
    """Both presets with XLA, mixed precision and both; a table of speed-ups over plain float32."""
    mixed = args.mixed or default_mixed
    variants = {"xla": ("float32", True), "mixed": (mixed, False), "mixed_xla": (mixed, True)}
    result = {"mixed_policy": mixed}
    print(f"\nSpeed switches (batch {args.batch}): speed-up over float32 without XLA; mixed = {mixed}")
    print(f"{'preset':<9} {'variant':<22} {'train img/s':>12} {'train x':>8} {'infer img/s':>12} {'infer x':>8}")
    for preset, steps in (("paper", args.paper_steps), ("compact", args.compact_steps)):
        base = plain[preset]
        print(f"{preset:<9} {'float32':<22} {base['train_img_s']:>12,.1f} {1:>8.2f} {base['infer_img_s']:>12,.1f} {1:>8.2f}", flush=True)
        for name, (policy, xla) in variants.items():
            row = measure(preset, args.batch, steps, policy=policy, xla=xla)
            train_x, infer_x = row["train_img_s"] / base["train_img_s"], row["infer_img_s"] / base["infer_img_s"]
            label = policy + (" + XLA" if xla else "")
            print(f"{'':<9} {label:<22} {row['train_img_s']:>12,.1f} {train_x:>8.2f} {row['infer_img_s']:>12,.1f} {infer_x:>8.2f}", flush=True)
            result.update({f"{preset}_{name}_train_img_s": round(row["train_img_s"], 1),
                           f"{preset}_{name}_train_x": round(train_x, 3), f"{preset}_{name}_infer_x": round(infer_x, 3)})  # fmt: skip
    return result


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--paper-steps", type=int, default=6, help="training steps timed for the paper preset")
    parser.add_argument("--compact-steps", type=int, default=8, help="training steps per round for the compact preset")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds of each code path (compact preset)")
    parser.add_argument("--mixed", default=None, help="mixed policy of the switches (default: mixed_float16 on a GPU, else mixed_bfloat16)")
    parser.add_argument("--no-switches", action="store_true", help="skip the XLA and mixed-precision rows")
    parser.add_argument("--ablation", action="store_true", help="also time each fast kernel alone (compact preset)")
    args = parser.parse_args()

    from utils.setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    from utils import config

    threads = os.cpu_count()
    peak = matmul_peak()
    paper = measure("paper", args.batch, args.paper_steps)
    compact = compare_paths("compact", args.batch, "table", args.compact_steps, args.rounds, args.ablation)
    chapter = compare_paths(config.PRESET_CPU, config.TRAIN_BATCH_SIZE, config.BATCH_NORM, args.compact_steps, args.rounds, args.ablation)
    profiles = {(name, path): profile_step(preset, batch, batch_norm, fast=path == "fast")
                for name, preset, batch, batch_norm in (("compact", "compact", args.batch, "table"),
                                                        ("chapter", config.PRESET_CPU, config.TRAIN_BATCH_SIZE, config.BATCH_NORM))
                for path in ("keras", "fast")}  # fmt: skip
    profile = profile_paper(args.batch, args.paper_steps)
    peak_again = matmul_peak(repeats=5)  # the machine may change speed during the run: report the best
    peak = max(peak, peak_again)

    gpus = tf.config.list_logical_devices("GPU")
    device = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU") if gpus else cpu_name()
    print(f"Speed: {device}, {threads} logical CPUs, TensorFlow {tf.__version__}, batch {args.batch}, float32")
    print(f"measured fp32 peak (4096 x 4096 matmul): {peak:,.0f} GFLOP/s")
    print()
    print(f"{'preset':<9} {'kernels':<7} {'params':>11} {'fwd MFLOP/img':>14} {'train img/s':>12} {'train GFLOP/s':>14} {'of peak':>8} "
          f"{'infer img/s':>12} {'infer GFLOP/s':>14} {'of peak':>8}")  # fmt: skip
    chapter_name = f"{config.PRESET_CPU}*"
    rows = [("paper", "fast", paper)] + [(name, path, runs[path]) for name, runs in (("compact", compact), (chapter_name, chapter))
                                         for path in ("keras", "fast")]  # fmt: skip
    for name, path, row in rows:
        print(f"{name:<9} {path:<7} {row['parameters']:>11,} {row['forward_mflops']:>14,.0f} {row['train_img_s']:>12,.1f} "
              f"{row['train_gflops']:>14,.1f} {row['train_gflops'] / peak:>8.1%} {row['infer_img_s']:>12,.1f} "
              f"{row['infer_gflops']:>14,.1f} {row['infer_gflops'] / peak:>8.1%}")  # fmt: skip
    print(f"(* as chapter 04 trains it on a CPU: batch norm {config.BATCH_NORM!r}, batches of {config.TRAIN_BATCH_SIZE})")
    print(f"kernels: keras = Keras' own (config.FAST_CPU_KERNELS = False), fast = utils.model.use_fast_kernels and "
          f"utils.training.CTCLoss;\nthe compact rows: medians of {args.rounds} alternating rounds of {args.compact_steps} steps per path")  # fmt: skip
    speedup = {name: runs["fast"]["train_img_s"] / runs["keras"]["train_img_s"] for name, runs in (("compact", compact), ("chapter", chapter))}
    print(f"fast / keras training speed: compact {speedup['compact']:.2f}x, {chapter_name} {speedup['chapter']:.2f}x")
    if args.ablation:
        print()
        print("Each fast kernel alone (training img/s, and x over keras, in the same alternating rounds):")
        print(f"{'kernels':<18} {'compact':>9} {'x':>6} {chapter_name:>9} {'x':>6}")
        for name in ABLATION:
            print(f"{name:<18} {compact[name]['train_img_s']:>9,.1f} {compact[name]['train_img_s'] / compact['keras']['train_img_s']:>6.2f} "
                  f"{chapter[name]['train_img_s']:>9,.1f} {chapter[name]['train_img_s'] / chapter['keras']['train_img_s']:>6.2f}")  # fmt: skip

    if all(profiles.values()):
        parts = list(next(iter(profiles.values())))
        print()
        print("Where the compact training step's time goes (TensorFlow's profiler, 10 steps): share of both cores' time;")
        print("idle = a core waiting for work")
        print(f"{'part':<14}" + "".join(f"{(chapter_name if name == 'chapter' else name) + ' ' + path:>16}" for name, path in profiles))
        for part in parts:
            print(f"{part:<14}" + "".join(f"{shares[part]:>16.1%}" for shares in profiles.values()))
    result = {
        "peak_gflops": round(peak, 1),
        "paper_train_img_s": round(paper["train_img_s"], 2),
        "paper_train_gflops": round(paper["train_gflops"], 1),
        "paper_train_ratio": round(paper["train_gflops"] / peak, 3),
        "paper_infer_img_s": round(paper["infer_img_s"], 1),
        "paper_infer_gflops": round(paper["infer_gflops"], 1),
        "compact_train_img_s": round(compact["fast"]["train_img_s"], 1),
        "compact_train_gflops": round(compact["fast"]["train_gflops"], 1),
        "compact_train_ratio": round(compact["fast"]["train_gflops"] / peak, 3),
        "compact_infer_img_s": round(compact["fast"]["infer_img_s"], 1),
        "compact_keras_train_img_s": round(compact["keras"]["train_img_s"], 1),
        "compact_keras_train_ratio": round(compact["keras"]["train_gflops"] / peak, 3),
        "compact_speedup": round(speedup["compact"], 3),
        "chapter_train_img_s": round(chapter["fast"]["train_img_s"], 1),
        "chapter_train_ratio": round(chapter["fast"]["train_gflops"] / peak, 3),
        "chapter_keras_train_img_s": round(chapter["keras"]["train_img_s"], 1),
        "chapter_speedup": round(speedup["chapter"], 3),
    }
    if args.ablation:
        result["ablation"] = {name: {"compact_x": round(compact[name]["train_img_s"] / compact["keras"]["train_img_s"], 3),
                                     "chapter_x": round(chapter[name]["train_img_s"] / chapter["keras"]["train_img_s"], 3)}
                              for name in ABLATION}  # fmt: skip
    for name in ("compact", "chapter"):
        result[f"{name}_profile"] = {path: {part: round(share, 3) for part, share in (profiles[name, path] or {}).items()}
                                     for path in ("keras", "fast")}  # fmt: skip
    share = paper["flops_share"]
    print()
    print(f"Profile of the paper preset's training step (FLOPs: conv {share['conv']:.0%}, BiLSTMs {share['rnn']:.0%}, "
          f"dense {share['dense']:.1%}):")  # fmt: skip
    total_seconds = sum(part["seconds_per_image"] for part in profile.values())
    for name, label in (("conv", "convolutional trunk"), ("rnn", "BiLSTMs + dense")):
        part = profile[name]
        print(f"  {label:<22} {part['train_img_s']:>8,.1f} img/s  {part['train_gflops']:>7,.1f} GFLOP/s  "
              f"{part['train_gflops'] / peak:>6.1%} of peak  {part['seconds_per_image'] / total_seconds:>5.0%} of the step time")  # fmt: skip
    result.update({
        "paper_conv_train_gflops": round(profile["conv"]["train_gflops"], 1),
        "paper_conv_ratio": round(profile["conv"]["train_gflops"] / peak, 3),
        "paper_rnn_train_gflops": round(profile["rnn"]["train_gflops"], 1),
        "paper_rnn_ratio": round(profile["rnn"]["train_gflops"] / peak, 3),
        "paper_rnn_time_share": round(profile["rnn"]["seconds_per_image"] / total_seconds, 3),
        "batch": args.batch,
        "logical_cpus": threads,
        "device": device,
    })
    if not args.no_switches:
        result.update(speed_switches(args, {"paper": paper, "compact": compact["fast"]}, "mixed_float16" if gpus else "mixed_bfloat16"))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
