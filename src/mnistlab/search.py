"""Hyper-parameter grids sized by profile, and the subsets searches run on."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import numpy as np

from . import config

#: PCA(whiten) + RBF SVC: after whitening each component has unit variance, so useful
#: gammas sit near 1 / (2 * n_components).
PCA_SVC_GRIDS = {
    "tiny": {"pca__n_components": [30], "svc__C": [10], "svc__gamma": [0.02]},
    "small": {"pca__n_components": [35, 50], "svc__C": [5, 20], "svc__gamma": [0.01, 0.02]},
    "full": {"pca__n_components": [30, 40, 50, 70], "svc__C": [2, 5, 10, 30], "svc__gamma": [0.005, 0.01, 0.02, 0.04]},
}


def pca_svc_grid(profile) -> dict:
    """The ``n_components × C × gamma`` grid of the profile."""
    return PCA_SVC_GRIDS[config.get_profile(profile).grid]


def search_subset(x, y, profile, seed: int = config.DEFAULT_SEED, limit: int | None = None):
    """A stratified subset of at most ``limit`` (default ``profile.search_max_train``) examples."""
    from .data import stratified_subset

    return stratified_subset(x, y, limit or config.get_profile(profile).search_max_train, seed)


def svc_subset(x, y, profile, seed: int = config.DEFAULT_SEED):
    """The plain SVC's training set: all of it where ``profile.svc_max_train`` is None (``full``,
    as the published baselines train), else a stratified subset of that size."""
    limit = config.get_profile(profile).svc_max_train
    return (x, y) if limit is None or limit >= len(y) else search_subset(x, y, profile, seed, limit)


def grid_size(grid: dict) -> int:
    return int(np.prod([len(v) for v in grid.values()]))


#: The grid people use for this problem (optimizer × batch size × initializer × activation ×
#: dropout × epochs). ``small`` is searched by successive halving to stay within ``quick``.
CNN_GRIDS = {
    "tiny": {
        "optimizer": ["adam"],
        "batch_size": [64],
        "kernel_initializer": ["glorot_uniform"],
        "activation": ["relu"],
        "dropout": [0.25],
        "epochs": [1],
    },
    "small": {
        "optimizer": ["adam", "rmsprop"],
        "batch_size": [32, 128],
        "kernel_initializer": ["glorot_uniform", "he_normal"],
        "activation": ["relu"],
        "dropout": [0.25, 0.5],
        "epochs": [3],
    },
    "full": {
        "optimizer": ["adam", "nadam", "rmsprop"],
        "batch_size": [32, 128],
        "kernel_initializer": ["glorot_uniform", "he_normal"],
        "activation": ["relu", "elu"],
        "dropout": [0.25, 0.5],
        "epochs": [3, 6],
    },
}


def cnn_search(estimator, profile, cv, n_jobs: int = 1, seed: int = config.DEFAULT_SEED):
    """The search for the profile: full grid, or successive halving over it for ``small``.

    Both are scikit-learn searches, so ``n_jobs`` and a joblib backend (e.g. Dask) spread them.
    """
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV

    grid_name = config.get_profile(profile).grid
    grid = CNN_GRIDS[grid_name]
    if grid_name == "small":
        return HalvingGridSearchCV(
            estimator, grid, cv=cv, factor=3, n_jobs=n_jobs, random_state=seed, min_resources="exhaust"
        )
    return GridSearchCV(estimator, grid, cv=cv, n_jobs=n_jobs)


@contextmanager
def backend(cluster: str | None = None):
    """Where a search's fits run: joblib's Dask backend on the cluster at ``cluster`` (a scheduler
    address such as ``tcp://10.0.0.5:8786``, else ``$SEARCH_CLUSTER``), or this machine.
    Yields a sentence saying which."""
    address = cluster or os.environ.get("SEARCH_CLUSTER")
    if not address:
        yield "on this machine"
        return
    import joblib
    from dask.distributed import Client

    with Client(address, timeout=30) as client, joblib.parallel_backend("dask"):
        workers = len(client.scheduler_info()["workers"])
        yield f"on the Dask cluster at {address} ({workers} workers)"


def fit_search(search_cv, x, y, cluster: str | None = None) -> str:
    """Fit a scikit-learn search, on a Dask cluster when one is named (:func:`backend`);
    return one line saying what ran where and how long it took."""
    start = time.perf_counter()
    with backend(cluster) as where:
        search_cv.fit(x, y)
    n_fits = len(search_cv.cv_results_["params"]) * search_cv.n_splits_
    return f"{n_fits} fits {where} in {time.perf_counter() - start:.0f} s"
