"""Training the networks of :mod:`mnistlab.networks`: schedules, the label-smoothed loss, and the
two ways one recipe runs, chosen by the Keras backend, never by the notebook:

- TensorFlow (and PyTorch): Keras' ``fit``, augmentation in the input pipeline
  (:class:`TrainingBatches`), Keras callbacks for early stopping and learning-rate changes;
- JAX: the compiled loop of :mod:`mnistlab.jaxloop` (an epoch per device call, augmentation on
  the device, the members of an ensemble trained together), with the same schedules.

Both return Keras histories (per-epoch accuracy and training seconds) and trained Keras models.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split

from . import config
from .augment import ELASTIC_ALPHA, augment_images
from .augment import mode as augment_mode
from .networks import CPU_BATCH, build, keras, multiply_adds, predict_proba  # keras imported quietly there

SCHEDULES = ("constant", "plateau", "cosine", "one-cycle")
ONE_CYCLE_MAX_LR, LABEL_SMOOTHING = 3e-3, 0.1


def use_jax_loop() -> bool:
    """Whether training runs in the compiled JAX loop: whenever Keras runs on JAX."""
    return keras.backend.backend() == "jax"


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

    def __init__(self, x, y, batch_size: int, seed: int = config.DEFAULT_SEED, augment: bool | str = True):
        super().__init__()
        self.x, self.y = np.asarray(x, dtype=np.float32), np.asarray(y)
        self.batch_size, self.seed, self.augment, self.epoch = batch_size, seed, augment_mode(augment), 0
        self._order = np.random.default_rng((seed, 0)).permutation(len(self.x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = self.x[rows]
        if self.augment:
            elastic = ELASTIC_ALPHA if self.augment == "elastic" else 0.0
            batch = augment_images(batch, np.random.default_rng((self.seed, self.epoch, index)), elastic=elastic)
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
    augment: bool | str = False,
    patience: int | None = None,
    lines: bool = False,
    extra_callbacks=(),
    loop: bool = True,
):
    """Train ``model`` on ``(x_fit, y_fit)`` with the ``schedule`` (see :func:`callbacks`),
    validating on ``validation`` (a pair, or None); ``augment``: False, True (rotation, shift and
    zoom) or "elastic" (and elastic distortions; :func:`mnistlab.augment.mode`). On JAX the compiled
    loop trains it (``extra_callbacks`` are Keras' and do not run there) unless ``loop`` is False
    (Keras' own ``fit``, as on the other backends). Returns the history."""
    if loop and use_jax_loop():
        x = np.concatenate([x_fit, validation[0]]) if validation is not None else x_fit
        y = np.concatenate([y_fit, validation[1]]) if validation is not None else y_fit
        fit_rows = np.arange(len(x_fit))
        val_rows = None if validation is None else np.arange(len(x_fit), len(x))
        return train_together(
            [model], x, y, [(fit_rows, val_rows)], epochs, batch_size, [seed], schedule, augment, patience
        )[0]
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
        batches = TrainingBatches(x_fit, y_fit, batch_size, seed, augment)
        return model.fit(batches, validation_data=validation, epochs=epochs, callbacks=found, verbose=0)
    return model.fit(
        x_fit, y_fit, validation_data=validation, epochs=epochs, batch_size=batch_size, callbacks=found, verbose=0
    )


def train_together(
    models,
    x,
    y,
    splits,
    epochs: int,
    batch_size: int,
    seeds,
    schedule: str = "plateau",
    augment: bool | str = False,
    patience: int | None = None,
    test=None,
    keep_probabilities: bool = False,
    steps_per_call: int | None = None,
) -> list:
    """Train ``models`` (one architecture, each built from its own seed) in the compiled JAX loop,
    all at once: member ``i`` on the rows ``splits[i][0]`` of ``(x, y)``, validated on the rows
    ``splits[i][1]`` (or None), from ``seeds[i]``, with the same ``schedule`` as :func:`fit`. With
    ``test`` each epoch also records the test accuracy (members and ensemble; see
    :func:`jaxloop.fit_members`). Returns one Keras history per member, with ``compile_seconds``
    (compiling is not counted in its ``seconds``); the models hold the trained weights.
    ``steps_per_call``: see :class:`jaxloop.MemberTrainer`."""
    from . import jaxloop

    config.check_name("schedule", schedule, SCHEDULES)
    steps = epochs * math.ceil(min(len(f) for f, _ in splits) / batch_size)
    optimizers = []
    for model in models:
        if schedule == "one-cycle":
            compile_one_cycle(model, steps)
        optimizers.append(model.optimizer.__class__.from_config(model.optimizer.get_config()))
    loss = keras.losses.get(models[0].loss) if isinstance(models[0].loss, str) else models[0].loss
    trainer = jaxloop.MemberTrainer(models, optimizers, loss, x, y, batch_size, augment, seeds, steps_per_call)
    validated = all(v is not None for _, v in splits)
    patience = patience_for(epochs) if patience is None else patience
    histories = jaxloop.fit_members(
        trainer,
        [f for f, _ in splits],
        [v for _, v in splits] if validated else None,
        epochs,
        early_stopping=patience if schedule in ("plateau", "cosine") else None,
        plateau=max(1, patience // 2) if schedule == "plateau" else None,
        epoch_rates=cosine_decay(_learning_rate(models[0]), epochs) if schedule == "cosine" else None,
        test=test,
        keep_probabilities=keep_probabilities,
        seed=seeds[0],
    )
    found = []
    for history_dict in histories:
        history = keras.callbacks.History()
        history.compile_seconds = history_dict.pop("compile_seconds")
        history.history, history.epoch = history_dict, list(range(len(history_dict["loss"])))
        found.append(history)
    return found


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
    augment: bool | str = False,
):
    """Fit on 90% of ``(x, y)``, validate on a stratified 10%; return ``(history, seconds per epoch)``.

    ``schedule``: see :func:`callbacks`; ``augment``: random rotation, shift and zoom, or
    "elastic" (in the input pipeline, or on the device on JAX; see :func:`fit`). ``expand``: a function ``(x, y) -> (x, y)`` applied to the 90% only, to add
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

    def fit(self, X, y, **kwargs):
        """Keras' wrapper ``fit`` on TensorFlow; on JAX the compiled loop (integer labels,
        sparse cross-entropy), so each fit of a grid search costs one compiled loop."""
        if not use_jax_loop():
            return super().fit(X, y, **kwargs)
        X = np.asarray(X, dtype=np.float32)
        self.classes_, labels = np.unique(np.asarray(y), return_inverse=True)
        self.n_features_in_ = X.shape[1]
        keras.backend.clear_session()
        self.model_ = build(
            self.architecture,
            self.optimizer,
            self.learning_rate,
            input_shape=(X.shape[1],),
            n_classes=len(self.classes_),
            activation=self.activation,
            kernel_initializer=self.kernel_initializer,
            dropout=self.dropout,
            seed=self.seed,
        )
        self.history_ = fit(self.model_, X, labels, None, self.epochs, self.batch_size, self.seed, "constant")
        return self

    def predict_proba(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return predict_proba(self.model_, np.asarray(X, dtype=np.float32))

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def train_members(
    architecture: str,
    x,
    y,
    splits,
    epochs: int,
    batch_size: int = CPU_BATCH,
    seed: int = config.DEFAULT_SEED,
    jit_compile: bool = False,
    schedule: str = "plateau",
    augment: bool | str = False,
    **build_kwargs,
) -> list:
    """The members of an ensemble: member ``i`` built and trained from seed ``seed + i`` on the rows
    ``splits[i][0]`` of ``(x, y)``, validated on ``splits[i][1]`` (or None). On JAX they train
    together in one compiled loop; otherwise one after the other with :func:`fit`. Prints one line
    per member; returns the trained models."""
    seeds = [seed + i for i in range(len(splits))]
    models = [build(architecture, jit_compile=jit_compile, seed=s, **build_kwargs) for s in seeds]
    start = time.perf_counter()
    if use_jax_loop():
        histories = train_together(models, x, y, splits, epochs, batch_size, seeds, schedule, augment)
        seconds = [time.perf_counter() - start] * len(models)
    else:
        histories, seconds = [], []
        for model, s, (fit_rows, val_rows) in zip(models, seeds, splits):
            validation = None if val_rows is None else (x[val_rows], y[val_rows])
            histories.append(fit(model, x[fit_rows], y[fit_rows], validation, epochs, batch_size, s, schedule, augment))
            seconds.append(time.perf_counter() - start - sum(seconds))
    for i, (history, took) in enumerate(zip(histories, seconds)):
        h = history.history
        score = (
            f"best val_accuracy {max(h['val_accuracy']):.4f}"
            if "val_accuracy" in h
            else f"last training accuracy {h['accuracy'][-1]:.4f}"
        )
        epochs_run = f"{len(history.epoch)} epoch{'s' * (len(history.epoch) != 1)}"
        print(f"member {i + 1}/{len(models)}: {epochs_run}, {score} ({took:.0f} s)", flush=True)
    return models


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
    augment: bool | str = False,
    **build_kwargs,
) -> list:
    """Train ``k`` networks, each on all folds but one and validated on that one (the
    ``schedule`` of :func:`callbacks`; ``augment`` as in :func:`fit`)."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    splits = list(folds.split(x, y))
    return train_members(
        architecture, x, y, splits, epochs, batch_size, seed, jit_compile, schedule, augment, **build_kwargs
    )


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
    history, _ = train(copy, x, y, epochs=epochs, batch_size=batch_size, seed=seed, verbose_lines=False)
    return copy, history
