import json

import numpy as np
import pytest
from conftest import REPO

from mnistlab import config, plots, results
from mnistlab.data import load_dataset
from mnistlab.evaluation import result_record, write_metrics


@pytest.fixture
def two_chapters():
    ds = load_dataset("mnist-sample", "smoke", seed=0)
    y = ds.y_test
    good = y.copy()
    good[:6] = (good[:6] + 1) % 10
    poor = y.copy()
    poor[:60] = (poor[:60] + 1) % 10
    write_metrics("04_a", ds, [result_record("poor", y, poor, fit_seconds=1.0, n_train=600)], {"poor": poor})
    write_metrics(
        "05_b", ds, [result_record("good", y, good, fit_seconds=30.0, n_train=600, n_params=1234)], {"good": good}
    )
    return ds, good, poor


def _classical_chapter(ds):
    """A chapter "04_c" with the plain RBF SVC (40 test images wrong) and PCA + SVC (10 wrong)."""
    y = ds.y_test
    svc, pca_svc = y.copy(), y.copy()
    svc[:40] = (svc[:40] + 1) % 10
    pca_svc[:10] = (pca_svc[:10] + 1) % 10
    write_metrics(
        "04_c",
        ds,
        [result_record("SVC (RBF)", y, svc, n_train=600), result_record("PCA + SVC (tuned)", y, pca_svc)],
        {"SVC (RBF)": svc, "PCA + SVC (tuned)": pca_svc},
    )


def test_leaderboard_ranks_across_chapters(two_chapters):
    metrics = results.load_metrics()
    metrics["05_b"]["results"][0]["device"] = "GPU (H100)"
    board = results.leaderboard(metrics)
    assert list(board["model"]) == ["good", "poor"]
    assert board.loc[0, "parameters"] == 1234 and board.loc[0, "chapter"] == "05"
    assert board.loc[0, "CI low"] < board.loc[0, "accuracy"] < board.loc[0, "CI high"]
    assert list(board["fit on"]) == ["GPU", "CPU"]  # scikit-learn models record no device: the CPU


def test_predictions_round_trip(two_chapters):
    ds, good, poor = two_chapters
    y_true, predictions = results.all_predictions(results.load_metrics())
    np.testing.assert_array_equal(y_true, ds.y_test)
    np.testing.assert_array_equal(predictions["good"], good)
    np.testing.assert_array_equal(predictions["poor"], poor)


def test_mcnemar_exact():
    y = np.zeros(100, dtype=int)
    a = np.zeros(100, dtype=int)
    b = np.zeros(100, dtype=int)
    b[:10] = 1  # b wrong on 10 images where a is right
    result = results.mcnemar(y, a, b)
    assert result["only first right"] == 10 and result["only second right"] == 0
    assert result["p-value"] == pytest.approx(2 * 0.5**10)
    assert results.mcnemar(y, a, a)["p-value"] == 1.0


def test_significance_and_hardest(two_chapters):
    y_true, predictions = results.all_predictions(results.load_metrics())
    table = results.significance_table(y_true, predictions, ["good", "poor"])
    assert table.loc[0, "significant at 5%"] == "yes"
    hardest, share = results.hardest_images(y_true, predictions, n=6)
    assert set(hardest) == set(range(6)) and np.all(share == 1.0)


def test_executive_summary_numbers_come_from_metrics(two_chapters):
    metrics = results.load_metrics()
    text = results.executive_summary(metrics, {"source": "SOURCE LINE"})
    best = max(r["accuracy"] for m in metrics.values() for r in m["results"])
    assert f"**{best:.2%}**" in text and "SOURCE LINE" in text and "good" in text


def test_executive_summary_reports_contrasts_cost_and_published_results(two_chapters):
    ds, good, poor = two_chapters
    _classical_chapter(ds)
    info = {"source": "SOURCE LINE", "seconds": {"04_c.ipynb": 60.0, "05_b.ipynb": 240.0}}
    text = results.executive_summary(results.load_metrics(), info)
    assert len(text.split()) >= 150
    assert "PCA before the RBF SVM, tuned by grid search: +10.00 points" in text and "significant at 5%" in text
    assert "The 2 chapters took 5.0 minutes (the longest, 05_b, 4.0) on the CPU." in text
    metrics = results.load_metrics()  # built through the cache: chapters from two machines
    metrics["04_c"]["device"], metrics["05_b"]["results"][0]["device"] = "CPU", "GPU (H100)"  # chapter or model
    text = results.executive_summary(metrics, info)
    assert "(the longest, 05_b, 4.0) on more than one machine (CPU, GPU (H100)), so the sum is not one" in text
    assert "The best model trained in 30 s on the GPU; the cheapest, " in text  # where each fit's seconds went
    assert "Published results on the official test set (this run's test set is a subset" in text


def test_executive_summary_separates_the_ensemble_from_its_test_time_shifts(two_chapters):
    ds, good, _ = two_chapters
    y = ds.y_test
    plain, shifted = good.copy(), good.copy()
    wrong = np.flatnonzero(good != y)
    plain[wrong[:2]] = y[wrong[:2]]  # the ensemble corrects two of the best network's errors
    shifted[wrong[:5]] = y[wrong[:5]]  # the shifts three more
    name = "bn_cnn, ensemble of 5"
    write_metrics(
        "06_e",
        ds,
        [
            result_record(f"{name} (averaged probabilities)", y, plain),
            result_record(f"{name} (averaged probabilities, test-time shifts)", y, shifted),
        ],
        {f"{name} (averaged probabilities)": plain, f"{name} (averaged probabilities, test-time shifts)": shifted},
    )
    text = results.executive_summary(results.load_metrics(), {"source": "S", "seconds": {}})
    gain = 2 / len(y) * 100
    assert (
        f"over the best single network of any chapter: +{gain:.2f} points (good to {name} (averaged probabilities);"
        in text
    )
    shifts = 3 / len(y) * 100
    assert f"same ensemble: +{shifts:.2f} points ({name} (averaged probabilities) to {name} (averaged" in text


def test_mixed_runs_are_refused(two_chapters):
    path = config.metrics_dir() / "05_b.json"
    payload = json.loads(path.read_text())
    payload["profile"] = "full"
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="different runs"):
        results.check_consistent(results.load_metrics())


def test_references_are_marked_external():
    table = results.references("mnist")
    assert len(table) >= 5 and table["source"].str.startswith("http").all()
    assert (table["test accuracy"] <= 1).all()
    assert "Human" in " ".join(results.references("fashion")["method"])


COMMITTED = REPO / "reports" / "metrics"


@pytest.mark.skipif(not any(COMMITTED.glob("*.json")), reason="no committed report yet")
def test_committed_metrics_are_one_run():
    metrics = results.load_metrics(COMMITTED)
    run = results.check_consistent(metrics)
    info = json.loads((REPO / "reports" / "run.json").read_text())
    assert (run["dataset"], run["profile"]) == (info["dataset"], info["profile"])
    assert set(f"{name}.ipynb" for name in metrics) <= set(info["notebooks"])


@pytest.mark.skipif(not any(COMMITTED.glob("*.json")), reason="no committed report yet")
def test_readme_results_table_is_generated_from_committed_metrics():
    info = json.loads((REPO / "reports" / "run.json").read_text())
    expected = results.readme_block(results.load_metrics(COMMITTED), info)
    assert expected in (REPO / "README.md").read_text(), "run `python -m mnistlab readme` after `make report`"


def test_readme_bench_table_is_generated_from_bench_json():
    bench = json.loads((REPO / "reports" / "bench.json").read_text())
    assert results.bench_block(bench) in (REPO / "README.md").read_text(), "run `python -m mnistlab readme`"


def test_chapters_run_elsewhere_are_recorded_in_bench_json(two_chapters, tmp_path):
    import shutil

    import nbformat

    from mnistlab import bench

    elsewhere = tmp_path / "gpu"
    shutil.copytree(config.metrics_dir(), elsewhere / "metrics")
    (elsewhere / "executed").mkdir()
    record = {"inputs": {}, "seconds": 367.4, "executed": "d", "git_commit": "c"}
    nb = nbformat.v4.new_notebook(metadata={"mnistlab": {"cache": record}})
    nbformat.write(nb, str(elsewhere / "executed" / "05_b.ipynb"))
    nbformat.write(nbformat.v4.new_notebook(), str(elsewhere / "executed" / "06_c.ipynb"))  # no record: left out
    versions = {"python": "3.12", "keras backend": "jax"}
    (elsewhere / "run.json").write_text(
        json.dumps({"dataset": "mnist", "profile": "full", "date": "d", "versions": versions})
    )
    run = bench.record_chapter_run(elsewhere)
    assert run["notebook_seconds"] == {"05_b.ipynb": 367.4} and run["backend"] == "jax"
    assert config.bench_record(config.reports_dir() / "bench.json")["chapter_runs"][str(elsewhere)] == run
    line = results.chapter_run_line(run)
    assert "05 367 s (best good, 98.00%). Total 6.1 minutes." in line and "the CPU, `full` profile on mnist" in line
    assert bench.chapter_run(elsewhere, only=["04"])["notebook_seconds"] == {}
    # chapters that ran at once (scripts/gpu/lanes.sh): papermill's start and end times give the span
    nb.metadata["papermill"] = {"start_time": "2026-11-30T21:00:00+00:00", "end_time": "2026-11-30T21:06:07+00:00"}
    nbformat.write(nb, str(elsewhere / "executed" / "07_d.ipynb"))
    run = bench.chapter_run(elsewhere)
    assert run["span_seconds"] is None  # 05_b has no papermill times: no span claimed
    nbformat.write(nb, str(elsewhere / "executed" / "05_b.ipynb"))
    run = bench.chapter_run(elsewhere)
    assert run["span_seconds"] == 367.0
    assert "Total 12.2 minutes of chapters, which ran at once: 6.1 minutes from the first start" in (
        results.chapter_run_line(run)
    )


def test_bench_block_shows_times_and_ratios():
    curve = {"99.0%": 10.0, "99.5%": None}
    bench = {
        "date": "d",
        "git_commit": "c",
        "profile": "quick",
        "dataset": "mnist",
        "notebook_seconds": {"01_a.ipynb": 60.0, "02_b.ipynb": 120.0},
        "time_to_accuracy": {
            "device": "CPU",
            "backend": "tensorflow",
            "n_fit": 54000,
            "dataset": "mnist",
            "n_test": 10000,
            "evaluation": "test accuracy after every epoch",
            "recipes": [
                {
                    "recipe": "reference",
                    "seconds_to": {"99.0%": 100.0, "99.5%": None},
                    "ratio_to_reference": {"99.0%": 1.0, "99.5%": None},
                    "final_accuracy": 0.9921,
                    "images_per_s": 5000,
                },
                {
                    "recipe": "ours",
                    "seconds_to": curve,
                    "ratio_to_reference": {"99.0%": 0.1, "99.5%": None},
                    "final_accuracy": 0.995,
                    "images_per_s": 2000,
                },
            ],
        },
    }
    block = results.bench_block(bench)
    assert "| ours | 10 s (0.10) | – | 99.50% | 2,000 |" in block
    assert "3.0 minutes (01 60 s, 02 120 s)" in block


def test_bench_goals_judge_by_seconds_and_by_ratio_to_the_keras_example():
    from mnistlab import bench

    def row(name, members=1, **reached):
        times = {"99.0%": None, "99.3%": None, "99.5%": None, "99.6%": None, "99.7%": None}
        times.update({f"{k[1:3]}.{k[3]}%": v for k, v in reached.items()})
        return {"recipe": name, "members": members, "seconds_to": times}

    rows = [
        row("Keras example", t990=282.0),  # a machine twice as slow as the goals' (141 s)
        row("fast", t990=20.0, t995=200.0),
        row("three", members=3, t990=50.0, t996=900.0, t997=1700.0),  # the ensemble, not a single network
    ]
    rows[2]["member_seconds_to"] = [row("", t996=None)["seconds_to"], row("", t996=590.0)["seconds_to"]]
    found = {g["goal"]: g for g in bench.goals(rows)}
    assert found["99.0% in 15 s"]["recipe"] == "fast" and not found["99.0% in 15 s"]["met"]
    assert found["99.0% in 15 s"]["met_by_ratio"] and found["99.0% in 15 s"]["seconds_allowed_by_ratio"] == 30.0
    single = found["a single network: 99.6% in 600 s"]
    assert single["recipe"] == "three, member 2 alone" and single["seconds"] == 590.0 and single["met"]
    assert found["an ensemble: 99.7% in 1800 s"]["met"]
    line = results.goals_line(list(found.values()))
    assert "99.0% in 15 s: missed, 20 s (fast; 30 s allowed at the same ratio" in line
    assert "an ensemble: 99.7% in 1800 s: met, 1700 s (three; 3600 s allowed" in line
    rows[2].pop("member_seconds_to")
    assert bench.goals(rows)[2]["recipe"] is None  # the ensemble's 99.6% is not a single network's


def test_gpu_goals_judge_seconds_and_the_loops_throughput():
    from mnistlab import bench

    def row(name, members=1, loop=True, images_per_s=600_000.0, **reached):
        times = {bench.threshold_key(t): None for t in bench.THRESHOLDS}
        times.update(reached)
        return {"recipe": name, "architecture": "bn_cnn", "members": members, "loop": loop,
                "images_per_s": images_per_s, "seconds_to": times}  # fmt: skip

    rows = [
        row("Keras example", loop=False, images_per_s=36_000.0),
        row("fit", loop=False, images_per_s=9_000.0, **{"99.5%": 40.0}),
        row("loop", images_per_s=480_000.0, **{"99.5%": 0.7, "99.6%": 3.5}),
        row("five", members=5, **{"99.75%": 25.0}),
    ]
    found = {g["goal"]: g for g in bench.goals(rows, gpu=True)}
    assert found["99.5% in 1 s"]["met"] and found["99.5% in 1 s"]["recipe"] == "loop"
    assert not found["a single network: 99.6% in 3 s"]["met"]
    assert found["an ensemble: 99.75% in 30 s"]["met"] and found["an ensemble: 99.75% in 30 s"]["seconds"] == 25.0
    throughput = found["bn_cnn at 500,000 images/s"]
    assert throughput["recipe"] == "loop" and not throughput["met"]  # the 5-member row is not one network
    line = results.goals_line(list(found.values()), "one GPU")
    assert line.startswith("Goals on one GPU: 99.5% in 1 s: met, 0.7 s (loop)")
    assert "bn_cnn at 500,000 images/s: missed, 480,000 (loop)" in line
    # a run of some recipes only (run.sh --bench --recipe): the first row is a candidate, not the reference
    found = {g["goal"]: g for g in bench.goals(rows[2:], gpu=True)}
    assert found["99.5% in 1 s"]["met"] and found["99.5% in 1 s"]["recipe"] == "loop"


def test_a_gpu_machines_time_to_accuracy_is_scored_here_and_shown_beside_the_cpus(tmp_path, capsys):
    from mnistlab import bench
    from mnistlab.__main__ import main

    def row(name, images_per_s, **reached):
        times = {bench.threshold_key(t): None for t in bench.THRESHOLDS}
        times.update(reached)
        return {"recipe": name, "architecture": "bn_cnn", "members": 1, "loop": True, "images_per_s": images_per_s,
                "seconds_to": times, "final_accuracy": 0.995,
                "ratio_to_reference": {k: 1.0 for k in times}}  # fmt: skip

    # as run.sh --bench wrote it with the recipes of --recipe only (no Keras example; stale goals)
    tta = {"dataset": "mnist", "n_fit": 54000, "n_test": 10000, "device": "GPU (NVIDIA H200)", "backend": "jax",
           "evaluation": "e", "recipes": [row("loop", 739_464.0, **{"99.5%": 0.8})], "goals": []}  # fmt: skip
    record = tmp_path / "h200-full"
    record.mkdir()
    (record / "time_to_accuracy.json").write_text(json.dumps({"date": "d", "git_commit": "c", "time_to_accuracy": tta}))
    assert main(["bench", "--record", str(record)]) == 0
    assert "Goals on one GPU: 99.5% in 1 s: met, 0.8 s (loop)" in capsys.readouterr().out
    gpu = config.bench_record(config.reports_dir() / "bench.json")["gpu"]
    stored = gpu["time_to_accuracy"]
    assert stored["recipes"][0]["ratio_to_reference"]["99.5%"] is None  # no reference ran: no ratio
    block = results.bench_block({"time_to_accuracy": stored | {"device": "CPU"}, "gpu": gpu})
    assert "`scripts/gpu/run.sh --bench` on a GPU machine (d, commit c) on GPU (NVIDIA H200)" in block
    assert block.count("| loop | – | – | 0.8 s | – |") == 2 and "(in brackets" not in block
    assert main(["bench", "--record", str(tmp_path)]) == 1  # neither run.json nor time_to_accuracy.json there


def test_threshold_keys_name_the_levels():
    from mnistlab import bench

    assert [bench.threshold_key(t) for t in bench.THRESHOLDS] == [
        "99.0%",
        "99.3%",
        "99.5%",
        "99.6%",
        "99.7%",
        "99.75%",
    ]


def test_significance_table_headers_are_short(two_chapters):
    y_true, predictions = results.all_predictions(results.load_metrics())
    long_name = "bn_cnn, one-cycle + augmentation, ensemble of 5 (averaged probabilities, test-time shifts)"
    predictions[long_name] = predictions.pop("good")
    table = results.significance_table(y_true, predictions, [long_name, "poor"])
    assert all(len(str(c)) <= 21 for c in table.columns)
    assert "landscape" not in plots.Table(table, index=False)._repr_latex_()


def _board(devices=("GPU", "CPU", "CPU")):
    import pandas as pd

    return pd.DataFrame(
        {
            "model": ["a network with a long name, ensemble of 5 (averaged probabilities)", "b", "c"],
            "chapter": ["06", "05", "04"],
            "accuracy": [0.997, 0.9965, 0.93],
            "CI low": [0.996, 0.9955, 0.92],
            "CI high": [0.998, 0.9975, 0.94],
            "fit s": [100.0, 101.0, 0.0],
            "fit on": list(devices),
        }
    )


def test_accuracy_vs_time_numbers_points_without_overlap_and_tells_devices_apart():
    fig = plots.accuracy_vs_time(_board())
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text() in {"1", "2", "3"}]
    assert sorted(t.get_text() for t in labels) == ["1", "2", "3"]
    boxes = [t.get_window_extent() for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "trained on a CPU" in legend and "trained on a GPU" in legend
    assert all(t.get_fontsize() >= plots.PRINT_FONT_PT for t in labels)
    key = " ".join(t.get_text() for t in fig.axes[1].texts)
    assert "1  a network with a long name" in key
    width, height = fig.get_size_inches()
    assert width <= plots.PRINT_WIDTH_IN + 1e-6 and height <= plots.PRINT_HEIGHT_IN + 0.2


def test_heatmap_prints_its_numbers_at_8_pt_or_more():
    import pandas as pd

    names = [f"model {i} with a rather long descriptive name (averaged probabilities)" for i in range(20)]
    frame = pd.DataFrame(np.full((20, 10), 0.99), index=names, columns=list("0123456789"))
    fig = plots.heatmap(frame)
    width, height = fig.get_size_inches()
    scale = min(1.0, plots.PRINT_WIDTH_IN / width, plots.PRINT_HEIGHT_IN / height)
    annotations = [t for t in fig.axes[0].texts if t.get_text() == "0.99"]
    assert len(annotations) == 200
    assert min(t.get_fontsize() for t in annotations) * scale >= 8


def test_table_latex_needs_no_nbconvert_and_shows_seconds_with_one_decimal():
    import subprocess
    import sys

    code = (
        "import sys, pandas as pd; from mnistlab import plots; "
        "t = plots.Table(pd.DataFrame({'fit s': [12.34567], 'predict s / 1,000': [0.4321], 'acc': [0.98765]}));"
        "latex = t._repr_latex_(); assert 'nbconvert' not in sys.modules; print(latex)"
    )
    latex = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "12.3 " in latex and "0.4 " in latex and "0.9877" in latex and "12.3457" not in latex


# --------------------------------------------------------------------------- seed noise (the seeds chapter)

RECIPE = "bn_cnn, one-cycle + augmentation, 2 epochs"


def _seeds_chapter(ds, sd: float, members: int = 1, n_seeds: int = 5, ensemble_wrong: int = 2, notebook="07_s"):
    """A synthetic seeds chapter: ``members`` networks of one recipe recorded from single seeds
    (the first ``members`` of ``n_seeds``), their spread with a known ``sd``, and their ensemble."""
    y = ds.y_test
    records, predictions, accuracies = [], {}, []
    for k in range(members):
        pred = y.copy()
        pred[: 10 + k] = (pred[: 10 + k] + 1) % 10
        name = f"{RECIPE} (seed {42 + k})"
        records.append(result_record(name, y, pred, fit_seconds=10.0, n_train=600))
        predictions[name] = pred
        accuracies.append(records[-1]["accuracy"])
    ensemble = y.copy()
    ensemble[:ensemble_wrong] = (ensemble[:ensemble_wrong] + 1) % 10
    name = f"{RECIPE}, ensemble of {n_seeds} seeds (averaged probabilities)"
    records.append(result_record(name, y, ensemble, fit_seconds=50.0, n_train=600, n_params=5 * 1234))
    predictions[name] = ensemble
    mean = float(np.mean(accuracies))
    spread = {"n": n_seeds, "mean": mean, "sd": sd, "min": mean - sd, "max": mean + sd, "low": mean, "high": mean}
    recipe = {"name": RECIPE.removeprefix("bn_cnn, "), "architecture": "bn_cnn", "seeds": n_seeds}
    write_metrics(notebook, ds, records, predictions, recipe=recipe, seed_spread=spread)
    return spread


def test_leaderboard_has_one_row_for_the_seeds_mean_and_one_for_their_ensemble(two_chapters):
    ds, _, _ = two_chapters
    spread = _seeds_chapter(ds, sd=0.004, members=1, n_seeds=100)
    board = results.leaderboard(results.load_metrics())
    seeded = board[board["chapter"] == "07"]
    assert sorted(seeded["model"]) == sorted(
        [f"{RECIPE}, ensemble of 100 seeds (averaged probabilities)", f"{RECIPE}, mean of 100 seeds"]
    )
    mean = seeded[seeded["seed sd"].notna()].iloc[0]
    assert mean["accuracy"] == pytest.approx(spread["mean"]) and mean["seed sd"] == pytest.approx(0.004)
    assert mean["CI low"] < mean["accuracy"] < mean["CI high"] and mean["fit s"] == 10.0
    assert np.isnan(mean["macro F1"])  # one of 100 seeds recorded: no mean macro F1
    assert board.loc[board["chapter"] != "07", "seed sd"].isna().all()
    assert "| – |" in results.readme_block(results.load_metrics(), {**_INFO, "dataset": ds.name})


_INFO = {"profile": "smoke", "seed": 0, "git_commit": "c", "date": "d"}


def test_leaderboard_folds_every_recorded_seed_into_one_row(two_chapters):
    ds, _, _ = two_chapters
    _seeds_chapter(ds, sd=0.003, members=5, n_seeds=5)
    board = results.leaderboard(results.load_metrics())
    assert not board["model"].str.contains(r"\(seed \d+\)").any()
    mean = board[board["model"] == f"{RECIPE}, mean of 5 seeds"]
    assert len(mean) == 1 and mean["macro F1"].notna().all()
    assert mean["accuracy"].iloc[0] == pytest.approx(np.mean([1 - (10 + k) / len(ds.y_test) for k in range(5)]))


def test_seed_study_reads_the_spread_and_its_recipe(two_chapters):
    ds, _, _ = two_chapters
    assert results.seed_study(results.load_metrics()) is None
    _seeds_chapter(ds, sd=0.005, n_seeds=10)
    study = results.seed_study(results.load_metrics())
    assert (study["recipe"], study["n"], study["chapter"]) == (RECIPE, 10, "07")
    assert study["threshold"] == pytest.approx(1.96 * 0.005 * np.sqrt(2), rel=1e-3)
    sentence = results.seed_noise_sentence(study)
    assert f"({RECIPE}) from 10 seeds" in sentence and "sd of 0.500 points" in sentence and "1.39 points" in sentence


def test_significance_table_judges_each_pair_against_seed_noise(two_chapters):
    ds, good, _ = two_chapters
    y = ds.y_test
    close = good.copy()
    close[6:8] = (close[6:8] + 1) % 10  # 2 more errors than good: 2/300 = 0.67 points
    write_metrics("04_d", ds, [result_record("close", y, close, n_train=600)], {"close": close})
    # sd 0.5 points: two single runs differ by up to 1.96 * 0.5 * sqrt(2) = 1.39 points from their seeds
    _seeds_chapter(ds, sd=0.005)
    metrics = results.load_metrics()
    study = results.seed_study(metrics)
    y_true, predictions = results.all_predictions(metrics)
    table = results.significance_table(y_true, predictions, ["good", "close", "poor"], study=study).set_index(
        "compared with"
    )
    assert table.loc["close", "seed noise"] == "within seed noise"  # 0.67 < 1.39
    assert table.loc["poor", "seed noise"] == "beyond seed noise"  # 54/300 = 18 points
    assert table.loc["close", "difference (points)"] == "+0.67"
    assert all(len(str(c)) <= 21 for c in table.reset_index().columns)
    # a wider seed spread (sd 8 points: 22 points from seeds alone) swallows both
    wide = {**study, "sd": 0.08}
    table = results.significance_table(y_true, predictions, ["good", "close", "poor"], study=wide)
    assert set(table["seed noise"]) == {"within seed noise"}
    # no seeds chapter: no column, and a sentence that says so
    table = results.significance_table(y_true, predictions, ["good", "close", "poor"])
    assert "seed noise" not in table.columns and "difference (points)" not in table.columns
    assert "not measured" in results.seed_noise_sentence(None)


def test_significance_table_judges_seed_noise_only_between_two_networks(two_chapters):
    ds, good, _ = two_chapters
    _seeds_chapter(ds, sd=0.005)
    metrics = results.load_metrics()
    board = results.leaderboard(metrics)
    networks = results.network_models(board, metrics)
    assert "good" in networks and "poor" not in networks  # 05_b trained a network, 04_a did not
    y_true, predictions = results.all_predictions(metrics)
    ensemble = f"{RECIPE}, ensemble of 5 seeds (averaged probabilities)"
    order = [ensemble, "good", "poor"]
    table = results.significance_table(y_true, predictions, order, study=results.seed_study(metrics), networks=networks)
    verdicts = dict(zip(table["compared with"], table["seed noise"]))
    assert verdicts["good"] in ("within seed noise", "beyond seed noise")
    assert verdicts["poor"] == "– (not two networks)"


def test_significance_table_with_seed_noise_fits_the_page(two_chapters):
    ds, _, _ = two_chapters
    _seeds_chapter(ds, sd=0.005)
    metrics = results.load_metrics()
    y_true, predictions = results.all_predictions(metrics)
    long_name = "bn_cnn, one-cycle + augmentation, ensemble of 5 (averaged probabilities, test-time shifts)"
    predictions[long_name] = predictions.pop("good")
    table = results.significance_table(y_true, predictions, [long_name, "poor"], study=results.seed_study(metrics))
    assert "landscape" not in plots.Table(table, index=False)._repr_latex_()


def test_executive_summary_judges_its_comparisons_against_seed_noise(two_chapters):
    ds, good, _ = two_chapters
    y = ds.y_test
    close = good.copy()
    close[6:8] = (close[6:8] + 1) % 10
    write_metrics("04_d", ds, [result_record("close", y, close, n_train=600)], {"close": close})
    text = results.executive_summary(results.load_metrics(), {"source": "S"})
    assert "leads the runner-up (close) by 0.67 points (2 test images)" in text
    assert "seed noise was not measured" in text and "within seed noise" not in text
    # the seeds chapter: sd 0.5 points, 10 seeds; its ensemble makes 2 errors (the best model, 99.33%)
    _seeds_chapter(ds, sd=0.005, n_seeds=10, ensemble_wrong=2)
    text = results.executive_summary(results.load_metrics(), {"source": "S"})
    assert f": within seed noise. Chapter 7 trained {RECIPE} from 10 seeds (sd 0.500 points)" in text
    assert "differ by up to 1.39 points (1.96 × sd × √2) by seed alone" in text
    mean = 1 - 10 / len(y)
    gain = 100 * ((1 - 2 / len(y)) - mean)
    assert f"over one network of the same recipe (the mean of its 10 seeds, chapter 7): +{gain:.2f} points" in text
    # 1.96 * 0.5 * sqrt(1 + 1/10) = 1.03 points for one ensemble against the mean of 10 single networks
    assert "beyond seed noise (up to 1.03 points for one ensemble against a mean of 10)" in text
    assert "over the best single network" not in text  # chapter 6's contrast, not the seeds chapter's ensemble
    # the headline: the ensemble leads good by 4/300 = 1.33 points, less than 1.39
    assert "leads the runner-up (good) by 1.33 points (4 test images): within seed noise." in text


def test_test_time_shifts_are_compared_with_the_same_ensemble_when_the_seeds_chapter_ran(two_chapters):
    ds, good, _ = two_chapters
    y = ds.y_test
    plain, shifted = good.copy(), good.copy()
    wrong = np.flatnonzero(good != y)
    plain[wrong[:2]] = y[wrong[:2]]
    shifted[wrong[:5]] = y[wrong[:5]]
    name = "bn_cnn, ensemble of 5"
    write_metrics(
        "06_e",
        ds,
        [
            result_record(f"{name} (averaged probabilities)", y, plain, n_params=5 * 1234),
            result_record(f"{name} (averaged probabilities, test-time shifts)", y, shifted, n_params=5 * 1234),
        ],
        {f"{name} (averaged probabilities)": plain, f"{name} (averaged probabilities, test-time shifts)": shifted},
    )
    _seeds_chapter(ds, sd=0.005, ensemble_wrong=0)  # its ensemble is the most accurate of all
    text = results.executive_summary(results.load_metrics(), {"source": "S"})
    assert f"same ensemble: +1.00 points ({name} (averaged probabilities) to {name} (averaged" in text
    assert (
        f"over the best single network of any chapter: +0.67 points (good to {name} (averaged probabilities);" in text
    )
    assert "not significant at 5%; within seed noise)." in text  # 1.00 and 0.67 points, both < 1.39


def test_classical_contrasts_are_not_judged_by_a_networks_seed_noise(two_chapters):
    ds, _, _ = two_chapters
    _classical_chapter(ds)
    _seeds_chapter(ds, sd=0.005)
    text = results.executive_summary(results.load_metrics(), {"source": "S"})
    assert "(SVC (RBF) to PCA + SVC (tuned); McNemar's test p < 0.001, significant at 5%)." in text


def test_accuracy_vs_time_shows_the_seeds_spread():
    board = _board().assign(**{"seed sd": [np.nan, 0.001, np.nan]})
    fig = plots.accuracy_vs_time(board)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "mean over seeds: one seed's 95% range" in legend
    assert fig.axes[0].get_ylim()[0] < 0.9965 - 1.96 * 0.001
    fig = plots.accuracy_vs_time(_board())  # no seeds chapter: no such entry
    assert all("seeds" not in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_heatmap_in_percent_shows_differences_at_8_pt_without_overlap():
    import pandas as pd

    names = [f"model {i} with a rather long descriptive name (averaged probabilities)" for i in range(20)]
    values = np.full((20, 10), 99.7)
    values[:, 1] = 100.0
    frame = pd.DataFrame(values, index=names, columns=list("0123456789"))
    fig = plots.heatmap(frame, fmt=".1f")
    width, height = fig.get_size_inches()
    scale = min(1.0, plots.PRINT_WIDTH_IN / width, plots.PRINT_HEIGHT_IN / height)
    texts = fig.axes[0].texts
    assert {t.get_text() for t in texts} == {"99.7", "100.0"}
    assert min(t.get_fontsize() for t in texts) * scale >= 8
    fig.canvas.draw()
    row = sorted(
        (t for t in texts if t.get_position()[1] == texts[0].get_position()[1]), key=lambda t: t.get_position()
    )
    boxes = [t.get_window_extent() for t in row]
    assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))


def test_digit_grid_at_printed_size_prints_its_labels_at_8_pt():
    images = np.random.default_rng(0).random((21, 28, 28))
    labels = [f"{i % 10}\n{100 if i < 5 else 95}% wrong" for i in range(21)]
    fig = plots.digit_grid(images, labels, n_cols=7, printed=True)
    width, _ = fig.get_size_inches()
    assert width <= plots.PRINT_WIDTH_IN + 1e-6
    titles = [ax.title for ax in fig.axes if ax.get_title()]
    assert len(titles) == 21 and min(t.get_fontsize() for t in titles) >= plots.PRINT_FONT_PT
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in titles]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    import io

    from PIL import Image

    saved = io.BytesIO()
    fig.savefig(saved, dpi=100, bbox_inches="tight")  # as save_fig does: with its margin
    assert Image.open(saved).size[0] <= 100 * 5.86  # the report's text width: printed at its own size
    # one line, "5 (100% wrong)": 10 columns have no room for it, so the grid takes fewer
    fig = plots.digit_grid(images, [label.replace("\n", " (") + ")" for label in labels], n_cols=10, printed=True)
    assert fig.axes[0].get_gridspec().ncols < 10
    fig.canvas.draw()
    boxes = [ax.title.get_window_extent() for ax in fig.axes if ax.get_title()]
    assert len(boxes) == 21 and not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_difference_and_its_seed_noise_limit_never_print_alike():
    # 0.0689 against 0.0686 points read "0.07 ... up to 0.07" at two decimals
    assert results._distinct_points(0.000689, 0.000686) == ("0.0689", "0.0686")
    assert results._distinct_points(0.0010, 0.0005) == ("0.10", "0.05")
    assert results._distinct_points(0.00121, 0.00124) == ("0.121", "0.124")
