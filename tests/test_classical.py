"""Package functions behind the classical chapters, on scikit-learn's 8x8 digits (fast)."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import precision_score, recall_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from mnistlab import config, evaluation, plots, search
from mnistlab.variants import add_uniform_noise

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_threshold_for_precision_reaches_target_with_most_recall():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.2
    scores = y + rng.normal(0, 0.6, 2000)
    threshold, precision, recall = evaluation.threshold_for_precision(y, scores, 0.9)
    pred = scores >= threshold
    assert precision_score(y, pred) == pytest.approx(precision) and precision >= 0.9
    assert recall_score(y, pred) == pytest.approx(recall)
    lower = scores >= np.max(scores[scores < threshold])  # the next threshold down misses the target
    assert precision_score(y, lower) < 0.9 or recall_score(y, lower) <= recall


def test_threshold_for_precision_unreachable():
    with pytest.raises(ValueError, match="no threshold"):
        evaluation.threshold_for_precision([1, 0, 0, 0], [0.1, 0.5, 0.6, 0.7], 0.99)


def test_manual_cross_val_equals_cross_val_score(digits):
    X, y = digits
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    model = SGDClassifier(random_state=0)
    np.testing.assert_allclose(evaluation.manual_cross_val(model, X, y, folds), cross_val_score(model, X, y, cv=folds))


def test_binary_scores_counts():
    scores = evaluation.binary_scores([1, 1, 0, 0, 0], [1, 0, 1, 0, 0])
    assert (scores["TP"], scores["FN"], scores["FP"], scores["TN"]) == (1, 1, 1, 2)
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5 and scores["accuracy"] == 0.6


def test_most_confused_pair_ignores_diagonal():
    cm = np.array([[50, 1, 0], [2, 40, 9], [0, 3, 45]])
    assert evaluation.most_confused_pair(cm) == (1, 2)


def test_multilabel_targets():
    np.testing.assert_array_equal(
        evaluation.multilabel_targets([0, 7, 8, 9, 3]), [[0, 0], [1, 1], [1, 0], [1, 1], [0, 1]]
    )


def test_rare_positive_subset_keeps_negatives_and_hits_rate():
    y = np.r_[np.ones(100), np.zeros(900)].astype(bool)
    s = np.arange(1000.0)
    yy, ss = evaluation.rare_positive_subset(y, s, 0.01, seed=0)
    assert (~yy).sum() == 900 and yy.sum() == 9
    assert set(ss[~yy]) == set(s[~y])


def test_cv_table_is_ranked(digits):
    X, y = digits
    grid = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 4, 8]}, cv=2).fit(X, y)
    table = evaluation.cv_table(grid)
    assert list(table["rank"]) == [1, 2, 3] and list(table["max_depth"]) == [8, 4, 1]
    assert table["mean CV accuracy"].is_monotonic_decreasing


def test_fit_and_score_record(digits):
    X, y = digits
    record, pred = evaluation.fit_and_score(
        "tree",
        DecisionTreeClassifier(random_state=0),
        X[:1000],
        y[:1000],
        X[1000:],
        y[1000:],
        params={"max_depth": None},
    )
    assert record["accuracy"] == pytest.approx(np.mean(pred == y[1000:]))
    assert record["n_train"] == 1000 and record["n_test"] == len(y) - 1000 and record["fit_seconds"] > 0
    table = evaluation.results_table([record])
    assert table.loc["tree", "95% CI"].count("-") == 1


def test_noise_is_deterministic_and_bounded():
    x = np.full((3, 28, 28), 200, dtype=np.uint8)
    a, b = add_uniform_noise(x, 100, seed=1), add_uniform_noise(x, 100, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and a.min() >= 200 and a.max() == 255
    assert not np.array_equal(a, add_uniform_noise(x, 100, seed=2))


PROFILE_ORDER = ("smoke", "quick", "full")  # growing budgets


@pytest.mark.parametrize("grids", [search.PCA_SVC_GRIDS, search.CNN_GRIDS], ids=["pca-svc", "cnn"])
def test_grids_grow_with_profile(grids):
    """smoke searches one point (a test of the code path), quick a few, full the most."""
    assert set(config.PROFILES) == set(PROFILE_ORDER)
    chosen = [grids[config.get_profile(profile).grid] for profile in PROFILE_ORDER]
    assert all(set(grid) == set(chosen[-1]) for grid in chosen)  # the same hyper-parameters, more values
    smoke, quick, full = (search.grid_size(grid) for grid in chosen)
    assert smoke == 1 < quick < full
    assert search.pca_svc_grid("full") is search.PCA_SVC_GRIDS["full"]


def test_search_subset_is_stratified():
    y = np.repeat(np.arange(10), 100)
    x = np.arange(1000)
    _, ys = search.search_subset(x, y, "smoke", seed=0)
    assert len(ys) == 600 and np.all(np.bincount(ys) == 60)


def test_plain_svc_trains_on_every_image_in_full_only():
    y = np.repeat(np.arange(10), 500)
    x = np.arange(5000)
    xs, ys = search.svc_subset(x, y, "full", seed=0)
    assert xs is x and ys is y
    _, ys = search.svc_subset(x, y, "quick", seed=0)
    assert len(ys) == 3000 and np.all(np.bincount(ys) == 300)


def test_table_escapes_latex_and_formats_floats():
    table = plots.Table(pd.DataFrame({"a_b": [0.123456], "100%": ["x & y"]}, index=["m#1"]), caption="c_1")
    latex = table._repr_latex_()
    assert r"a\_b" in latex and r"100\%" in latex and r"x \& y" in latex and r"m\#1" in latex
    assert "0.1235" in latex and r"\caption{c\_1}" in latex
    assert "0.1235" in table._repr_html_()


def test_plot_helpers_draw(digits):
    X, y = digits
    scores = np.c_[[X[:, i] for i in range(10)]].T
    figs = [
        plots.one_vs_rest_curves(y, scores, [str(i) for i in range(10)]),
        plots.confusion_matrices(y, (y + (X[:, 20] > 0.5)) % 10, [str(i) for i in range(10)]),
        plots.pr_and_roc(y == 3, {"m": X[:, 30]}, {"m": 0.5}),
        plots.precision_recall_vs_threshold(y == 3, X[:, 30], 0.5),
    ]
    for fig in figs:
        assert fig.axes and all(ax.has_data() for ax in fig.axes)


def test_error_matrix_shows_where_each_class_errors_go():
    """The second view is in percent of each row's errors (it says so): 3 of class 0's 4 errors
    go to 1 and 1 to 9, whatever the class's size; a class without errors shows zeros."""
    y_true = np.array([0] * 100 + [1] * 10)
    y_pred = np.array([1, 1, 1, 9] + [0] * 96 + [1] * 10)
    fig = plots.confusion_matrices(y_true, y_pred, [str(i) for i in range(10)])
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert texts[1] == "75" and texts[9] == "25" and texts[0] == "0" and set(texts[10:20]) == {"0"}
    assert "row's errors" in fig.axes[1].get_title()


def test_a_grid_search_table_of_names_stays_upright():
    """Headers like kernel_initializer break after an underscore, so a 10-column table of
    hyper-parameters fits the page upright instead of taking a landscape page of its own."""
    assert plots.header_lines("kernel_initializer", 14) == ["kernel_", "initializer"]
    assert plots.header_lines("mean CV accuracy", 6) == ["mean CV", "accuracy"]
    row = {"rank": 1, "activation": "relu", "batch_size": 32, "dropout": 0.5, "epochs": 6}
    row |= {"kernel_initializer": "glorot_uniform", "optimizer": "rmsprop", "mean CV accuracy": 0.95}
    row |= {"std": 0.0078, "fit seconds": 8.2}
    latex = plots.Table(pd.DataFrame([row] * 12), float_format="{:.4f}", index=False)._repr_latex_()
    assert "landscape" not in latex and r"kernel\_\\initializer" in latex


def test_score_per_parameter_draws_one_legible_panel_per_varied_parameter(digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = digits
    grid = {
        "C": [0.1, 1.0],
        "fit_intercept": [True, False],
        "tol": [1e-3, 1e-2],
        "max_iter": [50, 100],
        "solver": ["lbfgs"],
    }
    search = GridSearchCV(LogisticRegression(), grid, cv=2).fit(X[:200], y[:200])
    fig = plots.score_per_parameter(search)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert sorted(ax.get_xlabel() for ax in shown) == ["C", "fit_intercept", "max_iter", "tol"]  # not solver
    assert all(ax.has_data() for ax in shown) and fig.get_figwidth() <= 7.5  # three across: printed near full size


def test_calibration_error_separates_calibration_from_sharpness():
    """Probabilities that match their bins' share of positives score near 0, however unsharp (the
    Brier score then still penalises them); overconfident ones lie far from the diagonal."""
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(0)
    p_true = rng.uniform(size=20_000)
    y = rng.uniform(size=p_true.size) < p_true
    overconfident = np.clip(0.5 + 1.6 * (p_true - 0.5), 0, 1)
    assert evaluation.calibration_error(y, p_true) < 0.01
    assert evaluation.calibration_error(y, np.full(y.size, y.mean())) < 0.01  # calibrated, not sharp
    assert evaluation.calibration_error(y, overconfident) > 0.05
    assert evaluation.calibration_error(y, overconfident) > evaluation.calibration_error(y, p_true)
    assert brier_score_loss(y, np.full(y.size, y.mean())) > brier_score_loss(y, p_true)
