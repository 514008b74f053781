"""Scale-out: the scikit-learn searches run on a Dask cluster through joblib's Dask backend and
find the same best parameters as on this machine (a LocalCluster of two worker processes)."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from mnistlab import search
from mnistlab.data import load_dataset
from mnistlab.models import flatten

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as local:
        yield local


def fitted_calls(cluster) -> float:
    """Seconds the cluster's workers spent computing batches of scikit-learn fits."""
    prefixes = cluster.scheduler.task_prefixes.items()
    return sum(prefix.all_durations.get("compute", 0) for name, prefix in prefixes if "fit_and_score" in name)


def test_pca_svc_search_on_a_dask_cluster_matches_this_machine(cluster, monkeypatch):
    ds = load_dataset("mnist-sample", "smoke", seed=0)
    x, y = flatten(ds.x_train), ds.y_train

    def grid_search():  # the quick profile's grid: 8 combinations, so "the same best" can fail
        pipeline = Pipeline([("pca", PCA(whiten=True, random_state=0)), ("svc", SVC())])
        return GridSearchCV(pipeline, search.pca_svc_grid("quick"), cv=StratifiedKFold(2, shuffle=True, random_state=0))

    local = grid_search()
    assert "on this machine" in search.fit_search(local, x, y)
    assert local.best_params_ != local.cv_results_["params"][0]  # the best is not simply the first
    before = fitted_calls(cluster)
    monkeypatch.setenv("SEARCH_CLUSTER", cluster.scheduler_address)  # the environment variable form
    remote = grid_search()
    line = search.fit_search(remote, x, y)
    assert f"on the Dask cluster at {cluster.scheduler_address} (2 workers)" in line
    assert fitted_calls(cluster) > before  # the fits really ran on the workers
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])


#: Two combinations whose ranking does not hang on thread scheduling: one optimizer step per epoch
#: (batch 512 on 300 images: near chance) against ten (batch 32). The first is the worse one, so
#: a search that returned its first combination would not pass for one that found the best.
CNN_GRID = {"batch_size": [512, 32], "epochs": [1], "optimizer": ["adam"]}


@pytest.mark.slow
def test_cnn_search_on_a_dask_cluster_matches_this_machine(cluster):
    from mnistlab import networks, training

    ds = load_dataset("mnist-sample", "smoke", seed=0)
    x, y = networks.images(ds.x_train).reshape(len(ds.x_train), -1), ds.y_train
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    estimator = training.CNNClassifier(architecture="simple_cnn", seed=0)
    local = GridSearchCV(estimator, CNN_GRID, cv=cv)
    search.fit_search(local, x, y)
    remote = GridSearchCV(estimator, CNN_GRID, cv=cv)
    before = fitted_calls(cluster)
    assert "2 workers" in search.fit_search(remote, x, y, cluster=cluster.scheduler_address)
    assert fitted_calls(cluster) > before
    assert len(local.cv_results_["params"]) == 2 and local.best_params_ != local.cv_results_["params"][0]
    assert remote.best_params_ == local.best_params_
    # scores differ by thread scheduling across processes; the best must beat chance (0.1) on both
    assert remote.best_score_ > 0.2 and local.best_score_ > 0.2
