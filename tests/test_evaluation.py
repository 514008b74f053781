import json

import numpy as np
import pytest

from mnistlab import config
from mnistlab.data import load_dataset
from mnistlab.evaluation import accuracy_ci, result_record, write_metrics


def test_accuracy_ci_wilson_known_value():
    y = np.zeros(100, dtype=int)
    pred = np.r_[np.zeros(90, dtype=int), np.ones(10, dtype=int)]
    acc, low, high = accuracy_ci(y, pred)
    assert acc == pytest.approx(0.90)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)


def test_accuracy_ci_stays_in_unit_interval_and_narrows_with_n():
    _, low, high = accuracy_ci(np.ones(20), np.ones(20))
    assert 0.8 < low < high == 1.0
    _, low_big, _ = accuracy_ci(np.ones(2000), np.ones(2000))
    assert low_big > low


def test_accuracy_ci_needs_predictions():
    with pytest.raises(ValueError):
        accuracy_ci([], [])


def test_metrics_file_follows_the_contract():
    ds = load_dataset("mnist-sample", "smoke")
    record = result_record(
        "dummy",
        ds.y_test,
        np.zeros_like(ds.y_test),
        fit_seconds=1.5,
        n_train=len(ds.y_train),
        params={"strategy": "constant", "obj": object()},
    )
    path = write_metrics("99_test", ds, [record])
    assert path == config.metrics_dir() / "99_test.json"
    payload = json.loads(path.read_text())
    assert payload["dataset"] == "mnist-sample" and payload["profile"] == "smoke"
    result = payload["results"][0]
    assert set(result) >= {
        "model",
        "task",
        "accuracy",
        "ci95",
        "macro_f1",
        "fit_seconds",
        "predict_seconds",
        "n_train",
        "n_test",
        "params",
    }
    assert result["ci95"][0] <= result["accuracy"] <= result["ci95"][1]
    assert result["n_test"] == len(ds.y_test)
