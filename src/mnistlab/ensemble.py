"""Ensembles of networks: members trained on every image from their own seeds, and test-time shifts.

Members: k networks of one architecture, each trained on all the training images from its own
seed (initial weights, batch order, augmentation). Chapter 6 measures them; they replaced members
trained one per cross-validation fold, which see only (k-1)/k of the images.

Test-time shifts: a digit moved by one pixel is the same digit, but a network does not answer
exactly the same; averaging its answers over the image and its four 1-pixel shifts smooths out
some of its mistakes. Measured on full MNIST (2 CPU cores): +0.03 to +0.07 points for four of five
single networks, at five times the prediction cost; chapter 6 measures what they do to an ensemble.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import config, networks, training

#: The image itself and its four 1-pixel shifts (dx, dy): right, left, down, up.
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def seed_members(
    architecture: str,
    x,
    y,
    k: int,
    epochs: int,
    batch_size: int = networks.CPU_BATCH,
    seed: int = config.DEFAULT_SEED,
    jit_compile: bool = False,
    schedule: str = "one-cycle",
    augment: bool = True,
    **build_kwargs,
) -> list:
    """Train ``k`` networks on all of ``(x, y)``, member ``i`` from seed ``seed + i``; no images are
    held out, so ``schedule`` must run to its end (``one-cycle`` or ``constant``)."""
    if schedule not in ("one-cycle", "constant"):
        raise ValueError(
            f"schedule={schedule!r} stops early on validation images, and seed members have none: "
            "use 'one-cycle' or 'constant', or training.fold_ensemble"
        )
    everything = np.arange(len(x))
    splits = [(everything, None)] * k
    return training.train_members(
        architecture, x, y, splits, epochs, batch_size, seed, jit_compile, schedule, augment, **build_kwargs
    )


def shifted(x, dx: int, dy: int) -> np.ndarray:
    """N×H×W images moved ``dx`` pixels right and ``dy`` down; what moves in is 0 (background)."""
    x = np.asarray(x)
    return ndimage.shift(x, (0, dy, dx) + (0,) * (x.ndim - 3), order=0, mode="constant", cval=0)


def predict_proba(model, x, shifts=SHIFTS, batch_size: int = 512) -> np.ndarray:
    """The mean of ``model``'s class probabilities over ``shifts`` of the images ``x``."""
    return np.mean([networks.predict_proba(model, shifted(x, dx, dy), batch_size) for dx, dy in shifts], axis=0)
