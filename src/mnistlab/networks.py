"""Keras 3 networks: builders, the device setup, training with one line per epoch, and the
scikit-learn estimator used by the grid search.

Backend-neutral: runs on TensorFlow (default), JAX or PyTorch (``KERAS_BACKEND``).
Importing this module imports Keras, so the scikit-learn chapters never do.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path

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
from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from . import config  # noqa: E402
from .augment import augment_images  # noqa: E402

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


def _inputs(input_shape):
    inputs = keras.Input(shape=input_shape)
    side = int(round(np.sqrt(np.prod(input_shape))))  # square images, given flat or as H×W
    return inputs, layers.Reshape((side, side, 1))(inputs)


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
    inputs, x = _inputs(input_shape)
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
    inputs, x = _inputs(input_shape)
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
    inputs, x = _inputs(input_shape)

    def conv(x, filters, size, strides=1, padding="valid"):
        x = layers.Conv2D(
            filters, size, strides=strides, padding=padding, use_bias=False, kernel_initializer=kernel_initializer
        )(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        return layers.Activation(activation)(x)

    for filters in (32, 64):
        x = conv(x, filters, 3)
        x = conv(x, filters, 3)
        x = conv(x, filters, 5, strides=2, padding="same")
        x = layers.Dropout(dropout)(x)
    x = conv(x, 128, 4)
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
) -> keras.Model:
    """A small batch-normalised CNN built for time-to-accuracy: 3×3 convolutions of 32, 64 and 128
    filters, the first two followed by max pooling, then global average pooling. About 1.3× the
    multiply-adds of the Keras example's network; batch normalisation lets it train at a high
    learning rate."""
    inputs, x = _inputs(input_shape)
    for filters, pool in ((32, True), (64, True), (128, False)):
        x = layers.Conv2D(filters, 3, use_bias=False, kernel_initializer=kernel_initializer)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.Activation(activation)(x)
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
) -> keras.Model:
    """A small residual network: three stages of residual blocks (16, 32 and 64 filters), global
    average pooling. With 32, 64 and 128 filters it cost four times the multiply-adds (37M per
    image) and was no more accurate than bn_cnn at 12 times its cost (quick profile on MNIST)."""
    inputs, x = _inputs(input_shape)
    x = layers.Conv2D(16, 3, padding="same", kernel_initializer=kernel_initializer)(x)
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        shortcut = x
        y = layers.Conv2D(
            filters, 3, strides=strides, padding="same", use_bias=False, kernel_initializer=kernel_initializer
        )(x)
        y = layers.Activation(activation)(layers.BatchNormalization(momentum=BN_MOMENTUM)(y))
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=kernel_initializer)(y)
        y = layers.BatchNormalization(momentum=BN_MOMENTUM)(y)
        if strides != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(shortcut)
        x = layers.Activation(activation)(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return _head(inputs, x, n_classes, "resnet")


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


# --------------------------------------------------------------------------- training


class EpochLine(keras.callbacks.Callback):
    """One plain line per epoch (progress bars break the PDF report)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"{k} {v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")]
        print(
            f"epoch {epoch + 1:>2}/{self.params.get('epochs')}: "
            + ", ".join(parts)
            + f" ({time.perf_counter() - self._start:.1f} s)",
            flush=True,
        )


class EpochSeconds(keras.callbacks.Callback):
    """Adds ``seconds``, the wall time of training so far (validation included), to each epoch's
    logs, so that every history holds its own accuracy-against-time curve."""

    def on_train_begin(self, logs=None):
        self.total = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.total += time.perf_counter() - self._start
        if logs is not None:
            logs["seconds"] = self.total


SCHEDULES = ("constant", "plateau", "cosine", "one-cycle")
ONE_CYCLE_MAX_LR, LABEL_SMOOTHING = 3e-3, 0.1


def cosine_decay(learning_rate: float, epochs: int):
    """Learning rate of each epoch, falling from ``learning_rate`` to near zero along a half cosine."""
    return lambda epoch: learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / max(1, epochs)))


@keras.saving.register_keras_serializable("mnistlab")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate per step: a linear warm-up from ``max_lr / 25`` to ``max_lr`` over the first
    ``warmup`` share of the steps, then a half cosine down to ``max_lr / 10,000`` (Smith's one-cycle
    policy, as in fast.ai's ``fit_one_cycle``)."""

    def __init__(self, max_lr: float, total_steps: int, warmup: float = 0.25):
        self.max_lr, self.total_steps, self.warmup = float(max_lr), int(total_steps), float(warmup)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = max(1.0, self.total_steps * self.warmup)
        low, end = self.max_lr / 25, self.max_lr / 1e4
        rising = low + (self.max_lr - low) * step / warm
        t = keras.ops.clip((step - warm) / max(1.0, self.total_steps - warm), 0.0, 1.0)
        falling = end + (self.max_lr - end) * 0.5 * (1 + keras.ops.cos(math.pi * t))
        return keras.ops.where(step < warm, rising, falling)

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps, "warmup": self.warmup}


@keras.saving.register_keras_serializable("mnistlab")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Keras' sparse loss has none): the
    target puts ``1 - smoothing`` on the true class and spreads ``smoothing`` over all classes."""

    def __init__(self, smoothing: float = LABEL_SMOOTHING, name: str = "smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        n = y_pred.shape[-1]
        onehot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), n)
        target = onehot * (1 - self.smoothing) + self.smoothing / n
        return keras.losses.categorical_crossentropy(target, y_pred)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


def compile_one_cycle(model, steps: int, max_lr: float = ONE_CYCLE_MAX_LR, smoothing: float = LABEL_SMOOTHING):
    """(Re)compile ``model`` for a one-cycle run of ``steps`` optimizer steps: Adam following
    :class:`OneCycle`, label-smoothed cross-entropy. The weights are kept."""
    model.compile(
        optimizer=keras.optimizers.Adam(OneCycle(max_lr, steps)),
        loss=SmoothedCrossentropy(smoothing),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=getattr(model, "jit_compile", False) is True,
    )
    return model


class TrainingBatches(keras.utils.PyDataset):
    """Shuffled training batches, augmented in the input pipeline (:mod:`mnistlab.augment`) when
    ``augment``; each epoch draws new orders and transforms from ``seed`` and the epoch number,
    so a run is reproducible and the same on every backend."""

    def __init__(self, x, y, batch_size: int, seed: int = config.DEFAULT_SEED, augment: bool = True):
        super().__init__()
        self.x, self.y = np.asarray(x, dtype=np.float32), np.asarray(y)
        self.batch_size, self.seed, self.augment, self.epoch = batch_size, seed, augment, 0
        self._order = np.random.default_rng((seed, 0)).permutation(len(self.x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = self.x[rows]
        if self.augment:
            batch = augment_images(batch, np.random.default_rng((self.seed, self.epoch, index)))
        return batch, self.y[rows]

    def on_epoch_end(self):
        self.epoch += 1
        self._order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.x))


def callbacks(
    patience: int = 5,
    lines: bool = True,
    schedule: str = "plateau",
    epochs: int | None = None,
    learning_rate: float = 1e-3,
) -> list:
    """The callbacks of a ``schedule``, and one line per epoch when ``lines``.

    ``plateau``: early stopping with the best weights kept, and the learning rate halved when
    the validation loss stalls. ``cosine``: the same early stopping, the rate lowered smoothly to
    zero over ``epochs`` (with augmentation the validation loss is too noisy for plateaus to
    show). ``one-cycle``: none; the schedule lives in the optimizer (:func:`compile_one_cycle`)
    and runs to its end. ``constant``: none (the Keras example's recipe: Adam at its default rate).
    """
    config.check_name("schedule", schedule, SCHEDULES)
    found = []
    if schedule in ("plateau", "cosine"):
        found.append(
            keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True)
        )
    if schedule == "plateau":
        found.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=max(1, patience // 2), min_lr=1e-5
            )
        )
    elif schedule == "cosine":
        if not epochs:
            raise ValueError("the cosine schedule needs the number of epochs")
        found.append(keras.callbacks.LearningRateScheduler(cosine_decay(learning_rate, epochs)))
    return found + [EpochLine()] if lines else found


def validation_split(x, y, fraction: float = 0.1, seed: int = config.DEFAULT_SEED):
    """Stratified ``(x_fit, x_val, y_fit, y_val)`` (plain random when a class is too rare)."""
    stratify = y if np.unique(y, return_counts=True)[1].min() >= 2 else None
    return train_test_split(x, y, test_size=fraction, stratify=stratify, random_state=seed)


def patience_for(epochs: int) -> int:
    """Early-stopping patience: long runs (augmentation converges slowly) get more."""
    return max(5, epochs // 3)


def _learning_rate(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def fit(
    model,
    x_fit,
    y_fit,
    validation,
    epochs: int,
    batch_size: int = CPU_BATCH,
    seed: int = config.DEFAULT_SEED,
    schedule: str = "plateau",
    augment: bool = False,
    patience: int | None = None,
    lines: bool = False,
    extra_callbacks=(),
):
    """Train ``model`` on ``(x_fit, y_fit)`` with the ``schedule``'s callbacks, validating on
    ``validation`` (a pair, or None); augment in the input pipeline when ``augment``. Returns
    the Keras history."""
    keras.utils.set_random_seed(seed)
    if schedule == "one-cycle":
        compile_one_cycle(model, epochs * math.ceil(len(x_fit) / batch_size))
    found = callbacks(
        patience_for(epochs) if patience is None else patience,
        lines,
        schedule,
        epochs,
        _learning_rate(model) if schedule != "one-cycle" else 0.0,
    )
    found = [EpochSeconds(), *found, *extra_callbacks]
    if validation is None:
        found = [c for c in found if not isinstance(c, keras.callbacks.EarlyStopping)]
    if augment:
        batches = TrainingBatches(x_fit, y_fit, batch_size, seed)
        return model.fit(batches, validation_data=validation, epochs=epochs, callbacks=found, verbose=0)
    return model.fit(
        x_fit, y_fit, validation_data=validation, epochs=epochs, batch_size=batch_size, callbacks=found, verbose=0
    )


def train(
    model,
    x,
    y,
    epochs: int,
    batch_size: int = CPU_BATCH,
    seed: int = config.DEFAULT_SEED,
    patience: int | None = None,
    verbose_lines: bool = True,
    schedule: str = "plateau",
    expand=None,
    augment: bool = False,
):
    """Fit on 90% of ``(x, y)``, validate on a stratified 10%; return ``(history, seconds per epoch)``.

    ``schedule``: see :func:`callbacks`; ``augment``: random rotation, shift and zoom in the
    input pipeline. ``expand``: a function ``(x, y) -> (x, y)`` applied to the 90% only, to add
    training examples (say, reoriented copies) that must not leak into the validation images."""
    x_fit, x_val, y_fit, y_val = validation_split(x, y, seed=seed)
    if expand is not None:
        x_fit, y_fit = expand(x_fit, y_fit)
    start = time.perf_counter()
    history = fit(
        model, x_fit, y_fit, (x_val, y_val), epochs, batch_size, seed, schedule, augment, patience, verbose_lines
    )
    return history, (time.perf_counter() - start) / max(1, len(history.epoch))


def curve(history) -> dict:
    """Validation accuracy against training seconds, epoch by epoch, from a history of :func:`fit`."""
    h = history.history
    return {
        "seconds": [round(float(v), 2) for v in h.get("seconds", [])],
        "val_accuracy": [round(float(v), 5) for v in h.get("val_accuracy", [])],
    }


#: How chapter 5 trains each network: (architecture, schedule, augment, batch size or None for the
#: device's). The Keras example's recipe is the reference; "textbook" is early stopping with the
#: learning rate halved on plateaus; the one-cycle recipes were chosen by `make bench`.
RECIPES = {
    "dense": ("dense", "plateau", False, None),
    "simple_cnn (Keras example recipe)": ("simple_cnn", "constant", False, 128),
    "bn_cnn": ("bn_cnn", "plateau", False, None),
    "bn_cnn, one-cycle": ("bn_cnn", "one-cycle", False, None),
    "bn_cnn, one-cycle + augmentation": ("bn_cnn", "one-cycle", True, None),
    "deep_cnn": ("deep_cnn", "plateau", False, None),
    "resnet": ("resnet", "plateau", False, None),
}


def run_recipe(
    name: str,
    recipe,
    x_train,
    y_train,
    x_test,
    y_test,
    epochs: int,
    device: dict,
    seed: int = config.DEFAULT_SEED,
    models_dir=None,
    **train_kwargs,
):
    """Build, train (:func:`train`) and test one network of ``recipe`` = (architecture, schedule,
    augment, batch size); with ``models_dir`` it is saved as ``.keras`` and tested after reloading.
    Returns ``(result record, test probabilities, history)``."""
    from .evaluation import result_record

    architecture, schedule, augment, batch_size = recipe
    batch_size = batch_size or device["batch_size"]
    model = build(architecture, jit_compile=device["jit_compile"], seed=seed)
    start = time.perf_counter()
    history, per_epoch = train(
        model, x_train, y_train, epochs, batch_size, seed, schedule=schedule, augment=augment, **train_kwargs
    )
    fit_seconds = time.perf_counter() - start
    if models_dir is not None:
        path = Path(models_dir) / f"{architecture}-{schedule}{'-augmented' if augment else ''}.keras"
        model.save(path)
        model = keras.models.load_model(path)
    start = time.perf_counter()
    probabilities = predict_proba(model, x_test)
    record = result_record(
        name,
        y_test,
        probabilities.argmax(axis=1),
        fit_seconds=fit_seconds,
        predict_seconds=time.perf_counter() - start,
        n_train=len(x_train),
        params={
            "architecture": architecture,
            "schedule": schedule,
            "augmentation": augment,
            "batch_size": batch_size,
            "epochs_run": len(history.epoch),
        },
        n_params=model.count_params(),
        multiply_adds=multiply_adds(model),
        seconds_per_epoch=per_epoch,
        device=device["device"],
        curve=curve(history),
    )
    return record, probabilities, history


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


# --------------------------------------------------------------------------- scikit-learn wrapper


def _model_for_wrapper(
    X, y, architecture, optimizer, learning_rate, activation, kernel_initializer, dropout, seed, jit_compile
):
    """Builder called by ``keras.wrappers.SKLearnClassifier`` (one-hot targets: categorical loss)."""
    keras.backend.clear_session()  # a search builds hundreds of models: free the old graphs
    keras.utils.set_random_seed(seed)
    return build(
        architecture,
        optimizer,
        learning_rate,
        jit_compile,
        loss="categorical_crossentropy",
        input_shape=(X.shape[1],),
        n_classes=y.shape[1],
        activation=activation,
        kernel_initializer=kernel_initializer,
        dropout=dropout,
        seed=seed,
    )


class CNNClassifier(keras.wrappers.SKLearnClassifier):
    """``keras.wrappers.SKLearnClassifier`` with every hyper-parameter a constructor argument, so
    that ``GridSearchCV`` can search ``optimizer × batch_size × kernel_initializer × activation ×
    dropout × epochs`` directly. Takes flat N×784 float inputs. Also fixes two things of the
    base wrapper: ``clone`` keeps every parameter, and prediction prints no progress bar.
    """

    def __init__(
        self,
        architecture="simple_cnn",
        optimizer="adam",
        learning_rate=None,
        batch_size=CPU_BATCH,
        kernel_initializer="glorot_uniform",
        activation="relu",
        dropout=0.25,
        epochs=3,
        seed=config.DEFAULT_SEED,
        jit_compile=False,
    ):
        self.architecture = architecture
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.kernel_initializer = kernel_initializer
        self.activation = activation
        self.dropout = dropout
        self.epochs = epochs
        self.seed = seed
        self.jit_compile = jit_compile
        self.model, self.warm_start = _model_for_wrapper, False

    @property
    def model_kwargs(self):
        return {
            k: getattr(self, k)
            for k in (
                "architecture",
                "optimizer",
                "learning_rate",
                "activation",
                "kernel_initializer",
                "dropout",
                "seed",
                "jit_compile",
            )
        }

    @model_kwargs.setter
    def model_kwargs(self, value):  # the base class assigns it; the parameters above are the truth
        pass

    @property
    def fit_kwargs(self):
        return {"epochs": self.epochs, "batch_size": self.batch_size, "verbose": 0}

    @fit_kwargs.setter
    def fit_kwargs(self, value):
        pass

    def __sklearn_clone__(self):
        return BaseEstimator.__sklearn_clone__(self)

    def predict_proba(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return predict_proba(self.model_, np.asarray(X, dtype=np.float32))

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def fold_ensemble(
    architecture: str,
    x,
    y,
    k: int,
    epochs: int,
    batch_size: int = CPU_BATCH,
    seed: int = config.DEFAULT_SEED,
    jit_compile: bool = False,
    schedule: str = "plateau",
    augment: bool = False,
    **build_kwargs,
) -> list:
    """Train ``k`` networks, each on all folds but one and validated on that one (the
    ``schedule`` of :func:`callbacks`; ``augment`` in the input pipeline)."""
    from sklearn.model_selection import StratifiedKFold

    members = []
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (fit_index, val_index) in enumerate(folds.split(x, y)):
        model = build(architecture, jit_compile=jit_compile, seed=seed + i, **build_kwargs)
        start = time.perf_counter()
        history = fit(
            model,
            x[fit_index],
            y[fit_index],
            (x[val_index], y[val_index]),
            epochs,
            batch_size,
            seed + i,
            schedule,
            augment,
        )
        print(
            f"member {i + 1}/{k}: {len(history.epoch)} epochs, best val_accuracy "
            f"{max(history.history['val_accuracy']):.4f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        members.append(model)
    return members


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


def transfer(
    model: keras.Model,
    x,
    y,
    epochs: int,
    freeze_base: bool,
    batch_size: int = CPU_BATCH,
    learning_rate: float = 3e-4,
    seed: int = config.DEFAULT_SEED,
):
    """A copy of a trained ``model``, trained further on ``(x, y)``: every layer (fine-tuning), or
    only the final classifier with the convolutional base frozen. Returns ``(model, history)``."""
    keras.utils.set_random_seed(seed)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    if freeze_base:
        for layer in copy.layers[:-1]:
            layer.trainable = False
    copy.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    history, _ = train(copy, x, y, epochs=epochs, batch_size=batch_size, seed=seed)
    return copy, history


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
