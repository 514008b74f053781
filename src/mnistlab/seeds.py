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
    "source": "a Kaggle CNN trained 100 times (Chris Deotte's Kaggle MNIST notebooks)",
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


# --------------------------------------------------------------------------- the chapter's recipes and seeds

#: Seeds the chapter trains by default, per profile. ``full`` trains 100 (the size of the published
#: distribution) where a GPU trains them together (the JAX loop), and :data:`FULL_CPU_SEEDS` on a
#: CPU, where each takes about 20 minutes on 2 cores.
N_SEEDS = {"smoke": 3, "quick": 5, "full": 100}
FULL_CPU_SEEDS = 10
#: The epochs of the shortest candidate recipe, per profile (the longest has twice as many).
RECIPE_EPOCHS = {"smoke": 1, "quick": 1, "full": 6}
#: The share of the training images held out to choose the recipe: 10,000 of MNIST's 60,000, as
#: many as the test set.
VALIDATION_FRACTION = 1 / 6


def default_n_seeds(profile, gpu: bool) -> int:
    """How many seeds the chapter trains in ``profile``: :data:`N_SEEDS`, or :data:`FULL_CPU_SEEDS` in ``full`` without a GPU."""
    name = config.get_profile(profile).name
    return FULL_CPU_SEEDS if name == "full" and not gpu else N_SEEDS[name]


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def recipe_candidates(profile) -> dict[str, dict]:
    """The candidate recipes (one-cycle schedule), by name: ``{"augment": …, "epochs": int}``
    (``augment`` as in :func:`mnistlab.training.fit`). Without and with augmentation for the
    profile's :data:`RECIPE_EPOCHS`; with it, and with it plus elastic distortions (Simard et al.
    2003), for twice as many."""
    e = RECIPE_EPOCHS[config.get_profile(profile).name]
    return {
        f"one-cycle, {_epochs(e)}": {"augment": False, "epochs": e},
        f"one-cycle + augmentation, {_epochs(e)}": {"augment": True, "epochs": e},
        f"one-cycle + augmentation, {_epochs(2 * e)}": {"augment": True, "epochs": 2 * e},
        f"one-cycle + augmentation + elastic distortions, {_epochs(2 * e)}": {"augment": "elastic", "epochs": 2 * e},
    }


def score_recipes(
    candidates: dict,
    architecture: str,
    x_fit,
    y_fit,
    x_val,
    y_val,
    batch_size: int,
    seed: int = config.DEFAULT_SEED,
    jit_compile: bool = False,
    schedule: str = "one-cycle",
) -> tuple[list[dict], dict]:
    """Train each candidate recipe once, from ``seed``, on ``(x_fit, y_fit)`` and score it on the
    validation images only. Returns one row per recipe (validation accuracy with its Wilson
    interval, training seconds) and the trained models by recipe name."""
    import time

    from . import networks, training

    rows, models = [], {}
    for name, recipe in candidates.items():
        start = time.perf_counter()
        (model,) = training.train_members(
            architecture,
            x_fit,
            y_fit,
            [(np.arange(len(x_fit)), None)],
            recipe["epochs"],
            batch_size,
            seed,
            jit_compile,
            schedule,
            recipe["augment"],
        )
        seconds = time.perf_counter() - start
        acc, low, high = accuracy_ci(y_val, networks.predict_proba(model, x_val).argmax(axis=1))
        rows.append(
            {
                "recipe": name,
                "validation accuracy": acc,
                "CI low": low,
                "CI high": high,
                "fit seconds": seconds,
            }
        )
        models[name] = model
    return rows, models


def chosen_recipe(rows: list[dict]) -> str:
    """The recipe with the highest validation accuracy (the first of equals: the shorter recipe)."""
    return max(rows, key=lambda r: r["validation accuracy"])["recipe"]


def noise_rows(pairs: dict, sd: float, level: float = 0.95) -> list[dict]:
    """For ``pairs`` mapping a name to ``(difference, runs_a, runs_b)``: the difference, the
    largest one seed noise explains (:func:`noise_threshold`) and the verdict, one row per pair."""
    rows = []
    for name, (difference, runs_a, runs_b) in pairs.items():
        rows.append(
            {
                "difference": name,
                "points": 100 * difference,
                "seed noise up to (points)": 100 * noise_threshold(sd, runs_a, runs_b, level),
                "verdict": "within seed noise"
                if within_seed_noise(difference, sd, runs_a, runs_b, level)
                else "beyond seed noise",
            }
        )
    return rows


# --------------------------------------------------------------------------- figures


def accuracy_histogram(accuracies, n_test: int, reference: dict | None = None):
    """The seeds' test accuracies as a histogram (percent), their mean, the Wilson interval of one
    model at that mean on ``n_test`` images (what the test set alone leaves open), and a
    published distribution's mean ± sd (``reference``, e.g. :func:`published_reference`)."""
    import matplotlib.pyplot as plt

    from .plots import PRINT_FONT_PT, PRINT_WIDTH_IN, _print_sizes

    acc = 100 * np.asarray(accuracies, dtype=float)
    fig, ax = plt.subplots(figsize=(PRINT_WIDTH_IN, 3.0), layout="constrained")
    step = 100 / n_test  # one test image: bins of whole images, edges half-way between two counts
    width = step * max(1, round(np.ptp(acc) / step / 25))
    edges = np.arange(acc.min() - step / 2, acc.max() + step / 2 + width, width)
    ax.hist(acc, bins=edges, color="C0", alpha=0.8, label=f"{len(acc)} seeds")
    mean = acc.mean()
    low, high = binomial_interval(mean / 100, n_test)
    ax.axvline(mean, color="k", lw=1.5, label=f"mean {mean:.2f}%")
    ax.axvspan(100 * low, 100 * high, color="0.6", alpha=0.25, label=f"95% interval of one model ({n_test:,} images)")
    if reference:
        top = ax.get_ylim()[1]
        ax.errorbar(
            100 * reference["mean"],
            0.92 * top,
            xerr=100 * reference["sd"],
            fmt="D",
            color="C3",
            capsize=3,
            label=f"published: {reference['n']} runs, mean ± sd",
        )
    ax.set(xlabel="test accuracy (%)", ylabel="seeds")
    ax.yaxis.get_major_locator().set_params(integer=True)
    _print_sizes(ax)
    fig.legend(loc="outside lower center", ncol=2, fontsize=PRINT_FONT_PT, frameon=False)
    return fig


def ensemble_size_plot(rows: list[dict]):
    """Accuracy (percent) of averaged ensembles against their size k (rows of :func:`ensemble_by_size`):
    the mean over the drawn subsets, ± one sd as error bars, and the range from the worst to the best."""
    import matplotlib.pyplot as plt

    from .plots import PRINT_FONT_PT, PRINT_WIDTH_IN, _print_sizes

    k = np.array([r["k"] for r in rows])
    mean = 100 * np.array([r["mean"] for r in rows])
    sd = 100 * np.array([r["sd"] or 0.0 for r in rows])
    low, high = 100 * np.array([r["min"] for r in rows]), 100 * np.array([r["max"] for r in rows])
    fig, ax = plt.subplots(figsize=(PRINT_WIDTH_IN, 3.0), layout="constrained")
    ax.fill_between(k, low, high, color="C0", alpha=0.2, label="worst to best subset")
    ax.errorbar(k, mean, yerr=sd, fmt="o-", color="C0", capsize=3, ms=4, label="mean ± sd over subsets")
    ax.set_xscale("log")
    ax.set_xticks(k, [str(v) for v in k])
    ax.minorticks_off()
    ax.set(xlabel="members k (log scale)", ylabel="test accuracy (%)")
    _print_sizes(ax)
    fig.legend(loc="outside lower center", ncol=2, fontsize=PRINT_FONT_PT, frameon=False)
    return fig


def n_seeds_and_why(n_seeds: int | None, profile, gpu: bool) -> tuple[int, str]:
    """The number of seeds to train (``n_seeds``, or the profile's default) and a sentence saying why."""
    name = config.get_profile(profile).name
    if n_seeds is not None:
        if n_seeds < 2:
            raise ValueError("n_seeds must be at least 2: one seed has no spread")
        return n_seeds, f"{n_seeds} seeds, as the n_seeds parameter asks."
    n = default_n_seeds(name, gpu)
    if name == "full":
        why = (
            "as many as the published distribution, trained together on the GPU"
            if gpu
            else f"not the published distribution's {N_SEEDS['full']}: without a GPU each takes about 20 minutes on "
            "2 CPU cores (set n_seeds for more)"
        )
    else:
        why = f"the {name} profile's share of its time budget (the full profile trains {N_SEEDS['full']} on a GPU)"
    return n, f"{n} seeds: {why}."
