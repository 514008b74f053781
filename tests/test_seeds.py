import numpy as np
import pytest

from mnistlab import seeds
from mnistlab.evaluation import accuracy_ci

N_TEST, N_CLASSES = 100, 10
Y = np.arange(N_TEST) % N_CLASSES


def member(wrong) -> np.ndarray:
    """One member's probabilities (N_TEST, N_CLASSES): 0.7 on the true class and 0.3 on the next,
    swapped on the images in ``wrong``, so its accuracy is exactly 1 - len(wrong) / N_TEST."""
    probs = np.zeros((N_TEST, N_CLASSES))
    rows, nxt = np.arange(N_TEST), (Y + 1) % N_CLASSES
    probs[rows, Y], probs[rows, nxt] = 0.7, 0.3
    wrong = np.asarray(wrong, dtype=int)
    probs[wrong, Y[wrong]], probs[wrong, nxt[wrong]] = 0.3, 0.7
    return probs


def disjoint_members(m: int, errors: int = 5) -> np.ndarray:
    """``m`` members, member i wrong on images [i * errors, (i + 1) * errors): accuracy 1 - errors / N_TEST each."""
    return np.stack([member(range(i * errors, (i + 1) * errors)) for i in range(m)])


def test_seed_spread_known_values():
    s = seeds.seed_spread([0.990, 0.992, 0.994, 0.996])
    assert s["n"] == 4 and s["min"] == 0.990 and s["max"] == 0.996
    assert s["mean"] == pytest.approx(0.993)
    assert s["sd"] == pytest.approx(np.sqrt(0.00002 / 3))  # ddof=1: squared deviations sum to 2e-5
    half = 3.182446 * s["sd"] / 2  # t(0.975, 3 df) * sd / sqrt(4)
    assert s["low"] == pytest.approx(0.993 - half, abs=1e-8) and s["high"] == pytest.approx(0.993 + half, abs=1e-8)


def test_seed_spread_of_a_constant_list_is_zero():
    s = seeds.seed_spread([0.99] * 7)
    assert s["sd"] == pytest.approx(0.0, abs=1e-15) and s["min"] == s["max"] == 0.99
    assert s["low"] == pytest.approx(0.99, abs=1e-14) and s["high"] == pytest.approx(0.99, abs=1e-14)


def test_seed_spread_needs_two_runs():
    with pytest.raises(ValueError):
        seeds.seed_spread([0.99])


def test_binomial_interval_is_wilson_of_accuracy_ci():
    low, high = seeds.binomial_interval(0.90, 100)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)
    _, low_ci, high_ci = accuracy_ci(np.zeros(10_000), np.r_[np.zeros(9964), np.ones(36)])
    assert seeds.binomial_interval(0.9964, 10_000) == (low_ci, high_ci)


def test_binomial_interval_narrows_with_more_test_images():
    low_small, high_small = seeds.binomial_interval(0.99, 1_000)
    low_big, high_big = seeds.binomial_interval(0.99, 100_000)
    assert low_small < low_big < 0.99 < high_big < high_small


def test_binomial_interval_rejects_impossible_inputs():
    with pytest.raises(ValueError):
        seeds.binomial_interval(1.2, 100)


def test_members_have_their_constructed_accuracy():
    rows = seeds.ensemble_by_size(disjoint_members(4)[:1], Y, sizes=(1,))
    assert rows[0]["mean"] == 0.95


def test_ensemble_of_identical_members_equals_each_member():
    probs = np.stack([member(range(0, 100, 8))] * 6)  # 13 mistakes: accuracy 0.87
    rows = seeds.ensemble_by_size(probs, Y, sizes=(1, 2, 3, 6), draws=5, seed=0)
    for row in rows:
        assert row["min"] == row["max"] == 0.87 and row["mean"] == pytest.approx(0.87, abs=1e-12)


def test_k1_covers_every_member_and_its_mean_is_the_members_mean():
    probs = np.stack([member(range(e)) for e in (1, 2, 4, 8, 16)])  # accuracies 0.99, 0.98, 0.96, 0.92, 0.84
    (row,) = seeds.ensemble_by_size(probs, Y, sizes=(1,), draws=5)
    assert row["exhaustive"] and row["draws"] == 5
    assert row["mean"] == pytest.approx(np.mean([0.99, 0.98, 0.96, 0.92, 0.84]), abs=1e-12)
    assert row["min"] == 0.84 and row["max"] == 0.99
    assert row["sd"] == pytest.approx(np.std([0.99, 0.98, 0.96, 0.92, 0.84], ddof=1), abs=1e-12)


def test_disjoint_mistakes_are_outvoted_and_draws_never_repeat_a_member():
    # Any three distinct members out-vote each mistake; a member drawn twice would keep its own.
    rows = seeds.ensemble_by_size(disjoint_members(10), Y, sizes=(3,), draws=40, seed=3)
    assert not rows[0]["exhaustive"] and rows[0]["draws"] == 40  # C(10, 3) = 120 > 40: random draws
    assert rows[0]["min"] == 1.0


def test_all_members_is_one_subset_without_a_spread():
    rows = seeds.ensemble_by_size(disjoint_members(5), Y, sizes=(1, 5, 7), draws=50)
    assert [r["k"] for r in rows] == [1, 5]  # 7 > members: skipped
    last = rows[-1]
    assert last["draws"] == 1 and last["sd"] is None and "no spread" in last["note"]
    assert last["mean"] == 1.0


def test_ensemble_by_size_is_deterministic_with_its_seed():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(N_CLASSES), size=(12, N_TEST))
    first = seeds.ensemble_by_size(probs, Y, sizes=(2, 4), draws=10, seed=7)
    assert first == seeds.ensemble_by_size(probs, Y, sizes=(2, 4), draws=10, seed=7)
    assert first != seeds.ensemble_by_size(probs, Y, sizes=(2, 4), draws=10, seed=8)


def test_within_seed_noise_on_both_sides_of_the_boundary():
    sd = 0.0005
    bound = 1.959964 * np.sqrt(2) * sd  # two single-seed runs differ by sqrt(2) * sd
    assert seeds.noise_threshold(sd) == pytest.approx(bound, rel=1e-6)
    assert seeds.within_seed_noise(0.999 * bound, sd)
    assert seeds.within_seed_noise(-0.999 * bound, {"sd": sd})
    assert not seeds.within_seed_noise(1.001 * bound, sd)
    assert not seeds.within_seed_noise(-1.001 * bound, sd)


def test_within_seed_noise_narrows_for_means_of_many_runs():
    sd, diff = 0.0005, 0.0008  # within the noise of single runs, beyond that of means of 10 runs each
    assert seeds.within_seed_noise(diff, sd)
    assert not seeds.within_seed_noise(diff, sd, runs_a=10, runs_b=10)


def test_label_differences_phrases():
    labels = seeds.label_differences({"A vs B": 0.0002, "A vs C": -0.003}, sd=0.0005)
    assert labels == {"A vs B": "within seed noise", "A vs C": "beyond seed noise"}


def test_published_reference_is_the_cited_distribution():
    ref = seeds.published_reference()
    assert (ref["n"], ref["mean"], ref["sd"], ref["n_test"]) == (100, 0.99641, 0.00047, 10_000)
    ref["mean"] = 0.0
    assert seeds.published_reference()["mean"] == 0.99641  # a copy: the constant stays intact
