"""The compiled training loop of the JAX backend: on a GPU, one epoch is one call on the device.

Keras' own JAX training-loop API (``model.stateless_call``, ``optimizer.stateless_apply``, as in
the keras.io guide "Writing a training loop from scratch in JAX"), with the steps of an epoch
folded into one ``jax.lax.scan`` on a GPU (one step per call on the CPU, where XLA runs steps
slower inside a scan: :func:`default_steps_per_call`). The training images stay on the device;
each step draws its batch and its augmentation (rotation, shift and zoom in the ranges of
:mod:`mnistlab.augment`, and its elastic distortions when asked) on the device too, so the host
does nothing between steps. The members of an ensemble train together: ``jax.vmap`` runs the
same step over their stacked weights, each member with its own initial weights, batch order,
dropout and augmentation.

The Keras models stay ordinary Keras models: their weights are read before training and written
back after it, so they predict, save as ``.keras`` and reload like any other.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import keras
import numpy as np

from . import augment
from .augment import mode as augment_mode

#: Images per evaluation call (validation and test accuracy are computed on the device).
EVAL_BATCH = 1000


def draw_transforms(key, n: int, h: int, w: int):
    """``n`` random transforms on the device, in the ranges of :mod:`mnistlab.augment`: angle
    (radians), zoom factor, and shifts in pixels along x and y."""
    k_angle, k_scale, k_shift = jax.random.split(key, 3)
    angle = jnp.deg2rad(jax.random.uniform(k_angle, (n,), minval=-augment.ROTATION, maxval=augment.ROTATION))
    scale = jax.random.uniform(k_scale, (n,), minval=1 - augment.ZOOM, maxval=1 + augment.ZOOM)
    shift = jax.random.uniform(k_shift, (2, n), minval=-augment.SHIFT, maxval=augment.SHIFT)
    return angle, scale, shift[0] * w, shift[1] * h


def elastic_displacements(noise, alpha: float = augment.ELASTIC_ALPHA, sigma: float = augment.ELASTIC_SIGMA):
    """:func:`mnistlab.augment.elastic_displacements` on the device: ``noise`` (…×H×W) smoothed
    by the same Gaussian along both axes (zeros beyond the border) and scaled by ``alpha``."""
    kernel = jnp.asarray(augment.gaussian_kernel(sigma))
    lead = (1,) * (noise.ndim - 1)
    smooth = jax.scipy.signal.convolve(noise, kernel.reshape(*lead, -1), mode="same")
    return alpha * jax.scipy.signal.convolve(smooth, kernel.reshape(*lead[:-1], -1, 1), mode="same")


def augment_batch(key, x, elastic: float = 0.0):
    """``x`` (B×H×W) rotated, shifted and zoomed on the device, each image by its own transform
    from ``key``: the inverse map of :mod:`mnistlab.augment`, sampled bilinearly, zeros outside;
    with ``elastic`` > 0 also displaced by an elastic field of that strength (alpha)."""
    n, h, w = x.shape
    if elastic:
        key, k_elastic = jax.random.split(key)
    sx, sy = augment.source_coordinates(*draw_transforms(key, n, h, w), h, w, xp=jnp)
    if elastic:
        dx, dy = elastic_displacements(jax.random.uniform(k_elastic, (2, n, h, w), minval=-1.0, maxval=1.0), elastic)
        sx, sy = sx + dx, sy + dy
    sample = jax.vmap(lambda image, cx, cy: jax.scipy.ndimage.map_coordinates(image, [cy, cx], order=1, cval=0.0))
    return sample(x, sx, sy)


def default_steps_per_call() -> int:
    """Steps per device call: a whole epoch (0) on a GPU or TPU, where one call per epoch leaves
    the host nothing to do between steps; one on the CPU, where XLA ran the same step 4x slower
    inside a ``lax.scan`` (even of one step) than called on its own (bn_cnn, batch 64, 2 cores:
    about 300 against 1,300 images/s; make bench's 'loop' column measures it)."""
    return 0 if jax.default_backend() in ("gpu", "tpu") else 1


def select(keep, new, old):
    """``new`` where ``keep`` (one flag per member, the leading axis), else ``old``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(keep.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)


def _stack(values_per_member):
    """Per-member lists of arrays -> one list of arrays with a leading member axis."""
    return [jnp.stack(column) for column in zip(*values_per_member)]


def _values(variables):
    return [jnp.asarray(keras.ops.convert_to_numpy(v.value)) for v in variables]


class MemberTrainer:
    """Trains the members of an ensemble (or one network) together on the device.

    ``models``: Keras models of one architecture, each built from its own seed. ``optimizers``:
    one unbuilt Keras optimizer per member (the same kind and settings). ``loss``: a Keras loss
    on integer labels. ``x, y``: every image the members may train or validate on (float32,
    N×…, integer labels); each member's own images are given as index arrays to
    :meth:`run_epoch`. ``steps_per_call``: steps compiled into one device call (0: a whole epoch;
    None: see :func:`default_steps_per_call`).
    """

    def __init__(self, models, optimizers, loss, x, y, batch_size: int, augment, seeds, steps_per_call=None):
        self.models, self.optimizers, self.loss = list(models), list(optimizers), loss
        self.batch_size, self.augment = int(batch_size), augment_mode(augment)
        self.keys = jnp.stack([jax.random.key(int(s)) for s in seeds])
        self.x, self.y = jnp.asarray(x, dtype=jnp.float32), jnp.asarray(y, dtype=jnp.int32)
        model, optimizer = self.models[0], self.optimizers[0]
        for member, opt in zip(self.models, self.optimizers):
            opt.build(member.trainable_variables)
        self.state = (
            _stack([_values(m.trainable_variables) for m in self.models]),
            _stack([_values(m.non_trainable_variables) for m in self.models]),
            _stack([_values(o.variables) for o in self.optimizers]),
        )
        updating = getattr(optimizer, "inner_optimizer", optimizer)  # under mixed float16, the wrapped one
        rate = getattr(updating, "_learning_rate", None)
        self._lr_index = next((i for i, v in enumerate(optimizer.variables) if v is rate), None)
        self._order = jax.jit(jax.vmap(self._member_order, in_axes=(0, 0, None)))
        self._steps = jax.jit(jax.vmap(self._member_steps), donate_argnums=0)
        self.steps_per_call = default_steps_per_call() if steps_per_call is None else steps_per_call
        self._predict = jax.jit(jax.vmap(self._member_predict, in_axes=(0, 0, None)))
        self._predict_own = jax.jit(jax.vmap(self._member_predict))  # each member its own images
        self._model, self._optimizer = model, optimizer

    # ----------------------------------------------------------------- on the device

    def train_step(self, state, batch):
        """One optimizer step of one member: forward, loss, gradients, update (all stateless)."""
        trainable, non_trainable, optimizer_vars = state
        x, y = batch

        def loss_of(trainable, non_trainable):
            y_pred, non_trainable = self._model.stateless_call(trainable, non_trainable, x, training=True)
            loss = jnp.mean(self.loss(y, y_pred))
            mapping = list(zip(self._optimizer.variables, optimizer_vars))
            with keras.StatelessScope(state_mapping=mapping):
                scaled = self._optimizer.scale_loss(loss)  # loss scaling under mixed float16
            return scaled, (loss, jnp.mean(jnp.argmax(y_pred, axis=-1) == y), non_trainable)

        grads, (loss, accuracy, non_trainable) = jax.grad(loss_of, has_aux=True)(trainable, non_trainable)
        trainable, optimizer_vars = self._optimizer.stateless_apply(optimizer_vars, grads, trainable)
        return (trainable, non_trainable, optimizer_vars), jnp.stack([loss, accuracy])

    def _member_order(self, key, rows, epoch):
        """One member's batches for ``epoch``: its training ``rows`` shuffled, in full batches (the
        last is topped up from the start of the order), and a random key for each step."""
        n, b = rows.shape[0], self.batch_size
        steps = -(-n // b)
        key = jax.random.fold_in(key, epoch)
        order = rows[jax.random.permutation(key, n)]
        order = jnp.concatenate([order, order[: steps * b - n]]).reshape(steps, b)
        return order, jax.random.split(jax.random.fold_in(key, 1), steps)

    def _member_steps(self, state, order, keys, active):
        """Consecutive steps of one member (``order``: step × batch indices), folded into one
        ``lax.scan``; returns the new state and the sums of the steps' loss and accuracy."""

        def step(carry, args):
            index, step_key = args
            x = self.x[index]
            if self.augment:
                elastic = augment.ELASTIC_ALPHA if self.augment == "elastic" else 0.0
                x = augment_batch(step_key, x.reshape(-1, *self._image_shape), elastic).reshape(x.shape)
            return self.train_step(carry, (x, self.y[index]))

        if order.shape[0] == 1:  # XLA on the CPU runs a step 4x slower inside any scan, even of one
            new_state, metrics = step(state, (order[0], keys[0]))
            metrics = metrics[None]
        else:
            new_state, metrics = jax.lax.scan(step, state, (order, keys))
        # A member that stopped early keeps its weights while the others go on.
        new_state = jax.tree.map(lambda new, old: jnp.where(active, new, old), new_state, state)
        return new_state, metrics.sum(axis=0)

    def _member_predict(self, trainable, non_trainable, x):
        """Class probabilities of one member for ``x`` (padded to whole evaluation batches)."""
        batches = x.reshape(-1, EVAL_BATCH, *x.shape[1:])

        def one(batch):
            y_pred, _ = self._model.stateless_call(trainable, non_trainable, batch, training=False)
            return y_pred.astype(jnp.float32)

        return jax.lax.map(one, batches).reshape(x.shape[0], -1)

    @property
    def _image_shape(self):
        side = int(round(math.sqrt(int(np.prod(self.x.shape[1:])))))
        return (side, side)

    # ----------------------------------------------------------------- from the host

    def predict(self, x) -> jnp.ndarray:
        """Probabilities of every member for ``x``: an array (members, N, classes) on the device."""
        x = jnp.asarray(x, dtype=jnp.float32)
        n = x.shape[0]
        padded = jnp.concatenate([x, jnp.zeros((-n % EVAL_BATCH, *x.shape[1:]), x.dtype)])
        return self._predict(self.state[0], self.state[1], padded)[:, :n]

    def learning_rates(self) -> np.ndarray | None:
        """Each member's learning rate, when it is a variable (not a schedule)."""
        if self._lr_index is None:
            return None
        return np.asarray(self.state[2][self._lr_index])

    def set_learning_rates(self, rates) -> None:
        opt_vars = list(self.state[2])
        opt_vars[self._lr_index] = jnp.asarray(rates, dtype=opt_vars[self._lr_index].dtype)
        self.state = (self.state[0], self.state[1], opt_vars)

    def _chunks(self, steps: int):
        k = min(self.steps_per_call, steps) if self.steps_per_call > 0 else steps
        return [(start, min(start + k, steps)) for start in range(0, steps, k)]

    def compile(self, rows) -> float:
        """Compile an epoch over these ``rows`` ahead of training; return the seconds it took."""
        start = time.perf_counter()
        order, keys = self._order.lower(self.keys, jnp.asarray(rows), 0).compile()(self.keys, jnp.asarray(rows), 0)
        active = jnp.ones(len(self.models), bool)
        for size in {b - a for a, b in self._chunks(order.shape[1])}:
            self._steps.lower(self.state, order[:, :size], keys[:, :size], active).compile()
        return time.perf_counter() - start

    def run_epoch(self, rows, epoch: int, active) -> np.ndarray:
        """Train every member one epoch on its ``rows`` (members × n index array), in device calls of
        :attr:`steps_per_call` steps; return each member's mean training loss and accuracy
        (members × 2)."""
        order, keys = self._order(self.keys, jnp.asarray(rows), epoch)
        active, total = jnp.asarray(active), 0
        for a, b in self._chunks(order.shape[1]):
            self.state, sums = self._steps(self.state, order[:, a:b], keys[:, a:b], active)
            total = total + sums
        return np.asarray(total) / order.shape[1]

    def write_back(self, state=None) -> None:
        """Copy the trained weights (or those of ``state``) into the Keras models."""
        trainable, non_trainable, _ = self.state if state is None else state
        for m, model in enumerate(self.models):
            for variable, value in zip(model.trainable_variables, trainable):
                variable.assign(np.asarray(value[m]))
            for variable, value in zip(model.non_trainable_variables, non_trainable):
                variable.assign(np.asarray(value[m]))


def _rows(index_lists, seed: int):
    """Equal-length index arrays (members × n): folds differ by an image at most, and the few
    images beyond the shortest member's count are left out of that epoch order at random."""
    n = min(len(r) for r in index_lists)
    rng = np.random.default_rng(seed)
    return np.stack([np.sort(rng.permutation(np.asarray(r))[:n]) for r in index_lists])


def _padded(index_lists):
    """Index arrays padded to one length, with a mask of the real entries."""
    n = max(len(r) for r in index_lists)
    rows = np.stack([np.resize(np.asarray(r), n) for r in index_lists])
    mask = np.stack([np.arange(n) < len(r) for r in index_lists]).astype(np.float32)
    return rows, mask


def fit_members(
    trainer: MemberTrainer,
    fit_rows,
    val_rows=None,
    epochs: int = 1,
    early_stopping: int | None = None,
    plateau: int | None = None,
    epoch_rates=None,
    test=None,
    keep_probabilities: bool = False,
    seed: int = 0,
):
    """Train the members of ``trainer`` for ``epochs``, each on its ``fit_rows`` (index arrays into
    the trainer's images), and return one Keras-style history dict per member (``loss``,
    ``accuracy``, ``seconds``, and ``val_accuracy``/``val_loss`` with ``val_rows``,
    ``test_accuracy`` with ``test``), plus ``ensemble_test_accuracy`` (averaged probabilities) in
    every member's, and ``test_probabilities`` with ``keep_probabilities``. ``test``:
    ``(x_test, y_test)``, or ``([x_test, shifted copies…], y_test)`` to average over the copies.
    Compiling happens before the first epoch and is not counted in ``seconds``; it is returned in
    each history as ``compile_seconds``.

    The host does per epoch what Keras' callbacks would: ``early_stopping`` (patience on the
    validation accuracy; the member stops and keeps its best weights), ``plateau`` (patience on
    the validation loss; the learning rate halves, down to 1e-5), ``epoch_rates`` (a function of
    the epoch giving the learning rate, as ``LearningRateScheduler``)."""
    members = len(trainer.models)
    rows = _rows(fit_rows, seed)
    if val_rows is not None:
        val_index, val_mask = _padded(val_rows)
        val_y, n_val = trainer.y[jnp.asarray(val_index)], val_index.shape[1]
        val_x = _pad_members(trainer.x[jnp.asarray(val_index)])  # once: whole evaluation batches
    histories = [{"loss": [], "accuracy": [], "seconds": []} for _ in range(members)]
    active = np.ones(members, dtype=bool)
    best_acc, best_state = (
        np.full(members, -np.inf),
        jax.tree.map(jnp.copy, trainer.state),
    )  # the epoch donates its state
    best_loss, waits, plateau_waits = np.full(members, np.inf), np.zeros(members, int), np.zeros(members, int)
    elapsed, ran = 0.0, np.zeros(members, int)
    compile_seconds = trainer.compile(rows)
    for epoch in range(epochs):
        start = time.perf_counter()
        if epoch_rates is not None:
            trainer.set_learning_rates(np.full(members, epoch_rates(epoch)))
        train_loss, train_accuracy = trainer.run_epoch(rows, epoch, active).T
        ran += active
        if val_rows is not None:
            probs = trainer._predict_own(trainer.state[0], trainer.state[1], val_x)[:, :n_val]
            val_acc, val_loss = accuracies(probs, val_y, val_mask), losses(probs, val_y, val_mask)
        elapsed += time.perf_counter() - start
        for m, history in enumerate(histories):
            history["loss"].append(float(train_loss[m]))
            history["accuracy"].append(float(train_accuracy[m]))
            history["seconds"].append(elapsed)
            if val_rows is not None:
                history.setdefault("val_accuracy", []).append(float(val_acc[m]))
                history.setdefault("val_loss", []).append(float(val_loss[m]))
        if test is not None:
            copies = test[0] if isinstance(test[0], list | tuple) else [test[0]]
            test_probs = sum(trainer.predict(copy) for copy in copies) / len(copies)
            if keep_probabilities:
                for m, history in enumerate(histories):
                    history.setdefault("test_probabilities", []).append(np.asarray(test_probs[m]))
            for m, acc in enumerate(accuracies(test_probs, test[1])):
                histories[m].setdefault("test_accuracy", []).append(float(acc))
            ensemble = float(accuracies(test_probs.mean(axis=0, keepdims=True), test[1])[0])
            for history in histories:
                history.setdefault("ensemble_test_accuracy", []).append(ensemble)
        if val_rows is None:
            continue
        if early_stopping:
            improved = active & (val_acc > best_acc)
            best_acc = np.where(improved, val_acc, best_acc)
            best_state = select(jnp.asarray(improved), trainer.state, best_state)
            waits = np.where(improved, 0, waits + active)
            active &= ~((waits >= early_stopping) & (epoch > 0))
        if plateau and trainer.learning_rates() is not None:
            better = val_loss < best_loss - 1e-4
            best_loss = np.where(better, val_loss, best_loss)
            plateau_waits = np.where(better, 0, plateau_waits + 1)
            lower = plateau_waits >= plateau
            rates = trainer.learning_rates()
            trainer.set_learning_rates(np.where(lower, np.maximum(rates * 0.5, 1e-5), rates))
            plateau_waits[lower] = 0
        if not active.any():
            break
    trainer.write_back(best_state if early_stopping and val_rows is not None else None)
    histories = [{key: values[: ran[m]] for key, values in h.items()} for m, h in enumerate(histories)]
    for history in histories:
        history["compile_seconds"] = round(compile_seconds, 2)
    return histories


def _pad_members(x):
    """Pad the per-member images (members × n × …) to whole evaluation batches."""
    return jnp.concatenate([x, jnp.zeros((x.shape[0], -x.shape[1] % EVAL_BATCH, *x.shape[2:]), x.dtype)], axis=1)


def accuracies(probabilities, y, mask=None) -> np.ndarray:
    """Accuracy of each member's probabilities (members × N × C) against ``y`` (N or members × N)."""
    hits = jnp.argmax(probabilities, axis=-1) == jnp.asarray(y)
    if mask is None:
        return np.asarray(hits.mean(axis=-1))
    mask = jnp.asarray(mask)
    return np.asarray((hits * mask).sum(axis=-1) / mask.sum(axis=-1))


def losses(probabilities, y, mask) -> np.ndarray:
    """Mean cross-entropy of each member's probabilities on its (masked) validation images."""
    picked = jnp.take_along_axis(probabilities, jnp.asarray(y)[..., None], axis=-1)[..., 0]
    nll = -jnp.log(jnp.clip(picked, 1e-7, 1.0))
    mask = jnp.asarray(mask)
    return np.asarray((nll * mask).sum(axis=-1) / mask.sum(axis=-1))


def timed(function, *args):
    """``(result, seconds)``, waiting for the device to finish."""
    start = time.perf_counter()
    result = jax.block_until_ready(function(*args))
    return result, time.perf_counter() - start
