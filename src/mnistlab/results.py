"""The results chapter and the executive summary: everything is read from ``reports/metrics``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import config


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


def leaderboard(metrics: dict[str, dict], task: str = "multiclass") -> pd.DataFrame:
    """One row per model of ``task`` across all chapters, most accurate first."""
    rows = []
    for notebook, payload in metrics.items():
        if payload.get("variant"):  # other test images (noisy, multi-digit): see variant_table
            continue
        for r in payload["results"]:
            if r.get("task", "multiclass") != task:
                continue
            rows.append(
                {
                    "model": r["model"],
                    "chapter": notebook[:2],
                    "accuracy": r["accuracy"],
                    "CI low": r["ci95"][0],
                    "CI high": r["ci95"][1],
                    "macro F1": r["macro_f1"],
                    "fit s": r["fit_seconds"],
                    "predict s / 1,000": 1000 * r["predict_seconds"] / max(1, r["n_test"]),
                    "parameters": r.get("n_params"),
                    "n train": r["n_train"],
                    "n test": r["n_test"],
                }
            )
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


def significance_table(y_true, predictions: dict, order: list[str], top: int = 6) -> pd.DataFrame:
    """McNemar's test between the first model of ``order`` and each of the next ones."""
    best, rows = order[0], []
    for other in order[1:top]:
        result = mcnemar(y_true, predictions[best], predictions[other])
        rows.append(
            {
                "compared with": other,
                f"only {best} right": result["only first right"],
                "only the other right": result["only second right"],
                "p-value": result["p-value"],
                "significant at 5%": "yes" if result["p-value"] < 0.05 else "no",
            }
        )
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


def executive_summary(metrics: dict[str, dict], info: dict) -> str:
    """Markdown for the top of the report, every number taken from the metrics files."""
    run = check_consistent(metrics)
    board = leaderboard(metrics)
    if board.empty:
        return "No classifier results were recorded in this run.\n"
    best = board.iloc[0]
    classical = board[board["chapter"].isin(["02", "03", "04"])]
    lines = [
        f"- **Data:** {info.get('source', run['dataset'])}.",
        f"- **Profile:** `{run['profile']}` (seed {run['seed']}); {int(best['n test']):,} test images.",
        f"- **Best model:** {best['model']}, test accuracy **{best['accuracy']:.2%}** "
        f"(95% CI {best['CI low']:.2%} to {best['CI high']:.2%}), macro F1 {best['macro F1']:.3f}.",
    ]
    if not classical.empty:
        top = classical.iloc[0]
        lines.append(
            f"- **Best classical baseline:** {top['model']}, {top['accuracy']:.2%} "
            f"(95% CI {top['CI low']:.2%} to {top['CI high']:.2%})."
        )
    findings = []
    if not classical.empty:
        top = classical.iloc[0]
        error_cut = 1 - (1 - best["accuracy"]) / max(1e-9, 1 - top["accuracy"])
        findings.append(
            f"The best model makes {error_cut:.0%} fewer test errors than the best classical "
            f"baseline ({round((1 - best['accuracy']) * best['n test'])} against "
            f"{round((1 - top['accuracy']) * top['n test'])})."
        )
    overlapping = board[(board["CI high"] >= best["CI low"]) & (board.index > 0)]
    findings.append(
        f"{len(overlapping)} other model(s) have a 95% interval that overlaps the best one's: "
        f"on {int(best['n test']):,} test images these differences are within noise."
    )
    fastest = board.loc[board["fit s"].idxmin()]
    findings.append(
        f"The cheapest model to train, {fastest['model']} ({fastest['fit s']:.1f} s), "
        f"reaches {fastest['accuracy']:.2%}; the best took {best['fit s']:.0f} s."
    )
    worst = board.iloc[-1]
    findings.append(
        f"Accuracies span {worst['accuracy']:.2%} ({worst['model']}) to {best['accuracy']:.2%} "
        f"across {len(board)} models."
    )
    lines += ["", "**Findings.** " + " ".join(findings), ""]
    return "\n".join(lines)


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
        "| model | chapter | test accuracy | 95% CI | macro F1 | fit s |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in board.iterrows():
        lines.append(
            f"| {r['model']} | {r['chapter']} | {r['accuracy']:.2%} | {r['CI low']:.2%}–{r['CI high']:.2%} "
            f"| {r['macro F1']:.3f} | {r['fit s']:.0f} |"
        )
    lines.append(README_END)
    return "\n".join(lines)


def update_readme(readme: Path, metrics: dict[str, dict], info: dict) -> bool:
    """Replace the results block of ``readme``; True if it changed."""
    text = readme.read_text()
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    new = text[:start] + readme_block(metrics, info) + text[end:]
    if new != text:
        readme.write_text(new)
    return new != text


def variant_table(metrics: dict[str, dict]) -> pd.DataFrame:
    """Results of the harder variants (noisy, multi-digit), each on its own test set."""
    rows = [
        {
            "variant": payload["variant"],
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
