"""Feature helpers and model builders shared by the chapters."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from . import config


def flatten(x) -> np.ndarray:
    """N×28×28 uint8 images to N×784 floats in [0, 1]."""
    x = np.asarray(x)
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


def embed_2d(x, y, n_samples: int, seed: int = config.DEFAULT_SEED):
    """t-SNE of a random subset (after PCA to 50 dimensions): ``(points, labels)``."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(n_samples, len(x)), replace=False)
    features = PCA(n_components=50, random_state=seed).fit_transform(flatten(x[pick]))
    points = TSNE(
        n_components=2, init="pca", perplexity=min(30, (len(pick) - 1) // 3), random_state=seed
    ).fit_transform(features)
    return points, np.asarray(y)[pick]
