"""Data augmentation in the input pipeline: random rotation, shift and zoom of a whole batch at
once, in vectorised NumPy (bilinear sampling, zero fill).

It runs before the batch reaches the model, so it costs the same on every Keras backend
(TensorFlow, JAX, PyTorch) and never enters an XLA-compiled graph, where Keras' augmentation
layers are slow.
"""

from __future__ import annotations

import numpy as np

ROTATION, SHIFT, ZOOM = 10.0, 0.1, 0.1  # degrees; fractions of the image size


def augment_images(
    x, rng: np.random.Generator, rotation: float = ROTATION, shift: float = SHIFT, zoom: float = ZOOM
) -> np.ndarray:
    """Each image of ``x`` (N×H×W, float) rotated by up to ±``rotation`` degrees, shifted by up to
    ±``shift`` of its size and zoomed by a factor in 1 ± ``zoom``, all drawn from ``rng``."""
    x = np.asarray(x, dtype=np.float32)
    n, h, w = x.shape
    angle = np.deg2rad(rng.uniform(-rotation, rotation, n))
    scale = rng.uniform(1 - zoom, 1 + zoom, n)
    tx, ty = rng.uniform(-shift, shift, (2, n)) * np.array([[w], [h]])
    sx, sy = source_coordinates(angle, scale, tx, ty, h, w)
    return bilinear(x, sx, sy)


def source_coordinates(angle, scale, tx, ty, h: int, w: int, xp=np):
    """For each of N transforms (angle in radians, zoom factor, shift in pixels), the source pixel
    ``(sx, sy)`` (N×H×W) that lands on each output pixel: the inverse of rotating about the centre,
    zooming and shifting. ``xp`` is ``numpy`` or ``jax.numpy`` (the JAX loop draws on the device)."""
    angle, scale, tx, ty = (v[:, None, None] for v in (angle, scale, tx, ty))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = xp.meshgrid(xp.arange(h, dtype=xp.float32), xp.arange(w, dtype=xp.float32), indexing="ij")
    dx, dy = xx[None] - cx - tx, yy[None] - cy - ty
    cos, sin = xp.cos(angle), xp.sin(angle)
    return (cos * dx + sin * dy) / scale + cx, (-sin * dx + cos * dy) / scale + cy


def bilinear(x: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Sample each image of ``x`` at the (N×H×W) coordinates ``sx, sy``; zero outside."""
    n, h, w = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))  # a zero border: outside samples read zeros
    sx = np.clip(sx, -1, w) + 1
    sy = np.clip(sy, -1, h) + 1
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    wx, wy = (sx - x0).astype(np.float32), (sy - y0).astype(np.float32)
    x1, y1 = np.minimum(x0 + 1, w + 1), np.minimum(y0 + 1, h + 1)
    i = np.arange(n)[:, None, None]
    top = padded[i, y0, x0] * (1 - wx) + padded[i, y0, x1] * wx
    bottom = padded[i, y1, x0] * (1 - wx) + padded[i, y1, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)
