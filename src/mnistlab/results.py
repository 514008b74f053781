"""The results chapter and the executive summary: everything is read from ``reports/metrics``."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import config, seeds


def load_metrics(directory: Path | None = None) -> dict[str, dict]:
    """Every ``<notebook>.json`` of a run, by notebook name, in chapter order."""
    directory = Path(directory or config.metrics_dir())
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("[0-9][0-9]_*.json"))}


def load_predictions(notebook: str, directory: Path | None = None) -> dict[str, np.ndarray]:
    """``{"y_true": ..., model name: predictions}`` saved by :func:`evaluation.write_metrics`."""
    directory = Path(directory or config.metrics_dir())
    path = directory / f"{notebook}.predictions.npz"
    if not path.exists():
        return {}
    payload = load_metrics(directory).get(notebook, {})
    with np.load(path, allow_pickle=False) as npz:
        found = {"y_true": npz["y_true"]}
        for record in payload.get("results", []):
            key = record.get("predictions_key")
            if key in npz:
                found[record["model"]] = npz[key]
    return found


def check_consistent(metrics: dict[str, dict]) -> dict:
    """All chapters must come from one run: same dataset, profile and seed. Returns them."""
    seen = {(m["dataset"], m["profile"], m.get("seed")) for m in metrics.values()}
    if len(seen) != 1:
        raise ValueError(
            f"the metrics files come from different runs: {sorted(map(str, seen))}; "
            f"run `make report` again to rebuild them all"
        )
    dataset, profile, seed = seen.pop()
    return {"dataset": dataset, "profile": profile, "seed": seed}


def run_devices(metrics: dict[str, dict]) -> list[str]:
    """The devices a run's chapters and models say they trained on (chapters built through the
    cache may come from different machines)."""
    chapter_devices = {p.get("device") for p in metrics.values()}
    model_devices = {r.get("device") for p in metrics.values() for r in p["results"]}
    return sorted((chapter_devices | model_devices) - {None})


def device_kind(device: str | None) -> str:
    """ "GPU" or "CPU" for a device record (none: scikit-learn models, which train on the CPU)."""
    return "GPU" if device and device.startswith("GPU") else "CPU"


#: A network of the seeds chapter trained from one seed: ``"<recipe> (seed 42)"``.
_SEED_RECORD = re.compile(r"^(?P<recipe>.*) \(seed \d+\)$")


def seed_study(metrics: dict[str, dict]) -> dict | None:
    """What the seeds chapter measured, or None when no chapter recorded a seed spread.

    ``{"notebook", "chapter", "recipe", "n", "mean", "sd", "threshold", "n_test"}``: one recipe
    trained from ``n`` seeds, its single networks' test accuracies (mean, ``sd``, fractions), and
    ``threshold``, the largest difference between two single runs that re-seeding alone explains
    at 95% (:func:`seeds.noise_threshold`: 1.96 × sd × √2)."""
    for notebook, payload in metrics.items():
        spread = payload.get("seed_spread")
        if payload.get("variant") or not spread or spread.get("sd") is None or spread.get("n", 0) < 2:
            continue
        recipe = payload.get("recipe") or {}
        name = ", ".join(str(part) for part in (recipe.get("architecture"), recipe.get("name")) if part)
        n_test = next((int(r["n_test"]) for r in payload.get("results", []) if r.get("n_test")), None)
        return {
            "notebook": notebook,
            "chapter": notebook[:2],
            "recipe": name or "one recipe",
            "n": int(spread["n"]),
            "mean": float(spread["mean"]),
            "sd": float(spread["sd"]),
            "threshold": float(seeds.noise_threshold(spread["sd"])),
            "n_test": n_test,
        }
    return None


def seed_verdict(difference: float, study: dict | None, runs_a: int = 1, runs_b: int = 1) -> str | None:
    """The verdict, "within seed noise" or "beyond seed noise", for a difference in accuracy (a fraction)
    between two models, judged by the seeds chapter's sd (:func:`seeds.within_seed_noise`);
    None without a seed study."""
    if study is None:
        return None
    within = seeds.within_seed_noise(difference, study["sd"], runs_a, runs_b)
    return "within seed noise" if within else "beyond seed noise"


def seed_noise_sentence(study: dict | None) -> str:
    """The rule behind "within seed noise", and where its sd came from (or that it is missing)."""
    if study is None:
        return (
            "The seeds chapter's metrics are not in this run, so seed noise was not measured and no "
            "difference is judged against it (run the seeds chapter, 07_seeds_and_ensembles, to add that column)."
        )
    return (
        f"Seed noise: chapter {study['chapter'].lstrip('0')} trained one recipe ({study['recipe']}) from "
        f"{study['n']} seeds; its single networks' test accuracies have an sd of {100 * study['sd']:.3f} points. "
        f"Two single runs differ by up to 1.96 × sd × √2 = {100 * study['threshold']:.2f} points "
        f"({study['threshold'] * (study['n_test'] or 0):.1f} test images) from their seeds alone, so a pair whose "
        f"accuracies differ by less is within seed noise. The yardstick is that one recipe's: other networks "
        f"may vary more or less from seed to seed, and ensembles vary less."
        if study["n_test"]
        else f"Seed noise: chapter {study['chapter'].lstrip('0')} trained one recipe ({study['recipe']}) from "
        f"{study['n']} seeds (sd {100 * study['sd']:.3f} points); a pair whose accuracies differ by less than "
        f"1.96 × sd × √2 = {100 * study['threshold']:.2f} points is within seed noise."
    )


def _row(model: str, notebook: str, payload: dict, r: dict) -> dict:
    return {
        "model": model,
        "chapter": notebook[:2],
        "accuracy": r["accuracy"],
        "CI low": r["ci95"][0],
        "CI high": r["ci95"][1],
        "macro F1": r["macro_f1"],
        "fit s": r["fit_seconds"],
        "fit on": device_kind(r.get("device") or payload.get("device")),
        "predict s / 1,000": 1000 * r["predict_seconds"] / max(1, r["n_test"]),
        "parameters": r.get("n_params"),
        "n train": r["n_train"],
        "n test": r["n_test"],
        "seed sd": np.nan,
    }


def _mean_over_seeds(notebook: str, payload: dict, records: list[dict]) -> dict:
    """One leaderboard row for a recipe's networks trained from many seeds (the seeds chapter
    records one of them, or all): the mean accuracy over the chapter's seeds, its Wilson interval
    on the test set, the seeds' sd, and one network's seconds."""
    spread = payload.get("seed_spread")
    if not spread or len(records) > spread.get("n", 0):
        spread = seeds.seed_spread([r["accuracy"] for r in records]) if len(records) > 1 else None
    first = records[0]
    recipe = _SEED_RECORD.match(first["model"])["recipe"]
    if spread is None:  # one seed recorded and no spread: it stands for itself
        return _row(first["model"], notebook, payload, first)
    low, high = seeds.binomial_interval(spread["mean"], int(first["n_test"]))
    n, predict = len(records), float(np.mean([r["predict_seconds"] for r in records]))
    row = _row(f"{recipe}, mean of {spread['n']} seeds", notebook, payload, first)
    row.update(
        {
            "accuracy": spread["mean"],
            "CI low": low,
            "CI high": high,
            "macro F1": float(np.mean([r["macro_f1"] for r in records])) if n == spread["n"] else np.nan,
            "fit s": float(np.mean([r["fit_seconds"] for r in records])),
            "predict s / 1,000": 1000 * predict / max(1, first["n_test"]),
            "seed sd": spread["sd"],
        }
    )
    return row


def leaderboard(metrics: dict[str, dict], task: str = "multiclass") -> pd.DataFrame:
    """One row per model of ``task`` across all chapters, most accurate first; ``fit on`` says
    where ``fit s`` was spent (a report built through the cache may mix machines).

    The seeds chapter's networks of one recipe from single seeds become one row, "<recipe>, mean
    of N seeds": the mean accuracy over its seeds (interval: Wilson's for one model at that
    accuracy), one network's seconds, and ``seed sd`` (a fraction; empty for every other row)."""
    rows = []
    for notebook, payload in metrics.items():
        if payload.get("variant"):  # other test images (noisy, multi-digit): see variant_table
            continue
        records = [r for r in payload["results"] if r.get("task", "multiclass") == task]
        by_seed: dict[str, list[dict]] = {}
        if payload.get("seed_spread"):
            for r in records:
                match = _SEED_RECORD.match(r["model"])
                if match:
                    by_seed.setdefault(match["recipe"], []).append(r)
        seeded = {id(r) for group in by_seed.values() for r in group}
        rows += [_row(r["model"], notebook, payload, r) for r in records if id(r) not in seeded]
        rows += [_mean_over_seeds(notebook, payload, group) for group in by_seed.values()]
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values(["accuracy", "fit s"], ascending=[False, True]).reset_index(drop=True)


def mcnemar(y_true, pred_a, pred_b) -> dict:
    """Exact McNemar test: do two classifiers err on different test images more than chance allows?"""
    y_true = np.asarray(y_true)
    right_a, right_b = np.asarray(pred_a) == y_true, np.asarray(pred_b) == y_true
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(stats.binomtest(only_a, n, 0.5).pvalue)
    return {"only first right": only_a, "only second right": only_b, "p-value": p}


def all_predictions(metrics: dict[str, dict], directory: Path | None = None):
    """``(y_true, {model: predictions})`` over all chapters; raises if test sets differ."""
    y_true, found = None, {}
    for notebook in metrics:
        if metrics[notebook].get("variant"):
            continue
        saved = load_predictions(notebook, directory)
        if not saved:
            continue
        if y_true is None:
            y_true = saved["y_true"]
        elif not np.array_equal(y_true, saved["y_true"]):
            raise ValueError(f"{notebook} was scored on other test images than the earlier chapters")
        found.update({k: v for k, v in saved.items() if k != "y_true"})
    return y_true, found


def significance_table(
    y_true,
    predictions: dict,
    order: list[str],
    top: int = 6,
    study: dict | None = None,
    networks: set[str] | None = None,
) -> pd.DataFrame:
    """McNemar's test between the first model of ``order`` (the leader) and each of the next ones.

    The columns have short names (the leader's name can be 90 characters long; the caption
    names it), so the table fits the page. With the seeds chapter's ``study`` (:func:`seed_study`)
    the difference in accuracy is judged against seed noise too (``seed noise``: "within seed
    noise" or "beyond seed noise", two single runs); without it that column is left out. With
    ``networks`` (:func:`network_models`) only pairs of two networks are judged: a classical
    model has no seed noise, and its row says so."""
    y_true = np.asarray(y_true)
    best, rows = order[0], []
    for other in order[1:top]:
        result = mcnemar(y_true, predictions[best], predictions[other])
        right = {m: np.asarray(predictions[m]) == y_true for m in (best, other)}
        difference = right[best].mean() - right[other].mean()
        row = {
            "compared with": other,
            "only the leader right": result["only first right"],
            "only the other right": result["only second right"],
            "p-value": result["p-value"],
            "significant at 5%": "yes" if result["p-value"] < 0.05 else "no",
        }
        if study is not None:
            row["difference (points)"] = f"{100 * difference:+.2f}"
            both = networks is None or {best, other} <= networks
            row["seed noise"] = seed_verdict(difference, study) if both else "– (not two networks)"
        rows.append(row)
    return pd.DataFrame(rows)


def per_class_accuracy(y_true, predictions: dict, n_classes: int) -> pd.DataFrame:
    """Recall of each class (rows: models, columns: classes)."""
    y_true = np.asarray(y_true)
    return pd.DataFrame(
        {model: [np.mean(pred[y_true == c] == c) for c in range(n_classes)] for model, pred in predictions.items()}
    ).T


def hardest_images(y_true, predictions: dict, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the test images most models get wrong, and the share of models that do."""
    wrong = np.mean([np.asarray(p) != y_true for p in predictions.values()], axis=0)
    order = np.argsort(-wrong, kind="stable")[:n]
    return order, wrong[order]


def references(dataset: str) -> pd.DataFrame:
    """Published results (external, not computed by this run) for the dataset family."""
    path = config.repo_root() / "data" / "references.csv"
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["dataset"] == ("fashion" if dataset == "fashion" else "mnist")]
    table = pd.DataFrame(rows).drop(columns="dataset")
    table["test accuracy"] = table["test accuracy"].astype(float)
    return table


#: The seeds chapter's ensemble: "<recipe>, ensemble of N seeds (averaged probabilities)".
_SEEDS_ENSEMBLE = re.compile(r", ensemble of \d+ seeds \(")


def _averaged_ensemble(model: str) -> bool:
    """An ensemble of averaged probabilities without test-time shifts (chapter 6's naming; the
    seeds chapter's ensemble has a contrast of its own)."""
    return "ensemble" in model and model.endswith("(averaged probabilities)") and not _SEEDS_ENSEMBLE.search(model)


def _shifted_ensemble(model: str) -> bool:
    return "ensemble" in model and model.endswith("(averaged probabilities, test-time shifts)")


#: Comparisons the executive summary reports when both models ran: (what it measures, how to find
#: the "before" model, given the "after" one, how to find the "after" model) by name.
CONTRASTS = (
    (
        "PCA before the RBF SVM, tuned by grid search",
        lambda m, _: m == "SVC (RBF)",
        lambda m: m == "PCA + SVC (tuned)",
    ),
    (
        "the small batch-normalised CNN over the Keras example's network and recipe",
        lambda m, _: m == "simple_cnn (Keras example recipe)",
        lambda m: m == "bn_cnn, one-cycle + augmentation",
    ),
    (
        "the one-cycle recipe over the textbook one, same network",
        lambda m, _: m == "bn_cnn",
        lambda m: m == "bn_cnn, one-cycle",
    ),
    (
        "data augmentation, same network and recipe",
        lambda m, _: m == "bn_cnn, one-cycle",
        lambda m: m == "bn_cnn, one-cycle + augmentation",
    ),
    (
        "an ensemble (averaged probabilities) over the best single network of any chapter",
        None,
        _averaged_ensemble,
    ),
    (
        "test-time shifts (answers averaged over the image and its four 1-pixel shifts), same ensemble",
        lambda m, after: m == after.replace(", test-time shifts)", ")"),
        _shifted_ensemble,
    ),
)


def network_models(board: pd.DataFrame, metrics: dict[str, dict]) -> set[str]:
    """The models of ``board`` (:func:`leaderboard`) that are neural networks (their chapter trained networks)."""
    chapters = _network_chapters(metrics)
    return {m for m, ch in zip(board["model"], board["chapter"]) if ch in chapters}


def _network_chapters(metrics: dict[str, dict]) -> set[str]:
    """Chapters that trained neural networks (a record with a parameter count), on the common test images."""
    return {
        name[:2]
        for name, payload in metrics.items()
        if not payload.get("variant") and any(r.get("n_params") for r in payload.get("results", []))
    }


def _distinct_points(a: float, b: float) -> tuple[str, str]:
    """Two accuracy differences (fractions) in points, to the fewest decimals (2 to 4) that tell them apart."""
    for places in (2, 3, 4):
        shown = f"{100 * a:.{places}f}", f"{100 * b:.{places}f}"
        if shown[0].lstrip("+-") != shown[1].lstrip("+-"):
            break
    return shown


def _seed_clause(verdict: str | None) -> str:
    return f"; {verdict}" if verdict else ""


def _seeds_contrast(board: pd.DataFrame, study: dict | None) -> str | None:
    """The seeds chapter's ensemble over the mean of its single networks, judged against seed noise."""
    if study is None:
        return None
    chapter = board[board["chapter"] == study["chapter"]]
    mean = chapter[chapter["seed sd"].notna()]
    ensemble = chapter[chapter["model"].map(lambda m: bool(_SEEDS_ENSEMBLE.search(m)))]
    if mean.empty or ensemble.empty:
        return None
    mean, ensemble = mean.iloc[0], ensemble.iloc[0]
    gain = ensemble["accuracy"] - mean["accuracy"]
    limit = seeds.noise_threshold(study["sd"], 1, study["n"])
    verdict = seed_verdict(gain, study, 1, study["n"])
    shown_gain, shown_limit = _distinct_points(abs(gain), limit)
    return (
        f"An ensemble of {study['n']} networks over one network of the same recipe (the mean of its {study['n']} "
        f"seeds, chapter {study['chapter'].lstrip('0')}): {'+' if gain >= 0 else '-'}{shown_gain} points; {verdict} "
        f"(up to {shown_limit} points for one ensemble against a mean of {study['n']})."
    )


def _contrast_sentences(board: pd.DataFrame, metrics: dict[str, dict], study: dict | None = None) -> list[str]:
    """One sentence per contrast of :data:`CONTRASTS` that this run measured, with McNemar's test
    and, with the seeds chapter's ``study``, whether the difference is within seed noise."""
    try:
        y_true, predictions = all_predictions(metrics)
    except ValueError:
        return []
    if y_true is None:
        return []
    singles = [m for m in board["model"] if m in predictions and "ensemble" not in m]
    network_chapters = _network_chapters(metrics)
    chapter_of = dict(zip(board["model"], board["chapter"]))
    networks = [m for m, ch in zip(board["model"], board["chapter"]) if m in singles and ch in network_chapters]
    sentences = []

    def first(is_model, *args):
        return next((m for m in board["model"] if is_model(m, *args) and m in predictions), None)

    for label, before_is, after_is in CONTRASTS:
        after = first(after_is)
        if not after:
            continue
        if before_is:
            before = first(before_is, after)
        else:  # the best single network of the network chapters
            before = networks[0] if networks else None
        if not before or before == after:
            continue
        gain = np.mean(predictions[after] == y_true) - np.mean(predictions[before] == y_true)
        test = mcnemar(y_true, predictions[before], predictions[after])
        verdict = "significant" if test["p-value"] < 0.05 else "not significant"
        p = "p < 0.001" if test["p-value"] < 0.001 else f"p = {test['p-value']:.3f}"
        # seed noise is a network's: the classical models' contrasts are not judged by it
        both_networks = {chapter_of[before], chapter_of[after]} <= network_chapters
        seeded = _seed_clause(seed_verdict(gain, study)) if both_networks else ""
        sentences.append(
            f"{label[0].upper() + label[1:]}: {gain * 100:+.2f} points ({before} to {after}; McNemar's test "
            f"{p}, {verdict} at 5%{seeded})."
        )
    seeded = _seeds_contrast(board, study)
    if seeded:
        sentences.append(seeded)
    return sentences


def _runs(row: pd.Series, study: dict | None) -> int:
    """How many seeds a leaderboard row's accuracy averages: the seeds chapter's n for its mean row, else 1."""
    return study["n"] if study and pd.notna(row.get("seed sd", np.nan)) else 1


def _headline_noise(board: pd.DataFrame, study: dict | None, n_test: int) -> str:
    """The best model against the runner-up, judged against seed noise (or why it cannot be)."""
    if len(board) < 2:
        return ""
    best, second = board.iloc[0], board.iloc[1]
    difference = best["accuracy"] - second["accuracy"]
    lead = (
        f"The best model leads the runner-up ({second['model']}) by {100 * difference:.2f} points "
        f"({round(difference * n_test)} test images)"
    )
    if study is None:
        return lead + "; seed noise was not measured (the seeds chapter is not in this run)."
    verdict = seed_verdict(difference, study, _runs(best, study), _runs(second, study))
    return (
        f"{lead}: {verdict}. Chapter {study['chapter'].lstrip('0')} trained {study['recipe']} from {study['n']} "
        f"seeds (sd {100 * study['sd']:.3f} points): two single runs differ by up to "
        f"{100 * study['threshold']:.2f} points (1.96 × sd × √2) by seed alone."
    )


def _published_sentence(best: pd.Series, dataset: str, official: bool) -> str:
    refs = references(dataset).sort_values("test accuracy")
    below = refs[refs["test accuracy"] <= best["accuracy"]].tail(1)
    above = refs[refs["test accuracy"] > best["accuracy"]].head(1)
    parts = [f"{r['method']} ({r['test accuracy']:.2%})" for _, r in pd.concat([below, above]).iterrows()]
    if not parts:
        return ""
    where = (
        "on the same official test set"
        if official
        else "on the official test set (this run's test set is a subset, so compare with care)"
    )
    return f"Published results {where} bracket it: {' and '.join(parts)}; see the published results in the results chapter."


def executive_summary(metrics: dict[str, dict], info: dict) -> str:
    """A page of Markdown for the top of the report, every number taken from this run's metrics."""
    run = check_consistent(metrics)
    board = leaderboard(metrics)
    if board.empty:
        return "No classifier results were recorded in this run.\n"
    best = board.iloc[0]
    n_test, n_train = int(best["n test"]), int(board["n train"].max())
    official = run["dataset"] in ("mnist", "fashion") and n_test == 10_000
    errors = round((1 - best["accuracy"]) * n_test)
    paragraphs = [
        f"**The question.** How well can a computer read handwritten "
        f"{'clothing images' if run['dataset'] == 'fashion' else 'digits'}, and what does each step buy, from a "
        f"linear model to an ensemble of convolutional networks? This run trained {len(board)} classifiers on up to "
        f"{n_train:,} training images and tested every one on the same {n_test:,} test images. Data: "
        f"{info.get('source', run['dataset'])}. Profile `{run['profile']}`, seed {run['seed']}.",
        f"**The answer.** The most accurate model is {best['model']}: **{best['accuracy']:.2%}** test accuracy "
        f"(95% CI {best['CI low']:.2%} to {best['CI high']:.2%}), {errors} errors in {n_test:,} images. "
        + _published_sentence(best, run["dataset"], official),
    ]
    classical = board[board["chapter"].isin(["02", "03", "04"])]
    helped = []
    if not classical.empty and best["chapter"] not in ("02", "03", "04"):
        top = classical.iloc[0]
        cut = 1 - (1 - best["accuracy"]) / max(1e-9, 1 - top["accuracy"])
        helped.append(
            f"Convolutional networks over the best classical model ({top['model']}, {top['accuracy']:.2%}): "
            f"{cut:.0%} fewer test errors."
        )
    study = seed_study(metrics)
    contrasts = _contrast_sentences(board, metrics, study)
    helped += contrasts
    if helped:
        paragraphs.append("**What helped, and what did not.**\n\n" + "\n".join(f"- {h}" for h in helped))
    overlapping = board[(board["CI high"] >= best["CI low"]) & (board.index > 0)]
    sure = (
        f"**How sure we are.** {len(overlapping)} other model(s) have a 95% interval that overlaps the best one's; "
        f"on {n_test:,} test images one image is {100 / n_test:.2f} points, so smaller differences are noise. "
        + _headline_noise(board, study, n_test)
    )
    paragraphs.append(sure.rstrip())
    seconds = info.get("seconds", {})
    if seconds:
        slowest = max(seconds, key=seconds.get)
        devices = run_devices(metrics)
        cheapest = board.loc[board["fit s"].idxmin()]
        where = (
            f"on {devices[0] if devices else 'the CPU'}"
            if len(devices) <= 1  # chapters built through the cache may come from different machines
            else f"on more than one machine ({', '.join(devices)}), so the sum is not one machine's time"
        )
        paragraphs.append(
            f"**What it cost.** The {len(seconds)} chapters took {sum(seconds.values()) / 60:.1f} minutes "
            f"(the longest, {slowest.removesuffix('.ipynb')}, {seconds[slowest] / 60:.1f}) {where}. "
            f"The best model trained in {best['fit s']:.0f} s on the {best['fit on']}; the cheapest, "
            f"{cheapest['model']}, in {cheapest['fit s']:.1f} s on the {cheapest['fit on']} for {cheapest['accuracy']:.2%}."
        )
    return "\n\n".join(paragraphs) + "\n"


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def readme_block(metrics: dict[str, dict], info: dict, top: int = 10) -> str:
    """The README's results section, generated from the committed metrics (never typed by hand)."""
    board = leaderboard(metrics).head(top)
    lines = [
        README_START,
        f"Produced by `make report DATASET={info['dataset']} PROFILE={info['profile']}` "
        f"(seed {info['seed']}, commit {info['git_commit']}, {info['date']}); "
        f"test set of {int(board['n test'].iloc[0]):,} images.",
        "",
        "| model | chapter | test accuracy | 95% CI | macro F1 | fit s | fit on |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in board.iterrows():
        f1 = "–" if pd.isna(r["macro F1"]) else f"{r['macro F1']:.3f}"
        lines.append(
            f"| {r['model']} | {r['chapter']} | {r['accuracy']:.2%} | {r['CI low']:.2%}–{r['CI high']:.2%} "
            f"| {f1} | {r['fit s']:.0f} | {r['fit on']} |"
        )
    lines.append(README_END)
    return "\n".join(lines)


BENCH_START, BENCH_END = "<!-- bench:start -->", "<!-- bench:end -->"


def bench_block(bench: dict) -> str:
    """The README's time-to-accuracy table, generated from reports/bench.json."""
    tta = bench.get("time_to_accuracy")
    if not tta:
        return (
            f"{BENCH_START}\n(no time-to-accuracy measurement in reports/bench.json yet: run `make bench`)\n{BENCH_END}"
        )
    lines = [BENCH_START, *_time_to_accuracy_lines(bench, "`make bench`")]
    if bench.get("gpu"):
        lines += ["", *_time_to_accuracy_lines(bench["gpu"], "`scripts/gpu/run.sh --bench` on a GPU machine")]
    seconds = bench.get("notebook_seconds", {})
    if seconds:
        lines += [
            "",
            f"The {len(seconds)} chapters in the `{bench['profile']}` profile on {bench['dataset']}: "
            f"{sum(seconds.values()) / 60:.1f} minutes ("
            + ", ".join(f"{name[:2]} {value:.0f} s" for name, value in seconds.items())
            + ").",
        ]
    for run in bench.get("chapter_runs", {}).values():
        lines += ["", chapter_run_line(run)]
    lines.append(BENCH_END)
    return "\n".join(lines)


def _time_to_accuracy_lines(record: dict, by: str) -> list[str]:
    """The time-to-accuracy table of one run (``make bench``'s, or a GPU machine's) and its goals."""
    tta = record["time_to_accuracy"]
    thresholds = list(tta["recipes"][0]["seconds_to"])
    ratios = any(r for row in tta["recipes"] for r in row["ratio_to_reference"].values())
    lines = [
        f"Measured by {by} ({record.get('date', '')}, commit {record.get('git_commit', '')}) on "
        f"{tta['device']} ({tta['backend']}): {tta['n_fit']:,} training images of {tta['dataset']}, "
        f"{tta['n_test']:,} test images; {tta['evaluation']}. Seconds of training until the test "
        "accuracy first reaches each level"
        + (" (in brackets: the time relative to the Keras example's):" if ratios else ":"),
        "",
        "| recipe | " + " | ".join(thresholds) + " | final | images/s |",
        "|---|" + "---|" * (len(thresholds) + 2),
    ]
    for row in tta["recipes"]:
        cells = []
        for t in thresholds:
            seconds, ratio = row["seconds_to"][t], row["ratio_to_reference"][t]
            cells.append("–" if seconds is None else _seconds(seconds) + (f" ({ratio:.2f})" if ratio else ""))
        lines.append(
            f"| {row['recipe']} | "
            + " | ".join(cells)
            + f" | {row['final_accuracy']:.2%} | {row['images_per_s']:,.0f} |"
        )
    if tta.get("goals"):
        lines += ["", goals_line(tta["goals"], tta.get("goals_for", "2 CPU cores"))]
    return lines


def _seconds(seconds: float) -> str:
    """Seconds as the bench tables print them: tenths below ten seconds (a GPU's), else whole."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def goals_line(goals: list[dict], where: str = "2 CPU cores") -> str:
    """One sentence on the time-to-accuracy goals (``bench.goals``) on ``where``."""
    parts = []
    for goal in goals:
        if "images_per_s" in goal:  # the throughput goal of a GPU
            if goal["images_per_s"] is None:
                parts.append(f"{goal['goal']}: not measured")
            else:
                verdict = "met" if goal["met"] else "missed"
                parts.append(f"{goal['goal']}: {verdict}, {goal['images_per_s']:,.0f} ({goal['recipe']})")
            continue
        if goal["seconds"] is None:
            parts.append(f"{goal['goal']}: not reached")
            continue
        verdict = "met" if goal["met"] else "missed"
        ratio = ""
        if goal["seconds_allowed_by_ratio"]:
            ratio = (
                f"; {goal['seconds_allowed_by_ratio']:.0f} s allowed at the same ratio to the Keras example, "
                f"{'met' if goal['met_by_ratio'] else 'missed'} by that measure"
            )
        parts.append(f"{goal['goal']}: {verdict}, {_seconds(goal['seconds'])} ({goal['recipe']}{ratio})")
    return f"Goals on {where}: " + "; ".join(parts) + "."


def chapter_run_line(run: dict) -> str:
    """One sentence on chapters run elsewhere (``python -m mnistlab bench --record DIR``)."""
    parts = []
    for name, seconds in run["notebook_seconds"].items():
        best = run["best_accuracy"].get(Path(name).stem)
        variant = f" on the {best['variant']} variant" if best and best.get("variant") else ""
        if best and best.get("task", "multiclass") != "multiclass":
            variant += f", {best['task']} task"
        parts.append(
            f"{name[:2]} {seconds:.0f} s"
            + (f" (best {best['model']}, {best['accuracy']:.2%}{variant})" if best else "")
        )
    where = f"{', '.join(run['devices'])} with the {run['backend']} backend" if run["devices"] else "the CPU"
    total, span = sum(run["notebook_seconds"].values()), run.get("span_seconds")
    return (
        f"Chapters run on {where}, `{run['profile']}` profile on {run['dataset']} ({run['date']}): "
        + "; ".join(parts)
        + f". Total {total / 60:.1f} minutes"
        + (
            f" of chapters, which ran at once: {span / 60:.1f} minutes from the first start to the last end."
            if span and span < 0.95 * total
            else "."
        )
    )


def _replace_block(text: str, start_marker: str, end_marker: str, block: str) -> str:
    start, end = text.index(start_marker), text.index(end_marker) + len(end_marker)
    return text[:start] + block + text[end:]


def update_readme(readme: Path, metrics: dict[str, dict], info: dict, bench: dict | None = None) -> bool:
    """Replace the results block (and, with ``bench``, the time-to-accuracy block) of ``readme``;
    True if it changed."""
    text = readme.read_text()
    new = _replace_block(text, README_START, README_END, readme_block(metrics, info))
    if bench is not None and BENCH_START in new:
        new = _replace_block(new, BENCH_START, BENCH_END, bench_block(bench))
    if new != text:
        readme.write_text(new)
    return new != text


def variant_table(metrics: dict[str, dict]) -> pd.DataFrame:
    """Results of the harder variants (noisy, multi-digit), each on its own test set (a result's
    own ``variant`` where a chapter tests in more than one setting, else its chapter's)."""
    rows = [
        {
            "variant": r.get("variant") or payload["variant"],
            "model": r["model"],
            "accuracy": r["accuracy"],
            "CI low": r["ci95"][0],
            "CI high": r["ci95"][1],
            "macro F1": r["macro_f1"],
            "fit s": r["fit_seconds"],
        }
        for payload in metrics.values()
        if payload.get("variant")
        for r in payload["results"]
    ]
    return pd.DataFrame(rows)
