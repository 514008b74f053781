"""Data augmentation in the input pipeline: random rotation, shift and zoom of a whole batch at
once, in vectorised NumPy (bilinear sampling, zero fill), and optionally elastic distortions as
Simard, Steinkraus & Platt (2003) describe them: a random displacement field per image, smoothed
by a Gaussian and scaled.

It runs before the batch reaches the model, so it costs the same on every Keras backend
(TensorFlow, JAX, PyTorch) and never enters an XLA-compiled graph, where Keras' augmentation
layers are slow.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

ROTATION, SHIFT, ZOOM = 10.0, 0.1, 0.1  # degrees; fractions of the image size
#: Elastic distortions (Simard et al. 2003, section 2): the displacement fields are uniform in
#: (-1, 1) per pixel, convolved with a Gaussian of standard deviation SIGMA pixels and multiplied
#: by ALPHA; the paper's values for MNIST are sigma = 4 and alpha = 34.
ELASTIC_ALPHA, ELASTIC_SIGMA = 34.0, 4.0

#: What ``augment=`` accepts in training: False (none), True or "affine" (rotation, shift, zoom),
#: "elastic" (the same affine transform plus an elastic distortion, in one resampling).
MODES = ("affine", "elastic")


def mode(augment) -> str | None:
    """The augmentation an ``augment=`` argument asks for: None, "affine" or "elastic"."""
    if augment is None or augment is False:
        return None
    if augment is True:
        return "affine"
    if augment not in MODES:
        raise ValueError(f"unknown augmentation {augment!r}; choose False, True, or one of: {', '.join(MODES)}")
    return augment


def gaussian_kernel(sigma: float = ELASTIC_SIGMA) -> np.ndarray:
    """A normalised 1-D Gaussian of standard deviation ``sigma``, cut at three sigma."""
    radius = int(3 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def elastic_displacements(noise, alpha: float = ELASTIC_ALPHA, sigma: float = ELASTIC_SIGMA) -> np.ndarray:
    """Smooth displacement fields from ``noise`` (…×H×W, uniform in (-1, 1)): each field convolved
    with :func:`gaussian_kernel` along both axes (zeros beyond the border) and scaled by ``alpha``."""
    kernel = gaussian_kernel(sigma)
    smooth = ndimage.convolve1d(np.asarray(noise, dtype=np.float32), kernel, axis=-1, mode="constant")
    return alpha * ndimage.convolve1d(smooth, kernel, axis=-2, mode="constant")


def augment_images(
    x,
    rng: np.random.Generator,
    rotation: float = ROTATION,
    shift: float = SHIFT,
    zoom: float = ZOOM,
    elastic: float = 0.0,
    sigma: float = ELASTIC_SIGMA,
) -> np.ndarray:
    """Each image of ``x`` (N×H×W, float) rotated by up to ±``rotation`` degrees, shifted by up to
    ±``shift`` of its size and zoomed by a factor in 1 ± ``zoom``, all drawn from ``rng``; with
    ``elastic`` > 0, also displaced by an elastic field of that strength (alpha) and smoothness
    (``sigma``, :func:`elastic_displacements`)."""
    x = np.asarray(x, dtype=np.float32)
    n, h, w = x.shape
    angle = np.deg2rad(rng.uniform(-rotation, rotation, n))
    scale = rng.uniform(1 - zoom, 1 + zoom, n)
    tx, ty = rng.uniform(-shift, shift, (2, n)) * np.array([[w], [h]])
    sx, sy = source_coordinates(angle, scale, tx, ty, h, w)
    if elastic:
        dx, dy = elastic_displacements(rng.uniform(-1, 1, (2, n, h, w)), elastic, sigma)
        sx, sy = sx + dx, sy + dy
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
