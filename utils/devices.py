"""Where and how fast to train: the tf.distribute strategy, the global batch, mixed precision and XLA.

:func:`choose_strategy` picks, in this order: several machines (``TF_CONFIG`` names a cluster:
``MultiWorkerMirroredStrategy``), a TPU (``TPUStrategy``), several GPUs (``MirroredStrategy``), else the one
device there is. Build and compile the model inside ``strategy.scope()``, and feed it batches of
:func:`global_batch_size`: each step splits the global batch between the replicas.
:func:`precision_policy` and :func:`jit_compile` turn ``config.MIXED_PRECISION`` and ``config.JIT_COMPILE``
into what this machine should use.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from utils import config

# Keras 3 cannot fit() under MultiWorkerMirroredStrategy across workers (open as of Keras 3.15).
KERAS_MULTI_WORKER_BUG = "https://github.com/keras-team/keras/issues/20585"


# --- Devices and strategies ------------------------------------------------------------------------
def split_cpu(devices: int) -> list[str]:
    """Split the CPU into ``devices`` logical devices and return their names (``/cpu:0`` ...).

    A way to try ``MirroredStrategy`` without GPUs. It must run before TensorFlow runs its first op:
    later, the devices are fixed and this raises RuntimeError.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])
    return [f"/cpu:{index}" for index in range(devices)]


def cluster_workers() -> int:
    """How many workers ``TF_CONFIG`` (set by the cluster that started this process) names; 0 without one."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return 0
    try:
        cluster = json.loads(text).get("cluster", {})
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not a JSON object with a 'cluster': {error}") from error
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _tpu_announced() -> bool:
    return bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME")) or Path("/dev/accel0").exists()


def choose_strategy(devices: Sequence[str] | None = None, verbose: bool = True) -> tf.distribute.Strategy:
    """The strategy for this machine, or mirrored over ``devices`` when given (for example ``split_cpu(2)``).

    Several machines when ``TF_CONFIG`` names a cluster; a TPU (Colab); several GPUs mirrored; else the
    default strategy (one GPU or the CPU). It says which and why.
    """
    strategy, reason = None, ""
    workers = cluster_workers()
    if devices:
        strategy, reason = tf.distribute.MirroredStrategy(list(devices)), f"mirrored over the devices given: {', '.join(devices)}"
    elif workers:
        # Every worker runs this same script; TF_CONFIG tells each which one it is.
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        reason = f"TF_CONFIG names a cluster of {workers} worker(s)"
        if workers > 1:
            reason += f"; note that Keras' fit() cannot train across workers yet, {KERAS_MULTI_WORKER_BUG}"
    elif _tpu_announced():
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy, reason = tf.distribute.TPUStrategy(resolver), "a TPU was found"
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            reason = f"a TPU was announced but could not be used ({error}); "
    if strategy is None:
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            strategy, reason = tf.distribute.MirroredStrategy(), reason + f"{len(gpus)} GPUs: mirrored"
        else:
            strategy = tf.distribute.get_strategy()
            reason += "one GPU" if gpus else "no GPU: the CPU"
    if verbose:
        print(f"Strategy: {strategy_name(strategy)}, {strategy.num_replicas_in_sync} replica(s) ({reason})")
    return strategy


def check_keras_can_fit(strategy: tf.distribute.Strategy) -> None:
    """Raise RuntimeError, saying why and what to do, when Keras' ``fit`` cannot train under ``strategy``.

    Keras 3 (3.15 here) fails inside ``fit`` under a MultiWorkerMirroredStrategy that spans several workers:
    it reduces the first batch and the per-step losses across workers in ways the strategy rejects
    (``PerReplica ... to a Tensor``, then ``Invalid reduction dimension 0``). The strategy itself works
    (custom training loops can use it); ``fit`` does not, so training stops before it starts.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and cluster_workers() > 1:
        raise RuntimeError(
            f"Keras {keras.__version__} cannot fit() under MultiWorkerMirroredStrategy across {cluster_workers()} workers "
            f"(a Keras bug: {KERAS_MULTI_WORKER_BUG}). Train on one machine instead: unset TF_CONFIG, and "
            "choose_strategy() mirrors the model over that machine's GPUs."
        )


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The strategy's public name (TensorFlow's multi-worker class is called CollectiveAllReduceStrategy inside)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"
    return type(strategy).__name__


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy | None = None) -> int:
    """The batch to feed: ``per_replica`` images for each replica, so each device keeps the batch it was tuned for."""
    strategy = strategy or tf.distribute.get_strategy()
    return per_replica * strategy.num_replicas_in_sync


def on_tpu(strategy: tf.distribute.Strategy | None = None) -> bool:
    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.TPUStrategy)


def accelerated(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True on a GPU or TPU, where the paper preset trains fast enough."""
    return on_tpu(strategy) or bool(tf.config.list_logical_devices("GPU"))


def default_preset(strategy: tf.distribute.Strategy | None = None) -> str:
    """``paper`` on a GPU or TPU, ``compact`` on a CPU."""
    return config.PRESET_GPU if accelerated(strategy) else config.PRESET_CPU


# --- Mixed precision and XLA -------------------------------------------------------------------------
def cpu_supports_bfloat16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX-512 BF16 or AMX on x86; read from Linux's cpuinfo).

    Elsewhere bfloat16 is emulated and slower than float32, so the answer there is False.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def precision_policy(strategy: tf.distribute.Strategy | None = None, setting: str | None = None) -> str:
    """The Keras dtype policy ``setting`` (default ``config.MIXED_PRECISION``) means on this machine.

    "auto": ``mixed_bfloat16`` on a TPU or a CPU with native bfloat16, ``mixed_float16`` on a GPU, else
    ``float32``. Any other value is a Keras policy name and is returned as it is.
    """
    setting = setting or config.MIXED_PRECISION
    if setting != "auto":
        return setting
    if on_tpu(strategy):
        return "mixed_bfloat16"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if config.MIXED_PRECISION_CPU and cpu_supports_bfloat16() else "float32"


def use_precision(policy: str) -> str:
    """Make ``policy`` Keras' global dtype policy for the models built from now on; returns it.

    Under a mixed policy layers compute in 16 bits and keep float32 weights; the CRNN's logits stay
    float32 for the CTC loss (``build_crnn``), and Keras scales the loss against float16 underflow.
    """
    keras.mixed_precision.set_global_policy(policy)
    return policy


def jit_compile(strategy: tf.distribute.Strategy | None = None, setting: bool | str | None = None) -> bool | str:
    """XLA for ``model.compile(jit_compile=...)`` from ``setting`` (default ``config.JIT_COMPILE``).

    "auto": off on a CPU (measured: slower, see the README) and Keras' own choice on an accelerator
    (XLA where every layer allows it; the cuDNN LSTM does not, so build with ``use_cudnn=False`` for XLA).
    """
    setting = config.JIT_COMPILE if setting is None else setting
    if setting != "auto":
        return bool(setting)
    return "auto" if accelerated(strategy) else False
