"""Metrics with confidence intervals, timing, and the per-notebook metrics files."""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.metrics import f1_score

from . import config


def accuracy_ci(y_true, y_pred, level: float = 0.95) -> tuple[float, float, float]:
    """Accuracy and its Wilson score interval: ``(accuracy, low, high)``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = len(y_true)
    if n == 0:
        raise ValueError("accuracy_ci needs at least one prediction")
    acc = float(np.mean(y_true == y_pred))
    z = stats.norm.ppf(0.5 + level / 2)
    centre = (acc + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(acc * (1 - acc) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return acc, float(max(0.0, centre - half)), float(min(1.0, centre + half))


@contextmanager
def timer():
    """``with timer() as t: ...`` then ``t.seconds``."""

    class _T:
        seconds = 0.0

    result = _T()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start


def result_record(
    model: str,
    y_true,
    y_pred,
    *,
    task: str = "multiclass",
    fit_seconds: float = 0.0,
    predict_seconds: float = 0.0,
    n_train: int = 0,
    params: dict | None = None,
    roc_auc: float | None = None,
    **extra,
) -> dict:
    """One entry of a metrics file's ``results`` list (see :func:`write_metrics`)."""
    acc, low, high = accuracy_ci(y_true, y_pred)
    record = {
        "model": model,
        "task": task,
        "accuracy": acc,
        "ci95": [low, high],
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        "fit_seconds": float(fit_seconds),
        "predict_seconds": float(predict_seconds),
        "n_train": int(n_train),
        "n_test": int(len(y_true)),
        "params": {
            k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v) for k, v in (params or {}).items()
        },
    }
    if task == "binary":
        record["roc_auc"] = None if roc_auc is None else float(roc_auc)
    record.update(extra)
    return record


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; on success rename it into place, else delete it.

    Readers never see a half-written file, and a failure leaves the previous one untouched. The
    file gets the mode a plain new file would (0644 under the usual umask; a temporary file is 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json_atomic(path: Path, payload) -> Path:
    """Write JSON to a temporary file beside ``path``, then rename it into place."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    return Path(path)


def write_metrics(notebook: str, dataset, results: list[dict], predictions: dict | None = None, **extra) -> Path:
    """Write ``reports/metrics/<notebook>.json`` for a chapter; ``dataset`` is a :class:`Dataset`.

    ``predictions`` (model name -> test predictions) go to ``<notebook>.predictions.npz`` beside
    it, so that the results chapter can compare models image by image.
    """
    results = [dict(r) for r in results]
    if predictions:
        arrays = {"y_true": np.asarray(dataset.y_test)}
        for i, record in enumerate(results):
            if record["model"] in predictions:
                record["predictions_key"] = f"model_{i}"
                arrays[f"model_{i}"] = np.asarray(predictions[record["model"]])
        with atomic_path(config.metrics_output_dir() / f"{notebook}.predictions.npz") as tmp:
            np.savez_compressed(tmp, **arrays)
    payload = {
        "notebook": notebook,
        "dataset": dataset.name,
        "source": dataset.source,
        "profile": dataset.profile,
        "seed": dataset.seed,
        "results": results,
        **extra,
    }
    return write_json_atomic(config.metrics_output_dir() / f"{notebook}.json", payload)


def threshold_for_precision(y_true, scores, target: float = 0.90) -> tuple[float, float, float]:
    """Lowest decision threshold whose precision reaches ``target``: ``(threshold, precision, recall)``.

    The lowest such threshold keeps the most recall. Raises ``ValueError`` if no threshold does.
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    reached = np.flatnonzero(precision[:-1] >= target)
    if reached.size == 0:
        raise ValueError(f"no threshold reaches a precision of {target:.0%}")
    i = reached[0]
    return float(thresholds[i]), float(precision[i]), float(recall[i])


def manual_cross_val(estimator, X, y, cv) -> np.ndarray:
    """Accuracy of ``estimator`` on each fold of ``cv``, by hand (what ``cross_val_score`` does)."""
    from sklearn.base import clone

    scores = []
    for train_index, test_index in cv.split(X, y):
        model = clone(estimator).fit(X[train_index], y[train_index])
        scores.append(np.mean(model.predict(X[test_index]) == y[test_index]))
    return np.array(scores)


def binary_scores(y_true, y_pred) -> dict:
    """Accuracy, precision, recall and F1 of a binary prediction, plus its confusion counts."""
    from sklearn.metrics import confusion_matrix, precision_score, recall_score

    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[False, True]).ravel()
    return {
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "TP": int(tp),
        "FP": int(fp),
        "FN": int(fn),
        "TN": int(tn),
    }


def calibration_error(y_true, probabilities, n_bins: int = 10) -> float:
    """How far a reliability diagram lies from its diagonal: the mean gap between each bin's mean
    predicted probability and its share of positives, weighted by the bin's size (expected
    calibration error; 0 is perfectly calibrated). Unlike the Brier score, sharpness does not count."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(probabilities, dtype=float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    gaps = [abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).sum() for b in np.unique(bins)]
    return float(sum(gaps) / len(p))


def most_confused_pair(cm) -> tuple[int, int]:
    """``(true, predicted)`` classes of the largest off-diagonal entry of a confusion matrix."""
    errors = np.array(cm, dtype=float)
    np.fill_diagonal(errors, -1)
    true, pred = np.unravel_index(np.argmax(errors), errors.shape)
    return int(true), int(pred)


def multilabel_targets(y) -> np.ndarray:
    """Two labels per digit: ``[digit >= 7, digit is odd]`` (the classic multilabel example)."""
    y = np.asarray(y)
    return np.c_[y >= 7, y % 2 == 1]


def rare_positive_subset(y_true, scores, positive_rate: float, seed: int = config.DEFAULT_SEED):
    """Keep every negative and only enough positives for ``positive_rate``; returns (y, scores)."""
    y_true, scores = np.asarray(y_true).astype(bool), np.asarray(scores)
    rng = np.random.default_rng(seed)
    negatives = np.flatnonzero(~y_true)
    n_pos = max(1, int(round(positive_rate * len(negatives) / (1 - positive_rate))))
    positives = rng.choice(np.flatnonzero(y_true), size=min(n_pos, int(y_true.sum())), replace=False)
    keep = np.sort(np.r_[negatives, positives])
    return y_true[keep], scores[keep]


def cv_table(search, top: int = 10):
    """The ranked table of a scikit-learn search: parameters, mean ± std CV score, fit time."""
    import pandas as pd

    results = pd.DataFrame(search.cv_results_)
    params = [c for c in results if c.startswith("param_")]
    rounds = ["iter", "n_resources"] if "iter" in results else []  # successive halving
    table = results[["rank_test_score", *rounds, *params, "mean_test_score", "std_test_score", "mean_fit_time"]]
    table = table.rename(columns={c: c.removeprefix("param_").split("__")[-1] for c in params})
    table = table.rename(
        columns={
            "rank_test_score": "rank",
            "mean_test_score": "mean CV accuracy",
            "std_test_score": "std",
            "mean_fit_time": "fit seconds",
            "iter": "round",
            "n_resources": "images",
        }
    )
    return table.sort_values("rank").head(top).reset_index(drop=True)


def fit_and_score(name: str, model, X_train, y_train, X_test, y_test, params: dict | None = None):
    """Fit ``model``, time fit and prediction, and return ``(result_record, test predictions)``."""
    with timer() as fit:
        model.fit(X_train, y_train)
    with timer() as predict:
        pred = model.predict(X_test)
    record = result_record(
        name,
        y_test,
        pred,
        fit_seconds=fit.seconds,
        predict_seconds=predict.seconds,
        n_train=len(y_train),
        params=params,
    )
    return record, pred


def results_table(results: list[dict]):
    """The metrics records as a table: accuracy with its 95% CI, macro F1 and timings."""
    import pandas as pd

    return pd.DataFrame(
        {
            "accuracy": [r["accuracy"] for r in results],
            "95% CI": [f"{r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}" for r in results],
            "macro F1": [r["macro_f1"] for r in results],
            "fit s": [r["fit_seconds"] for r in results],
            "predict s": [r["predict_seconds"] for r in results],
            "n train": [r["n_train"] for r in results],
        },
        index=[r["model"] for r in results],
    )


def paired_difference_ci(
    y_true, pred_a, pred_b, level: float = 0.95, n_boot: int = 2000, seed: int = config.DEFAULT_SEED
) -> tuple[float, float, float]:
    """Accuracy of ``pred_b`` minus that of ``pred_a`` on the same images, with a paired
    bootstrap interval: ``(difference, low, high)``."""
    y_true = np.asarray(y_true)
    gain = (np.asarray(pred_b) == y_true).astype(float) - (np.asarray(pred_a) == y_true)
    rng = np.random.default_rng(seed)
    means = gain[rng.integers(0, len(gain), size=(n_boot, len(gain)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(gain.mean()), float(low), float(high)


def lessons(results: list[dict]) -> list[str]:
    """Two computed points for a chapter's "What we learned": the best model with its interval,
    and what the cheapest model close to it (or the weakest one) says about cost and gain."""
    ranked = sorted((r for r in results if r.get("task", "multiclass") == "multiclass"), key=lambda r: -r["accuracy"])
    if not ranked:
        return []
    best = ranked[0]
    points = [
        f"The most accurate model is {best['model']}: {best['accuracy']:.2%} test accuracy "
        f"(95% CI {best['ci95'][0]:.2%} to {best['ci95'][1]:.2%}) on {best['n_test']:,} test images."
    ]
    close = [
        r for r in ranked[1:] if best["accuracy"] - r["accuracy"] <= 0.005 and r["fit_seconds"] < best["fit_seconds"]
    ]
    if close:
        cheap = min(close, key=lambda r: r["fit_seconds"])
        points.append(
            f"{cheap['model']} comes within {100 * (best['accuracy'] - cheap['accuracy']):.2f} points of it in "
            f"{cheap['fit_seconds']:.0f} s of training instead of {best['fit_seconds']:.0f} s."
        )
    elif len(ranked) > 1:
        worst = ranked[-1]
        points.append(
            f"The weakest, {worst['model']}, reaches {worst['accuracy']:.2%}: "
            f"{100 * (best['accuracy'] - worst['accuracy']):.1f} points below the best."
        )
    return points
