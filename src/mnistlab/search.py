"""Hyper-parameter grids sized by profile, and the subsets searches run on."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from . import config

#: PCA(whiten) + RBF SVC: after whitening each component has unit variance, so useful
#: gammas sit near 1 / (2 * n_components).
PCA_SVC_GRIDS = {
    "tiny": {"pca__n_components": [30], "svc__C": [10], "svc__gamma": [0.02]},
    "small": {"pca__n_components": [35, 50], "svc__C": [5, 20], "svc__gamma": [0.01, 0.02]},
    "full": {"pca__n_components": [30, 40, 50, 70], "svc__C": [2, 5, 10, 30],
             "svc__gamma": [0.005, 0.01, 0.02, 0.04]},
}


def pca_svc_grid(profile) -> dict:
    """The ``n_components × C × gamma`` grid of the profile."""
    return PCA_SVC_GRIDS[config.get_profile(profile).grid]


def search_subset(x, y, profile, seed: int = config.DEFAULT_SEED):
    """A stratified subset of at most ``profile.search_max_train`` examples for searches."""
    limit = config.get_profile(profile).search_max_train
    if limit >= len(y):
        return x, y
    x_sub, _, y_sub, _ = train_test_split(x, y, train_size=limit, stratify=y, random_state=seed)
    return x_sub, y_sub


def grid_size(grid: dict) -> int:
    return int(np.prod([len(v) for v in grid.values()]))
