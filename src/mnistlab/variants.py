"""Derived datasets: noisy digits (and, later, multi-digit images), deterministic for a seed."""

from __future__ import annotations

import numpy as np

from . import config


def add_uniform_noise(x, level: int = 100, seed: int = config.DEFAULT_SEED) -> np.ndarray:
    """Add uniform noise in ``[0, level)`` to every pixel of uint8 images, clipped to 255."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, level, size=np.shape(x), dtype=np.int16)
    return np.clip(np.asarray(x, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
