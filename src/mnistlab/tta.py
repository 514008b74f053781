"""Test-time augmentation: a network's probabilities averaged over shifted copies of each image.

A digit moved by one pixel is the same digit, but a network does not answer exactly the same:
averaging its answers over the image and its four 1-pixel shifts smooths out some of its
mistakes. Measured on full MNIST (bn_cnn-type networks trained 15 epochs with augmentation,
2 CPU cores): +0.03 to +0.06 points per network, at five times the prediction cost.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import networks

#: The image itself and its four 1-pixel shifts (dx, dy): right, left, down, up.
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def shifted(x, dx: int, dy: int) -> np.ndarray:
    """N×H×W images moved ``dx`` pixels right and ``dy`` down; what moves in is 0 (background)."""
    x = np.asarray(x)
    return ndimage.shift(x, (0, dy, dx) + (0,) * (x.ndim - 3), order=0, mode="constant", cval=0)


def predict_proba(model, x, shifts=SHIFTS, batch_size: int = 512) -> np.ndarray:
    """The mean of ``model``'s class probabilities over ``shifts`` of the images ``x``."""
    return np.mean([networks.predict_proba(model, shifted(x, dx, dy), batch_size) for dx, dy in shifts], axis=0)
