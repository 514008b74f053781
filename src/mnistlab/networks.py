"""Keras 3 networks: the device setup, the architectures the course compares, and prediction
(training lives in :mod:`mnistlab.training`).

Backend-neutral: runs on TensorFlow (default), JAX or PyTorch (``KERAS_BACKEND``).
Importing this module imports Keras, so the scikit-learn chapters never do.
"""

from __future__ import annotations

import contextlib
import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _quiet_native_stderr():
    """Send file descriptor 2 to /dev/null: TensorFlow's C++ start-up lines bypass Python."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable descriptor 2
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _quiet_native_stderr():
    import keras  # noqa: E402

    if keras.backend.backend() == "tensorflow":
        import tensorflow  # noqa: F401  (its start-up messages happen here)
for _name in ("tensorflow", "absl", "keras"):
    logging.getLogger(_name).setLevel(logging.ERROR)

import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from . import config  # noqa: E402

ARCHITECTURES = ("dense", "simple_cnn", "bn_cnn", "deep_cnn", "resnet")
# 128 on a GPU, not 512: with 7,200 training images, batch 512 leaves too few steps per epoch
# (measured on an H100, JAX, 8 epochs: ResNet 55% with 512, 97.8% with 128). 64 on the CPU:
# as fast as 128 there (bn_cnn, 5 one-cycle epochs with augmentation on 7,200 images: 23 s
# against 24 s) and more accurate with few images (98.65% against 97.9%).
CPU_BATCH, GPU_BATCH = 64, 128
#: Batch-normalisation statistics follow the batches at 0.9 (Keras' default 0.99 needs hundreds
#: of steps to settle: with 0.99 the same bn_cnn run scored 90.4%, with 0.9 97.9%).
BN_MOMENTUM = 0.9


# --------------------------------------------------------------------------- data and device


def images(x) -> np.ndarray:
    """uint8 N×28×28 images as float32 in [0, 1] (the networks' input)."""
    return np.asarray(x, dtype=np.float32) / 255.0


def gpu_name() -> str | None:
    """Name of the first GPU the Keras backend can use, or None."""
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else None
        if backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            return gpus[0].device_kind if gpus else None
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - no usable GPU is an answer, not an error
        return None
    return None


def xla_is_faster(device: str, backend: str) -> bool | None:
    """Whether XLA (``jit_compile``) trained faster than without on this kind of device and backend
    in the last ``make bench`` (summed over the architectures), or None if it was not measured."""
    rows = [
        r
        for r in config.bench_record().get("throughput", [])
        if r.get("device") == device and r.get("backend") == backend and r.get("ours + XLA images/s")
    ]
    if not rows:
        return None
    return sum(len(rows) / r["ours + XLA images/s"] for r in rows) < sum(len(rows) / r["ours images/s"] for r in rows)


def setup_device(seed: int = config.DEFAULT_SEED, gpu: bool | None = None) -> dict:
    """Seed everything; on a GPU turn on mixed precision and larger batches; use XLA where
    ``make bench`` measured it faster on this kind of device and backend (without a measurement:
    on a GPU, not on the CPU, where it measured several times slower for the deep CNN).

    Returns what was chosen, for the notebook to print. One code path: on the CPU the same
    steps run with float32 and the CPU batch size.
    """
    keras.utils.set_random_seed(seed)
    name = gpu_name()
    use_gpu = bool(name) if gpu is None else gpu and bool(name)
    keras.mixed_precision.set_global_policy("mixed_float16" if use_gpu else "float32")
    device, backend = (f"GPU ({name})" if use_gpu else "CPU"), keras.backend.backend()
    measured = xla_is_faster(device, backend)
    return {
        "backend": backend,
        "device": device,
        "gpu": use_gpu,
        "mixed_precision": use_gpu,
        "jit_compile": use_gpu if measured is None else measured,
        "xla_choice": "default (not measured here)" if measured is None else "measured by make bench",
        "batch_size": GPU_BATCH if use_gpu else CPU_BATCH,
    }


def gpu_hint(notebook: str) -> str | None:
    """None on a GPU; else one line saying how to get one in Colab and what the chapter costs without."""
    if gpu_name():
        return None
    seconds = config.measured_seconds(notebook)
    cost = (
        f"about {seconds / 60:.0f} minutes in the quick profile (measured on 2 CPU cores by `make bench`)"
        if seconds
        else "several minutes"
    )
    return (
        "No GPU is visible. In Colab choose Runtime > Change runtime type > T4 GPU, then run all cells "
        f"again; on the CPU this chapter takes {cost}."
    )


def describe_device(setup: dict) -> str:
    extras = ", mixed precision" if setup["gpu"] else ""
    extras += f", XLA {'on' if setup['jit_compile'] else 'off'} ({setup.get('xla_choice', 'default')})"
    return (
        f"Training on {setup['device']} with the {setup['backend']} backend{extras}, batch size {setup['batch_size']}."
    )


# --------------------------------------------------------------------------- models


def _inputs(input_shape, seed: int):
    """The input layer, reshaped to H×W×1; seeds Keras first, so that every initial weight (and
    every dropout layer's seed) of the network built next comes from ``seed``."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape)
    side = int(round(np.sqrt(np.prod(input_shape))))  # square images, given flat or as H×W
    return inputs, layers.Reshape((side, side, 1))(inputs)


def conv_bn(x, filters: int, size: int, activation, kernel_initializer, strides: int = 1, padding: str = "valid"):
    """Convolution (no bias: batch norm has one), batch normalisation, then the activation (none
    when ``activation`` is None)."""
    x = layers.Conv2D(
        filters, size, strides=strides, padding=padding, use_bias=False, kernel_initializer=kernel_initializer
    )(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return layers.Activation(activation)(x) if activation else x


def _head(inputs, x, n_classes: int, name: str) -> keras.Model:
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_dense(
    input_shape=(28, 28),
    n_classes: int = 10,
    dropout: float = 0.2,
    activation: str = "relu",
    kernel_initializer: str = "he_normal",
    seed: int = config.DEFAULT_SEED,
) -> keras.Model:
    """A flat fully connected network on the 784 pixels."""
    inputs, x = _inputs(input_shape, seed)
    x = layers.Flatten()(x)
    for units in (256, 128):
        x = layers.Dense(units, activation=activation, kernel_initializer=kernel_initializer)(x)
        x = layers.Dropout(dropout)(x)
    return _head(inputs, x, n_classes, "dense")


def build_simple_cnn(
    input_shape=(28, 28),
    n_classes: int = 10,
    dropout: float = 0.5,
    activation: str = "relu",
    kernel_initializer: str = "glorot_uniform",
    seed: int = config.DEFAULT_SEED,
) -> keras.Model:
    """The classic two-convolution network of the Keras MNIST example."""
    inputs, x = _inputs(input_shape, seed)
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, activation=activation, kernel_initializer=kernel_initializer)(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    return _head(inputs, x, n_classes, "simple_cnn")


def build_deep_cnn(
    input_shape=(28, 28),
    n_classes: int = 10,
    dropout: float = 0.4,
    activation: str = "relu",
    kernel_initializer: str = "he_normal",
    seed: int = config.DEFAULT_SEED,
) -> keras.Model:
    """The strongest single Kaggle MNIST network, as published: 32C3-32C3-32C5S2, 64C3-64C3-64C5S2,
    128C4, each convolution batch-normalised, dropout after each stage. Its 3×3 convolutions are
    unpadded ('valid'), as published: 'same' padding everywhere costs 2.3× the multiply-adds."""
    inputs, x = _inputs(input_shape, seed)
    for filters in (32, 64):
        x = conv_bn(x, filters, 3, activation, kernel_initializer)
        x = conv_bn(x, filters, 3, activation, kernel_initializer)
        x = conv_bn(x, filters, 5, activation, kernel_initializer, strides=2, padding="same")
        x = layers.Dropout(dropout)(x)
    x = conv_bn(x, 128, 4, activation, kernel_initializer)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    return _head(inputs, x, n_classes, "deep_cnn")


def build_bn_cnn(
    input_shape=(28, 28),
    n_classes: int = 10,
    dropout: float = 0.25,
    activation: str = "relu",
    kernel_initializer: str = "he_normal",
    seed: int = config.DEFAULT_SEED,
    filters=(32, 64, 128),
) -> keras.Model:
    """A small batch-normalised CNN built for time-to-accuracy: 3×3 convolutions of 32, 64 and 128
    ``filters`` (fewer in the bench's narrow variants), the first two followed by max pooling, then
    flattened into the classifier. About 1.3× the multiply-adds of the Keras example's network;
    batch normalisation lets it train at a high learning rate."""
    inputs, x = _inputs(input_shape, seed)
    for width, pool in zip(filters, (True, True, False)):
        x = conv_bn(x, width, 3, activation, kernel_initializer)
        if pool:
            x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    return _head(inputs, x, n_classes, "bn_cnn")


def build_resnet(
    input_shape=(28, 28),
    n_classes: int = 10,
    dropout: float = 0.2,
    activation: str = "relu",
    kernel_initializer: str = "he_normal",
    seed: int = config.DEFAULT_SEED,
    filters=(16, 32, 64),
    blocks: int = 1,
    rescale: float | None = None,
) -> keras.Model:
    """A small residual network: one stage of ``blocks`` residual blocks per entry of ``filters``
    (the first at full resolution, each further one halving it), global average pooling. The
    defaults (16, 32 and 64 filters, one block each) suit 28×28 digits: with 32, 64 and 128
    filters it cost four times the multiply-adds (37M per image) and was no more accurate than
    bn_cnn at 12 times its cost (quick profile on MNIST). Larger images take a stage more
    (:data:`CANVAS_RESNET`). ``rescale``: a factor applied inside the network (1/255 takes uint8
    pixels as they are stored)."""
    inputs, x = _inputs(input_shape, seed)
    if rescale is not None:
        x = layers.Rescaling(rescale)(x)
    x = layers.Conv2D(filters[0], 3, padding="same", kernel_initializer=kernel_initializer)(x)
    for stage, width in enumerate(filters):
        for block in range(blocks):
            x = residual_block(x, width, 2 if stage and not block else 1, activation, kernel_initializer)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return _head(inputs, x, n_classes, "resnet")


def residual_block(x, filters: int, strides: int, activation, kernel_initializer):
    """Two batch-normalised 3×3 convolutions added to a shortcut (a strided 1×1 convolution where
    the resolution or the width changes), then the activation."""
    shortcut = x
    y = conv_bn(x, filters, 3, activation, kernel_initializer, strides=strides, padding="same")
    y = conv_bn(y, filters, 3, None, kernel_initializer, padding="same")
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(shortcut)
    return layers.Activation(activation)(layers.Add()([y, shortcut]))


#: :func:`build_resnet` for chapter 9's 64×64 canvases of three digits: a fourth stage, so that
#: the last one works at 8×8 as the default's does at 7×7 on a digit, and uint8 canvases taken as
#: they are stored (200,000 canvases: 0.8 GB as uint8, 3.3 GB as float32).
CANVAS_RESNET = {"input_shape": (64, 64), "filters": (16, 32, 64, 128), "rescale": 1 / 255}


BUILDERS = {
    "dense": build_dense,
    "simple_cnn": build_simple_cnn,
    "bn_cnn": build_bn_cnn,
    "deep_cnn": build_deep_cnn,
    "resnet": build_resnet,
}


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass of one image (convolutions and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return int(total)


def build(
    architecture: str,
    optimizer: str = "adam",
    learning_rate: float | None = None,
    jit_compile: bool = False,
    loss: str = "sparse_categorical_crossentropy",
    **kwargs,
) -> keras.Model:
    """Build and compile one of :data:`ARCHITECTURES` (integer labels unless ``loss`` says otherwise)."""
    config.check_name("architecture", architecture, ARCHITECTURES)
    model = BUILDERS[architecture](**kwargs)
    opt = keras.optimizers.get(optimizer)
    if learning_rate is not None:
        opt.learning_rate = learning_rate
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"], jit_compile=jit_compile)
    return model


# --------------------------------------------------------------------------- predicting


def predict_proba(model, x, batch_size: int = 512) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def vote(probabilities, method: str = "average") -> np.ndarray:
    """Combine the class probabilities of several models (list of N×C arrays).

    ``average``: argmax of the mean probability; ``majority``: the most frequent predicted
    class, ties going to the class with the higher mean probability.
    """
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probabilities])
    mean = stacked.mean(axis=0)
    if method == "average":
        return mean.argmax(axis=1)
    if method != "majority":
        raise ValueError(f"unknown vote {method!r}; choose one of: average, majority")
    votes = np.zeros_like(mean)
    for p in stacked:
        votes[np.arange(len(p)), p.argmax(axis=1)] += 1
    return (votes + mean / (len(stacked) + 1)).argmax(axis=1)


def build_autoencoder(input_shape=(28, 28)) -> keras.Model:
    """A small convolutional denoising autoencoder: noisy image in, clean image out (both in [0, 1])."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((*input_shape, 1))(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32")(x)
    model = keras.Model(inputs, layers.Reshape(input_shape)(x), name="denoiser")
    model.compile(optimizer="adam", loss="binary_crossentropy")  # MSE tends to collapse to a blank image
    return model


def robustness(models: dict, x_clean, y, levels, seed: int = config.DEFAULT_SEED):
    """Test accuracy of each model as uniform noise of each level is added (no rotations)."""
    import pandas as pd

    from .variants import noisy_digits

    rows = {}
    for level in levels:
        noisy, _ = noisy_digits(x_clean, level=level, transform_share=0.0, seed=seed)
        rows[level] = {
            name: float(np.mean(predict_proba(m, images(noisy)).argmax(1) == y)) for name, m in models.items()
        }
    return pd.DataFrame(rows).T.rename_axis("noise level")
