"""Speed benchmark: training and inference images/s of both presets, against the CPU's fp32 peak.

    python bench/speed.py [--batch 64] [--paper-steps 6] [--compact-steps 30] [--mixed POLICY] [--no-switches]

The peak is measured here, in the same run: the best GFLOP/s of a large float32 matmul (4096 x 4096),
which is what a CPU does at its fastest. Each model's FLOPs per image are counted from its layers
(a multiply-add is 2 FLOPs; a training step is forward + backward, about 3x the forward FLOPs);
achieved GFLOP/s = FLOPs per image x images/s, and the ratio is that over the peak.
Then a profile of the paper preset's training step: its convolutional trunk and its recurrent head
(BiLSTMs + dense) timed separately, each with its own FLOPs and ratio, to show where the time goes.
Batches are ready tensors in memory (``train_on_batch``), so the input pipeline costs nothing here.
Then the speed switches (skip them with ``--no-switches``): both presets again with XLA (``jit_compile``),
with mixed precision (``--mixed``, default mixed_float16 on a GPU, mixed_bfloat16 on a CPU) and with both,
each as a ratio to plain float32. On a GPU the peak and the profile are the GPU's, measured the same way.

Prints a table, then one JSON line with: peak_gflops, paper_train_img_s, paper_train_gflops,
paper_train_ratio, paper_infer_img_s, paper_infer_gflops, compact_train_img_s, compact_train_gflops,
compact_train_ratio, compact_infer_img_s, the profile (paper_conv_*, paper_rnn_*), and for the switches
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


def measure(preset: str, batch: int, steps: int, batch_norm: str = "table", policy: str = "float32", xla: bool = False) -> dict:
    """Training and inference speed of one preset under a dtype policy, with or without XLA."""
    import keras
    import numpy as np

    from utils.devices import use_precision
    from utils.model import build_crnn
    from utils.training import compile_crnn

    rng = np.random.default_rng(0)
    images = rng.random((batch, 64, 128, 1), dtype=np.float32)
    labels = rng.integers(1, CHARACTERS + 1, (batch, 31)).astype(np.int32)
    labels[:, 8:] = 0  # words of 8 characters
    keras.utils.set_random_seed(0)
    try:
        use_precision(policy)
        # XLA cannot compile cuDNN's LSTM kernel (Keras would quietly turn XLA off): use the plain loop then.
        model = build_crnn(preset, CHARACTERS, dropout=0.25, batch_norm=batch_norm, use_cudnn=False if xla else "auto")
    finally:
        use_precision("float32")
    compile_crnn(model, jit_compile=xla)
    flops = forward_flops(model)
    forward = sum(flops.values())
    train = images_per_second(lambda: model.train_on_batch(images, labels), batch, steps)
    infer = images_per_second(lambda: model.predict_on_batch(images), batch, steps * 2)
    return {
        "parameters": model.count_params(),
        "forward_mflops": forward / 1e6,
        "flops_share": {k: v / forward for k, v in flops.items()},
        "train_img_s": train,
        "train_gflops": train * TRAIN_FACTOR * forward / 1e9,
        "infer_img_s": infer,
        "infer_gflops": infer * forward / 1e9,
    }


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
    parser.add_argument("--compact-steps", type=int, default=30, help="training steps timed for the compact preset")
    parser.add_argument("--mixed", default=None, help="mixed policy of the switches (default: mixed_float16 on a GPU, else mixed_bfloat16)")
    parser.add_argument("--no-switches", action="store_true", help="skip the XLA and mixed-precision rows")
    args = parser.parse_args()

    from utils.setup import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    threads = os.cpu_count()
    peak = matmul_peak()
    paper = measure("paper", args.batch, args.paper_steps)
    compact = measure("compact", args.batch, args.compact_steps)
    from utils import config

    chapter = measure(config.PRESET_CPU, config.TRAIN_BATCH_SIZE, args.compact_steps, config.BATCH_NORM)
    profile = profile_paper(args.batch, args.paper_steps)
    peak_again = matmul_peak(repeats=5)  # the machine may change speed during the run: report the best
    peak = max(peak, peak_again)

    gpus = tf.config.list_logical_devices("GPU")
    device = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU") if gpus else cpu_name()
    print(f"Speed: {device}, {threads} logical CPUs, TensorFlow {tf.__version__}, batch {args.batch}, float32")
    print(f"measured fp32 peak (4096 x 4096 matmul): {peak:,.0f} GFLOP/s")
    print()
    print(f"{'preset':<9} {'params':>11} {'fwd MFLOP/img':>14} {'train img/s':>12} {'train GFLOP/s':>14} {'of peak':>8} "
          f"{'infer img/s':>12} {'infer GFLOP/s':>14} {'of peak':>8}")  # fmt: skip
    chapter_name = f"{config.PRESET_CPU}*"
    for name, row in (("paper", paper), ("compact", compact), (chapter_name, chapter)):
        print(f"{name:<9} {row['parameters']:>11,} {row['forward_mflops']:>14,.0f} {row['train_img_s']:>12,.1f} "
              f"{row['train_gflops']:>14,.1f} {row['train_gflops'] / peak:>8.1%} {row['infer_img_s']:>12,.1f} "
              f"{row['infer_gflops']:>14,.1f} {row['infer_gflops'] / peak:>8.1%}")  # fmt: skip
    print(f"(* as chapter 04 trains it on a CPU: batch norm {config.BATCH_NORM!r}, batches of {config.TRAIN_BATCH_SIZE})")
    share = paper["flops_share"]
    print()
    print(f"Profile of the paper preset's training step (FLOPs: conv {share['conv']:.0%}, BiLSTMs {share['rnn']:.0%}, "
          f"dense {share['dense']:.1%}):")  # fmt: skip
    total_seconds = sum(part["seconds_per_image"] for part in profile.values())
    for name, label in (("conv", "convolutional trunk"), ("rnn", "BiLSTMs + dense")):
        part = profile[name]
        print(f"  {label:<22} {part['train_img_s']:>8,.1f} img/s  {part['train_gflops']:>7,.1f} GFLOP/s  "
              f"{part['train_gflops'] / peak:>6.1%} of peak  {part['seconds_per_image'] / total_seconds:>5.0%} of the step time")  # fmt: skip
    result = {
        "peak_gflops": round(peak, 1),
        "paper_train_img_s": round(paper["train_img_s"], 2),
        "paper_train_gflops": round(paper["train_gflops"], 1),
        "paper_train_ratio": round(paper["train_gflops"] / peak, 3),
        "paper_infer_img_s": round(paper["infer_img_s"], 1),
        "paper_infer_gflops": round(paper["infer_gflops"], 1),
        "compact_train_img_s": round(compact["train_img_s"], 1),
        "compact_train_gflops": round(compact["train_gflops"], 1),
        "compact_train_ratio": round(compact["train_gflops"] / peak, 3),
        "compact_infer_img_s": round(compact["infer_img_s"], 1),
        "chapter_train_img_s": round(chapter["train_img_s"], 1),
        "paper_conv_train_gflops": round(profile["conv"]["train_gflops"], 1),
        "paper_conv_ratio": round(profile["conv"]["train_gflops"] / peak, 3),
        "paper_rnn_train_gflops": round(profile["rnn"]["train_gflops"], 1),
        "paper_rnn_ratio": round(profile["rnn"]["train_gflops"] / peak, 3),
        "paper_rnn_time_share": round(profile["rnn"]["seconds_per_image"] / total_seconds, 3),
        "batch": args.batch,
        "logical_cpus": threads,
        "device": device,
    }
    if not args.no_switches:
        result.update(speed_switches(args, {"paper": paper, "compact": compact}, "mixed_float16" if gpus else "mixed_bfloat16"))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
