"""Derived datasets, deterministic for a seed: noisy digits and multi-digit ("max digit") images."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import config

NOISE_LEVEL = 0.3  # default: uniform noise up to 30% of full intensity
TRANSFORM_SHARE = 0.2  # default: share of images rotated, flipped or transposed
TRANSFORMS = ("rot90", "rot180", "rot270", "flip_lr", "flip_ud", "transpose")
CANVAS = 64  # side of a triplet image
TRIPLET_NOISE = 0.15  # background noise of a triplet canvas, share of full intensity
INK_THRESHOLD = int(TRIPLET_NOISE * 255) + 5  # brighter than any noise pixel: ink


def add_uniform_noise(x, level: int = 100, seed: int = config.DEFAULT_SEED) -> np.ndarray:
    """Add uniform noise in ``[0, level)`` to every pixel of uint8 images, clipped to 255."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, level, size=np.shape(x), dtype=np.int16)
    return np.clip(np.asarray(x, dtype=np.int16) + noise, 0, 255).astype(np.uint8)


def _transform(image, name):
    return {
        "rot90": lambda a: np.rot90(a, 1),
        "rot180": lambda a: np.rot90(a, 2),
        "rot270": lambda a: np.rot90(a, 3),
        "flip_lr": np.fliplr,
        "flip_ud": np.flipud,
        "transpose": np.transpose,
    }[name](image)


def noisy_digits(
    x, level: float = NOISE_LEVEL, transform_share: float = TRANSFORM_SHARE, seed: int = config.DEFAULT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform background noise of amplitude ``level`` (0..1) over each whole image, and a
    random rotation, flip or transpose on a share of the images (as in noisy competition data).

    Returns ``(images, transforms)``; ``transforms`` names what was applied ('' for none).
    """
    if not 0 <= level <= 1:
        raise ValueError(f"noise level must be between 0 and 1, got {level}")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.uint8)
    applied = np.where(rng.random(len(x)) < transform_share, rng.choice(TRANSFORMS, len(x)), "")
    out = np.array([_transform(img, t) if t else img for img, t in zip(x, applied)], dtype=np.uint8)
    noise = rng.uniform(0, level * 255, size=out.shape)
    return np.clip(out + noise, 0, 255).astype(np.uint8), applied


def reoriented(x, seed: int = config.DEFAULT_SEED) -> np.ndarray:
    """Each image with one of :data:`TRANSFORMS` applied, drawn at random: extra training
    examples of the orientations a share of the noisy images come in. Uniform noise looks
    the same in every orientation, so noisy images can be reoriented as they are."""
    x = np.asarray(x)
    picks = np.random.default_rng(seed).choice(TRANSFORMS, len(x))
    return np.array([_transform(img, t) for img, t in zip(x, picks)], dtype=x.dtype)


def with_reoriented_copies(x, y, seed: int = config.DEFAULT_SEED):
    """``(x, y)`` followed by a reoriented copy of every image (:func:`reoriented`), same labels."""
    return np.concatenate([x, reoriented(x, seed)]), np.concatenate([y, y])


def triplets(
    x, y, n: int, seed: int = config.DEFAULT_SEED, noise: float = TRIPLET_NOISE, canvas: int = CANVAS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` canvases (``canvas``×``canvas``) each holding three digits of ``x`` in three of the
    four quadrants (so they never overlap), with a small random shift and background noise.

    Returns ``(images, labels, parts)``: the label is the largest of the three digits, ``parts``
    the three digits themselves.
    """
    rng = np.random.default_rng(seed)
    half = canvas // 2
    slack = half - x.shape[1]
    if slack < 0:
        raise ValueError(f"a {canvas}-pixel canvas cannot hold {x.shape[1]}-pixel digits in quadrants")
    images = np.zeros((n, canvas, canvas), dtype=np.float32)
    picks = rng.integers(0, len(x), size=(n, 3))
    for i in range(n):
        for k, quadrant in enumerate(rng.permutation(4)[:3]):
            r, c = divmod(int(quadrant), 2)
            dr, dc = rng.integers(0, slack + 1, size=2)
            top, left = r * half + dr, c * half + dc
            images[i, top : top + x.shape[1], left : left + x.shape[2]] = x[picks[i, k]]
    images += rng.uniform(0, noise * 255, size=images.shape)
    parts = np.asarray(y)[picks]
    return np.clip(images, 0, 255).astype(np.uint8), parts.max(axis=1), parts


def extract_digits(image, n: int = 3, threshold: int = INK_THRESHOLD, size: int = 28) -> np.ndarray:
    """The ``n`` largest connected components of a multi-digit image, each placed on a
    ``size``×``size`` canvas with its centre of mass in the middle, as MNIST digits are
    (by area, largest first; blank if missing). Centring by the bounding box instead shifts
    digits by a pixel or two, which costs a pixel-based classifier dearly.

    The ink mask is dilated by two pixels before labelling, so that a digit drawn in two
    strokes (a 5 with a detached bar) stays one component; digits are further apart than that.
    """
    mask = np.asarray(image) > threshold
    labels, count = ndimage.label(ndimage.binary_dilation(mask, iterations=2))
    labels = np.where(mask, labels, 0)
    areas = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
    out = np.zeros((n, size, size), dtype=np.uint8)
    for k, component in enumerate(np.argsort(-areas)[:n] + 1):
        rows, cols = ndimage.find_objects((labels == component).astype(int))[0]
        crop = np.where(labels[rows, cols] == component, image[rows, cols], 0)
        h, w = crop.shape
        if h > size or w > size:
            continue
        centre_row, centre_col = ndimage.center_of_mass(crop.astype(np.float64))
        top = int(np.clip(round(size / 2 - centre_row), 0, size - h))
        left = int(np.clip(round(size / 2 - centre_col), 0, size - w))
        out[k, top : top + h, left : left + w] = crop
    return out


def largest_digit(digit_predictions, crops) -> np.ndarray:
    """The pipeline's answer for each image: the largest digit predicted among its non-blank
    crops. ``crops`` is images × n × 28 × 28 (from :func:`extract_digits`), ``digit_predictions``
    one class per crop (images × n, or flat); -1 where no digit was found at all."""
    crops = np.asarray(crops)
    predictions = np.asarray(digit_predictions).reshape(crops.shape[:2])
    return np.where(crops.any(axis=(2, 3)), predictions, -1).max(axis=1)


def threshold_denoise(x, threshold: int) -> np.ndarray:
    """Set every pixel darker than ``threshold`` to 0 (background)."""
    x = np.asarray(x)
    return np.where(x < threshold, 0, x).astype(np.uint8)


def median_denoise(x, size: int = 3) -> np.ndarray:
    """A ``size``×``size`` median filter on each image."""
    return ndimage.median_filter(np.asarray(x), size=(1, size, size)).astype(np.uint8)
