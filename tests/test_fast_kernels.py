"""The fast training kernels compute what Keras' own layers and loss compute: the same losses, gradients, outputs
and moving statistics, so a faster step teaches the same thing (bench/speed.py measures the speed)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from utils import config
from utils.model import build_crnn, load_model, save_model, use_fast_kernels
from utils.training import CTCLoss, compile_crnn

CHARACTERS = 78


def labels_and_logits(batch: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Padded labels of 1-12 characters (doubled letters included) and random logits of 31 steps.

    No empty label: the pipeline never makes one (``ctc_feasible``), and the native kernel refuses it."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, config.LABEL_WIDTH), np.int32)
    for row, length in enumerate(rng.integers(1, 13, batch)):
        labels[row, :length] = rng.integers(1, CHARACTERS + 1, length)
    labels[0, :4] = [5, 5, 7, 7]  # doubled letters need a blank between them
    logits = rng.normal(0, 2, (batch, config.TIME_STEPS, CHARACTERS + 1)).astype(np.float32)
    return labels, logits


def loss_and_gradient(loss: keras.losses.Loss, labels: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits)
    return value.numpy(), tape.gradient(value, logits).numpy()


def test_the_native_ctc_loss_gives_keras_values_and_gradients():
    labels, logits = labels_and_logits()
    keras_loss, keras_gradient = loss_and_gradient(keras.losses.CTC(), labels, logits)
    native_loss, native_gradient = loss_and_gradient(CTCLoss(native=True), labels, logits)
    assert native_loss == pytest.approx(keras_loss, rel=1e-5)
    np.testing.assert_allclose(native_gradient, keras_gradient, atol=1e-5)
    per_word = CTCLoss(native=True, reduction=None)(labels, logits).numpy()
    np.testing.assert_allclose(per_word, keras.losses.CTC(reduction=None)(labels, logits).numpy(), rtol=1e-5)
    assert per_word.shape == (len(labels),) and np.all(per_word > 0)


def test_the_ctc_loss_keeps_its_setting_through_a_saved_model(tmp_path):
    model = build_crnn("compact", CHARACTERS)
    model.compile(optimizer="adam", loss=CTCLoss(native=False))
    path = save_model(model, tmp_path / "model.keras")
    loaded = keras.saving.load_model(path)  # compiled again from the file: the loss class must be known
    assert isinstance(loaded.loss, CTCLoss) and loaded.loss.native is False


def test_compile_crnn_keeps_xla_off_the_native_kernel():
    model = build_crnn("compact", CHARACTERS)
    assert compile_crnn(model).loss.native is None  # None: native on a CPU
    assert compile_crnn(model, jit_compile=True).loss.native is False


def batch_norm_model(fast: bool) -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 16, 5))
    x = layers.Conv2D(6, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization(momentum=config.BATCH_NORM_MOMENTUM, synchronized=True, name="bn")(x)
    return use_fast_kernels(keras.Model(inputs, layers.ReLU()(x)), fast=fast)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_the_fused_batch_norm_gives_keras_outputs_gradients_and_moving_statistics(policy):
    images = np.random.default_rng(1).normal(2.0, 3.0, (7, 8, 16, 5)).astype(np.float32)
    results = {}
    try:
        keras.mixed_precision.set_global_policy(policy)
        for fast in (False, True):
            model = batch_norm_model(fast)
            assert ("call" in vars(model.get_layer("bn"))) is fast
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                total = tf.reduce_sum(tf.cast(outputs, "float32") * np.arange(outputs.shape[-1], dtype=np.float32))
            gradients = tape.gradient(total, model.trainable_weights)
            bn = model.get_layer("bn")
            results[fast] = (np.asarray(outputs, np.float32), [g.numpy() for g in gradients],
                             bn.moving_mean.numpy(), bn.moving_variance.numpy(), np.asarray(model(images, training=False), np.float32))  # fmt: skip
    finally:
        keras.mixed_precision.set_global_policy("float32")
    tolerance = 1e-4 if policy == "float32" else 2e-2
    (keras_out, keras_grads, keras_mean, keras_var, keras_infer), (out, grads, mean, var, infer) = results[False], results[True]
    np.testing.assert_allclose(out, keras_out, atol=tolerance)
    for gradient, keras_gradient in zip(grads, keras_grads):
        np.testing.assert_allclose(gradient, keras_gradient, rtol=tolerance, atol=tolerance * np.abs(keras_gradient).max())
    np.testing.assert_allclose(mean, keras_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, keras_var, rtol=1e-5)  # the biased variance, as Keras keeps it
    assert not np.allclose(var, 1.0)  # the moving statistics did move
    np.testing.assert_allclose(infer, keras_infer, atol=tolerance)


def test_a_batch_norm_that_does_not_train_keeps_keras_call():
    model = batch_norm_model(fast=True)
    bn = model.get_layer("bn")
    bn.trainable = False
    before = bn.moving_mean.numpy().copy()
    model(np.ones((2, 8, 16, 5), np.float32), training=True)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)  # frozen: normalised with the moving statistics


def lstms(model: keras.Model) -> list[layers.LSTM]:
    return [lstm for name in ("bilstm1", "bilstm2") for lstm in (model.get_layer(name).forward_layer, model.get_layer(name).backward_layer)]


@pytest.mark.parametrize("quick", [False, True])
def test_fast_kernels_fuse_batch_norm_unroll_the_lstms_outside_quick_mode_and_turn_off_again(tmp_path, monkeypatch, quick):
    monkeypatch.setattr(config, "quick_mode", lambda: quick)
    keras.utils.set_random_seed(0)
    model = build_crnn("compact", CHARACTERS, batch_norm="all")
    batch_norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    assert not any(lstm.unroll for lstm in lstms(model)) and not any("call" in vars(layer) for layer in batch_norms)
    images = np.random.default_rng(0).random((3, 64, 128, 1), dtype=np.float32)
    keras_logits = model.predict_on_batch(images)
    use_fast_kernels(model)  # a CPU here
    assert all(lstm.unroll is not quick for lstm in lstms(model)) and all("call" in vars(layer) for layer in batch_norms)
    np.testing.assert_allclose(model.predict_on_batch(images), keras_logits, atol=1e-5)  # traced anew, same logits
    with tf.GradientTape() as tape:
        fast_loss = CTCLoss()(np.ones((3, 31), np.int32) * (np.arange(31) < 5), model(images, training=True))
    fast_gradients = tape.gradient(fast_loss, model.trainable_weights)
    saved = save_model(model, tmp_path / "model.keras")
    use_fast_kernels(model, fast=False)
    assert not any(lstm.unroll for lstm in lstms(model)) and not any("call" in vars(layer) for layer in batch_norms)
    with tf.GradientTape() as tape:
        keras_loss = keras.losses.CTC()(np.ones((3, 31), np.int32) * (np.arange(31) < 5), model(images, training=True))
    # Keras' batch norm takes the variance as E[x^2] - E[x]^2, which loses digits where the mean is large: its
    # gradients and the fused kernel's agree to 1e-4 of each weight's largest gradient, not element by element.
    for fast_gradient, keras_gradient in zip(fast_gradients, tape.gradient(keras_loss, model.trainable_weights)):
        np.testing.assert_allclose(fast_gradient, keras_gradient, atol=1e-4 * np.abs(keras_gradient).max())
    assert float(fast_loss) == pytest.approx(float(keras_loss), rel=1e-4)
    config_json = model.to_json()
    assert "htr" not in config_json and "_fused" not in config_json  # the file keeps Keras' own layer classes
    assert not any(lstm.unroll for lstm in lstms(load_model(saved)))  # loaded on Keras' kernels, as a GPU needs


def test_the_old_path_is_one_setting_away(monkeypatch):
    monkeypatch.setattr(config, "FAST_CPU_KERNELS", False)
    model = use_fast_kernels(build_crnn("compact", CHARACTERS, batch_norm="all"))
    assert not model.get_layer("bilstm1").forward_layer.unroll
    assert not any("call" in vars(layer) for layer in model.layers)
    labels, logits = labels_and_logits()
    loss = compile_crnn(model).loss
    np.testing.assert_allclose(loss(labels, logits).numpy(), keras.losses.CTC()(labels, logits).numpy(), rtol=1e-6)
