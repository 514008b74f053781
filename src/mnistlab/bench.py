"""``make bench``: training throughput per architecture (our setup against a plain
``model.fit`` with default settings, same run), and the wall time of each notebook.
Writes ``reports/bench.json``; nothing here is asserted by tests, it is measured."""

from __future__ import annotations

import tempfile
import time

from . import config
from .evaluation import write_json_atomic
from .results import load_metrics
from .runner import environment, run_notebooks


def measure_throughput(architectures=None, n_images: int = 4000, seed: int = config.DEFAULT_SEED) -> list[dict]:
    """Images per second for one epoch (after a warm-up epoch) of each architecture, two ways:
    our setup (``setup_device``: batch size, XLA and mixed precision on a GPU) and plain
    ``model.fit(x, y)`` with Keras' defaults (batch size 32, float32)."""
    import keras

    from . import networks
    from .data import load_dataset

    ds = load_dataset("mnist-sample", "full", seed)
    x, y = networks.images(ds.x_train[:n_images]), ds.y_train[:n_images]
    rows = []
    for architecture in architectures or networks.ARCHITECTURES:
        row = {"architecture": architecture}
        for setup_name in ("ours", "plain"):
            if setup_name == "ours":
                device = networks.setup_device(seed)
                model = networks.build(architecture, jit_compile=device["jit_compile"])
                fit_kwargs = {"batch_size": device["batch_size"]}
                row["device"] = device["device"]
            else:
                keras.mixed_precision.set_global_policy("float32")
                keras.utils.set_random_seed(seed)
                model = networks.BUILDERS[architecture]()
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                fit_kwargs = {}
            model.fit(x[:512], y[:512], epochs=1, verbose=0, **fit_kwargs)  # warm-up: tracing, compilation
            start = time.perf_counter()
            model.fit(x, y, epochs=1, verbose=0, **fit_kwargs)
            row[f"{setup_name} images/s"] = round(len(x) / (time.perf_counter() - start), 1)
        row["ratio"] = round(row["ours images/s"] / row["plain images/s"], 2)
        print(
            f"{architecture:<12} ours {row['ours images/s']:>8.0f} img/s   plain {row['plain images/s']:>8.0f} "
            f"img/s   ratio {row['ratio']:.2f}",
            flush=True,
        )
        rows.append(row)
    return rows


def best_accuracies(metrics: dict[str, dict]) -> dict[str, dict]:
    """The most accurate model of each chapter: ten-class (or variant) results first, else any task."""
    best = {}
    for notebook, payload in metrics.items():
        found = payload.get("results", [])
        rows = [r for r in found if r.get("task", "multiclass") == "multiclass"] or found
        if rows:
            top = max(rows, key=lambda r: r["accuracy"])
            best[notebook] = {
                "model": top["model"],
                "accuracy": top["accuracy"],
                "ci95": top["ci95"],
                "variant": payload.get("variant"),
            }
    return best


def run_bench(
    dataset: str = "auto",
    profile: str = "quick",
    seed: int = config.DEFAULT_SEED,
    jobs: int = 2,
    only=None,
    architectures=None,
) -> dict:
    """Measure throughput, then execute every chapter (or those in ``only``) once and record
    its wall time. The chapters run in a scratch output folder, so benchmarking never replaces
    the report, its figures or its metrics; only ``reports/bench.json`` is written."""
    print("Training throughput (one epoch on 4,000 images after a warm-up):")
    throughput = measure_throughput(architectures, seed=seed)
    reports = config.reports_dir()
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-") as scratch, environment(MNISTLAB_OUTPUT=scratch):
        info = run_notebooks(dataset, profile, seed, jobs, only=only, progress=False, force=True)
        best = best_accuracies(load_metrics(config.metrics_dir()))
    result = {
        "dataset": info["dataset"],
        "profile": profile,
        "date": info["date"],
        "git_commit": info["git_commit"],
        "versions": info["versions"],
        "throughput": throughput,
        "notebook_seconds": info["seconds"],
        "total_seconds": round(sum(info["seconds"].values()), 2),
        "best_accuracy": best,
    }
    path = write_json_atomic(reports / "bench.json", result)
    width = max(len(name) for name in info["seconds"])
    print(f"\n{'notebook':<{width}}  seconds")
    for name, seconds in info["seconds"].items():
        print(f"{name:<{width}}  {seconds:7.1f}")
    print(f"{'total':<{width}}  {result['total_seconds']:7.1f}\n")
    for notebook, row in best.items():
        print(f"{notebook:<{width}}  best {row['accuracy']:.2%}  {row['model']}")
    print(f"wrote {path}")
    return result
