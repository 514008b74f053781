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


# --------------------------------------------------------------------------- the chapter's recipes, seeds and figures


def test_default_seeds_grow_with_the_profile_and_full_needs_a_gpu_for_100():
    counts = [seeds.default_n_seeds(p, gpu=False) for p in ("smoke", "quick", "full")]
    assert counts == sorted(counts) and counts[0] >= 2 and counts[-1] == seeds.FULL_CPU_SEEDS
    assert seeds.default_n_seeds("full", gpu=True) == 100 == seeds.published_reference()["n"]
    assert seeds.default_n_seeds("quick", gpu=True) == seeds.default_n_seeds("quick", gpu=False)


def test_n_seeds_and_why_says_how_many_and_why():
    n, why = seeds.n_seeds_and_why(None, "full", gpu=False)
    assert n == seeds.FULL_CPU_SEEDS and why.startswith(f"{n} seeds") and "GPU" in why
    n, why = seeds.n_seeds_and_why(None, "full", gpu=True)
    assert n == 100 and "published" in why
    assert seeds.n_seeds_and_why(7, "smoke", gpu=False) == (7, "7 seeds, as the n_seeds parameter asks.")
    with pytest.raises(ValueError):
        seeds.n_seeds_and_why(1, "quick", gpu=False)


def test_recipe_candidates_scale_their_epochs_with_the_profile():
    for profile in ("smoke", "quick", "full"):
        recipes = seeds.recipe_candidates(profile)
        e = seeds.RECIPE_EPOCHS[profile]
        assert [(r["augment"], r["epochs"]) for r in recipes.values()] == [
            (False, e),
            (True, e),
            (True, 2 * e),
            ("elastic", 2 * e),
        ]
        assert all(str(r["epochs"]) in name for name, r in recipes.items())
    assert "1 epoch" in next(iter(seeds.recipe_candidates("smoke"))) and "1 epochs" not in str(
        seeds.recipe_candidates("smoke")
    )


def test_chosen_recipe_is_the_best_on_validation_and_the_first_of_equals():
    rows = [{"recipe": "a", "validation accuracy": 0.9}, {"recipe": "b", "validation accuracy": 0.95}]
    assert seeds.chosen_recipe(rows) == "b"
    rows.append({"recipe": "c", "validation accuracy": 0.95})
    assert seeds.chosen_recipe(rows) == "b"


def test_noise_rows_use_each_pairs_number_of_runs():
    sd = 0.0005
    rows = seeds.noise_rows({"single runs": (0.0008, 1, 1), "means of ten": (0.0008, 10, 10)}, sd)
    assert [r["verdict"] for r in rows] == ["within seed noise", "beyond seed noise"]
    assert rows[0]["points"] == pytest.approx(0.08)
    assert rows[0]["seed noise up to (points)"] == pytest.approx(100 * seeds.noise_threshold(sd), rel=1e-12)
    assert rows[1]["seed noise up to (points)"] == pytest.approx(100 * seeds.noise_threshold(sd, 10, 10), rel=1e-12)


@pytest.mark.parametrize("accuracies", [[0.991, 0.993, 0.9935, 0.995], [0.99, 0.99, 0.99]])
def test_accuracy_histogram_draws_seeds_interval_and_reference(accuracies):
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer

    fig = seeds.accuracy_histogram(accuracies, 10_000, seeds.published_reference())
    labels = fig.legends[0].get_texts()
    assert any(f"{len(accuracies)} seeds" in t.get_text() for t in labels)
    assert any("published: 100 runs" in t.get_text() for t in labels)
    (ax,) = fig.axes
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]  # the histogram
    assert sum(bar.get_height() for bar in bars) == len(accuracies)
    plt.close(fig)
    fig = seeds.accuracy_histogram(accuracies, 300)  # no reference: nothing drawn for it
    assert not any("published" in t.get_text() for t in fig.legends[0].get_texts())
    plt.close(fig)


def test_ensemble_size_plot_takes_a_size_without_spread():
    import matplotlib.pyplot as plt

    rows = seeds.ensemble_by_size(disjoint_members(5), Y, sizes=(1, 2, 5))
    fig = seeds.ensemble_size_plot(rows)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "5"]
    plt.close(fig)


def test_score_recipes_trains_each_candidate_and_scores_it_on_validation_only():
    """Two tiny recipes of the dense network (one epoch on 300 images): one row and one model each,
    scored on the validation images only."""
    from mnistlab import networks

    rng = np.random.default_rng(0)
    y = np.arange(400) % 10
    x = np.zeros((400, 28, 28), np.float32)
    for digit in range(10):  # each class lights its own rows: easy to learn
        x[y == digit, 2 * digit : 2 * digit + 3, 4:24] = 1.0
    x += rng.random(x.shape, dtype=np.float32) * 0.1
    candidates = {"plain": {"augment": False, "epochs": 1}, "augmented": {"augment": True, "epochs": 1}}
    rows, models = seeds.score_recipes(candidates, "dense", x[:300], y[:300], x[300:], y[300:], 32, seed=0)
    assert [r["recipe"] for r in rows] == list(models) == list(candidates)
    for row in rows:
        pred = networks.predict_proba(models[row["recipe"]], x[300:]).argmax(axis=1)
        assert row["validation accuracy"] == np.mean(pred == y[300:])
        assert row["CI low"] <= row["validation accuracy"] <= row["CI high"] and row["fit seconds"] > 0
    assert seeds.chosen_recipe(rows) in candidates
