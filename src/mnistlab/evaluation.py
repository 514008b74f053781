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
from sklearn.metrics import accuracy_score, f1_score

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


def result_record(model: str, y_true, y_pred, *, task: str = "multiclass", fit_seconds: float = 0.0,
                  predict_seconds: float = 0.0, n_train: int = 0, params: dict | None = None,
                  roc_auc: float | None = None, **extra) -> dict:
    """One entry of a metrics file's ``results`` list (see :func:`write_metrics`)."""
    acc, low, high = accuracy_ci(y_true, y_pred)
    record = {
        "model": model, "task": task, "accuracy": acc, "ci95": [low, high],
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        "fit_seconds": float(fit_seconds), "predict_seconds": float(predict_seconds),
        "n_train": int(n_train), "n_test": int(len(y_true)),
        "params": {k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
                   for k, v in (params or {}).items()},
    }
    if task == "binary":
        record["roc_auc"] = None if roc_auc is None else float(roc_auc)
    record.update(extra)
    return record


def write_json_atomic(path: Path, payload) -> Path:
    """Write JSON to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    os.replace(tmp, path)
    return path


def write_metrics(notebook: str, dataset, results: list[dict], **extra) -> Path:
    """Write ``reports/metrics/<notebook>.json`` for a chapter; ``dataset`` is a :class:`Dataset`."""
    payload = {"notebook": notebook, "dataset": dataset.name, "source": dataset.source,
               "profile": dataset.profile, "seed": dataset.seed, "results": results, **extra}
    return write_json_atomic(config.metrics_dir() / f"{notebook}.json", payload)


def accuracy(y_true, y_pred) -> float:
    return float(accuracy_score(y_true, y_pred))
