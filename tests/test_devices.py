"""Strategies (mirrored over 2 logical CPUs, for real), the global batch, mixed precision and XLA switches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils import config, devices
from utils.model import build_crnn
from utils.training import compile_crnn

SCRIPT = Path(__file__).with_name("distributed_training.py")


def run_script(mode: str, env: dict[str, str] | None = None, background: bool = False):
    command = [sys.executable, str(SCRIPT), mode]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    if background:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_train_crnn_mirrored_over_two_logical_cpus_learns_and_keeps_replicas_identical():
    report = run_script("mirrored")
    assert report["strategy"] == "MirroredStrategy" and report["replicas"] == 2
    assert report["global_batch"] == 2 * 6  # the per-replica batch times the replicas
    assert report["copies_per_variable"] == [2]  # every variable lives on both devices
    assert report["epochs_logged"] == 4 and report["best_model_saved"]  # chapter 04's train_crnn, callbacks and all
    losses = report["losses"]
    assert losses[-1] < 0.6 * losses[0] and losses[-1] < losses[1], losses  # epoch means: it keeps falling
    # Same gradients (all-reduced) and synchronized batch norm: the two copies stay equal to the last bit.
    assert report["largest_replica_difference"] == 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_workers_from_tf_config_form_one_cluster_and_fit_is_refused_with_the_reason():
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    processes = [
        run_script("cluster", {"TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})},
                   background=True)  # fmt: skip
        for i in range(2)
    ]
    reports = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    for report in reports:
        assert report["strategy"] == "MultiWorkerMirroredStrategy" and report["replicas"] == 2
        assert report["all_reduced"] == 1.0 + 2.0  # each worker added its own number: the cluster works
        assert "cannot fit() under MultiWorkerMirroredStrategy across 2 workers" in report["refusal"]
        assert devices.KERAS_MULTI_WORKER_BUG in report["refusal"] and "unset TF_CONFIG" in report["refusal"]


def test_cluster_workers_reads_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert devices.cluster_workers() == 0
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {}}))
    assert devices.cluster_workers() == 3
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        devices.cluster_workers()


def test_on_this_cpu_the_default_strategy_has_one_replica(monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = devices.choose_strategy()
    assert strategy.num_replicas_in_sync == 1 and "the CPU" in capsys.readouterr().out
    assert devices.global_batch_size(32, strategy) == 32
    assert devices.default_preset(strategy) == config.PRESET_CPU and not devices.accelerated(strategy)


def test_precision_policy_follows_the_setting_and_the_machine(monkeypatch):
    assert devices.precision_policy(setting="mixed_float16") == "mixed_float16"
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: True)
    monkeypatch.setattr(config, "MIXED_PRECISION_CPU", True)
    assert devices.precision_policy(setting="auto") == "mixed_bfloat16"
    monkeypatch.setattr(config, "MIXED_PRECISION_CPU", False)
    assert devices.precision_policy(setting="auto") == "float32"
    monkeypatch.setattr(config, "MIXED_PRECISION_CPU", True)
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: False)  # emulated bfloat16 is slow
    assert devices.precision_policy(setting="auto") == "float32"


def test_xla_is_off_on_a_cpu_unless_forced():
    assert devices.jit_compile(setting="auto") is False
    assert devices.jit_compile(setting=True) is True


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_float32_logits_and_trains(policy):
    rng = np.random.default_rng(0)
    images = rng.random((4, config.IMAGE_HEIGHT, config.IMAGE_WIDTH, 1), dtype=np.float32)
    labels = np.zeros((4, config.LABEL_WIDTH), np.int32)
    labels[:, :3] = rng.integers(1, 11, (4, 3))
    try:
        devices.use_precision(policy)
        model = compile_crnn(build_crnn("compact", 10, batch_norm=config.BATCH_NORM), weight_decay=0.0)
    finally:
        devices.use_precision("float32")
    assert model.get_layer("conv1").compute_dtype == policy.removeprefix("mixed_")
    assert model.get_layer("conv1").kernel.dtype == "float32"  # the weights stay float32
    assert model.output.dtype == "float32"  # for the CTC loss
    first = float(model.train_on_batch(images, labels))
    for _ in range(5):
        last = float(model.train_on_batch(images, labels))
    assert np.isfinite(first) and last < first
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # float16 needs loss scaling
