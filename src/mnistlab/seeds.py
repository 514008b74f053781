"""How much of a result is luck: seed-to-seed spread, test-set noise, and ensembles by size.

A network's test accuracy moves with its seed (initial weights, batch order, augmentation) and
with the particular 10,000 test images. This module measures both, averages ensembles of every
size from a pool of seed members, and says whether a difference between two models is larger than
what re-seeding alone produces. All accuracies are fractions (0.9964, not 99.64).
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
from scipy import stats

from . import config
from .evaluation import accuracy_ci

#: One Kaggle CNN trained 100 times from different seeds and scored on the official MNIST test set
#: (10,000 images), as cited in the project issue, which attributes it to Chris Deotte's Kaggle
#: MNIST notebooks ("How to choose CNN Architecture MNIST" / "25 Million Images! [0.99757] MNIST").
#: Published as 99.641% mean with a standard deviation of 0.047 points.
PUBLISHED_REFERENCE = {
    "n": 100,
    "mean": 0.99641,
    "sd": 0.00047,
    "n_test": 10_000,
    "source": "a Kaggle CNN trained 100 times, as cited in the project issue (Chris Deotte's Kaggle MNIST notebooks)",
}


def _z(level: float) -> float:
    """The two-sided normal quantile for ``level`` (1.96 for 0.95)."""
    return float(stats.norm.ppf(0.5 + level / 2))


def seed_spread(accuracies, level: float = 0.95) -> dict:
    """n, mean, sd (ddof=1), min, max, and a t interval of the mean (``low``, ``high``) of per-seed accuracies."""
    acc = np.asarray(accuracies, dtype=float)
    if acc.ndim != 1 or len(acc) < 2:
        raise ValueError("seed_spread needs at least two accuracies")
    n, mean, sd = len(acc), float(acc.mean()), float(acc.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / np.sqrt(n)
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "min": float(acc.min()),
        "max": float(acc.max()),
        "low": mean - half,
        "high": mean + half,
    }


def binomial_interval(accuracy: float, n_test: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson interval of one model's accuracy on ``n_test`` images (rounded to a whole number correct)."""
    if not 0.0 <= accuracy <= 1.0 or n_test < 1:
        raise ValueError("binomial_interval needs 0 <= accuracy <= 1 and n_test >= 1")
    correct = round(accuracy * n_test)
    _, low, high = accuracy_ci(np.ones(n_test, dtype=int), np.arange(n_test) < correct, level)
    return low, high


def _subsets(members: int, k: int, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Member indices (subsets, k): every subset when there are at most ``draws``, else ``draws`` random ones."""
    if comb(members, k) <= draws:
        return np.array(list(itertools.combinations(range(members), k)), dtype=int), True
    return rng.random((draws, members)).argsort(axis=1)[:, :k], False


def ensemble_by_size(
    probabilities, y_true, sizes=(1, 2, 3, 5, 10, 20, 50), draws: int = 50, seed: int = config.DEFAULT_SEED
) -> list[dict]:
    """Accuracy of averaged-probability ensembles of k members drawn from ``probabilities`` (members, n_test, classes).

    For each k up to the number of members: every distinct subset when there are at most ``draws``
    of them (``exhaustive``), else ``draws`` random subsets, each without repeated members. A size
    with a single distinct subset (k = members) has no spread: ``sd`` is None and ``note`` says so.
    """
    probs = np.asarray(probabilities)
    members, n_test, n_classes = probs.shape
    y_true = np.asarray(y_true)
    flat = probs.reshape(members, n_test * n_classes)
    rng = np.random.default_rng(seed)
    rows = []
    for k in sorted(k for k in set(sizes) if 1 <= k <= members):
        idx, exhaustive = _subsets(members, k, draws, rng)
        chosen = np.zeros((len(idx), members), dtype=flat.dtype)
        np.put_along_axis(chosen, idx, 1, axis=1)  # summing k members ranks classes as their average does
        votes = (chosen @ flat).reshape(len(idx), n_test, n_classes)
        acc = (votes.argmax(axis=2) == y_true).mean(axis=1)
        single = len(idx) == 1
        rows.append(
            {
                "k": k,
                "mean": float(acc.mean()),
                "sd": None if single else float(acc.std(ddof=1)),
                "min": float(acc.min()),
                "max": float(acc.max()),
                "draws": len(idx),
                "exhaustive": exhaustive,
                "note": "one distinct subset: no spread" if single else "",
            }
        )
    return rows


def noise_threshold(sd: float, runs_a: int = 1, runs_b: int = 1, level: float = 0.95) -> float:
    """The largest |difference| that seed noise explains: ``z * sd * sqrt(1/runs_a + 1/runs_b)`` (z = 1.96 at 95%)."""
    return _z(level) * sd * np.sqrt(1 / runs_a + 1 / runs_b)


def within_seed_noise(difference: float, spread, runs_a: int = 1, runs_b: int = 1, level: float = 0.95) -> bool:
    """True when ``|difference| < noise_threshold(sd, runs_a, runs_b, level)``; ``spread`` is sd or seed_spread's dict.

    Two models scored from one seed each differ by re-seeding alone with sd ``sqrt(2) * sd``
    (independent runs); means over ``runs_a`` and ``runs_b`` seeds with ``sd * sqrt(1/runs_a + 1/runs_b)``.
    Both are scored on the same test images, so most of the test set's own sampling noise cancels
    (evaluation.paired_difference_ci measures what remains for one pair of prediction vectors).
    """
    sd = spread["sd"] if isinstance(spread, dict) else spread
    return bool(abs(difference) < noise_threshold(sd, runs_a, runs_b, level))


def label_differences(pairs, sd: float, runs_a: int = 1, runs_b: int = 1, level: float = 0.95) -> dict[str, str]:
    """``{pair: "within seed noise" | "beyond seed noise"}`` for ``pairs`` mapping a pair's name to its difference."""
    return {
        name: "within seed noise" if within_seed_noise(diff, sd, runs_a, runs_b, level) else "beyond seed noise"
        for name, diff in dict(pairs).items()
    }


def published_reference() -> dict:
    """A copy of PUBLISHED_REFERENCE: n, mean, sd, n_test, source of a published 100-seed CNN distribution."""
    return dict(PUBLISHED_REFERENCE)
