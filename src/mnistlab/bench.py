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


# --------------------------------------------------------------------------- time to accuracy

#: Recipes compared by :func:`time_to_accuracy`: (architecture, epochs, batch size, schedule, augment).
#: The first is the reference every other is measured against: the Keras example "Simple MNIST
#: convnet" (two convolutions, Adam at 1e-3, batch 128, 15 epochs).
RECIPES = {
    "keras example (simple_cnn, Adam, 15 epochs)": ("simple_cnn", 15, 128, "constant", False),
    "bn_cnn, one-cycle, 2 epochs": ("bn_cnn", 2, 128, "one-cycle", False),
    "bn_cnn, one-cycle + augmentation, 10 epochs": ("bn_cnn", 10, 128, "one-cycle", True),
    "deep_cnn, one-cycle + augmentation, 10 epochs": ("deep_cnn", 10, 128, "one-cycle", True),
}
THRESHOLDS = (0.990, 0.993, 0.995, 0.996)


def test_accuracy_curve(networks, x_test, y_test):
    """A callback recording, after every epoch, the training seconds so far (evaluation excluded)
    and the test accuracy (DAWNBench-style: the test set is evaluated after each epoch)."""
    import keras

    class Curve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.points, self.seconds = [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds += time.perf_counter() - self._start
            accuracy = float((networks.predict_proba(self.model, x_test).argmax(1) == y_test).mean())
            self.points.append((round(self.seconds, 2), accuracy))
            print(f"  epoch {epoch + 1}: {self.seconds:7.1f} s of training, test accuracy {accuracy:.4f}", flush=True)

    return Curve()


def time_to_accuracy(recipes=None, dataset: str = "mnist", seed: int = config.DEFAULT_SEED, max_train=None) -> dict:
    """Train each recipe on 90% of the training set (the chapters' fit part) and record the training
    time at which test accuracy first reaches each of :data:`THRESHOLDS`, the final accuracy and
    images/s; with the ratio of each time to the first recipe's (the Keras example)."""
    from . import networks
    from .data import load_dataset

    ds = load_dataset(dataset, "full", seed)
    x, y = networks.images(ds.x_train), ds.y_train
    if max_train:
        x, y = x[:max_train], y[:max_train]
    x_fit, _, y_fit, _ = networks.validation_split(x, y, seed=seed)
    x_test = networks.images(ds.x_test)
    device = networks.setup_device(seed)
    rows = []
    for name, (architecture, epochs, batch_size, schedule, augment) in (recipes or RECIPES).items():
        print(f"{name}: {len(x_fit):,} training images, {len(x_test):,} test images", flush=True)
        model = networks.build(architecture, jit_compile=device["jit_compile"], seed=seed)
        curve = test_accuracy_curve(networks, x_test, ds.y_test)
        networks.fit(model, x_fit, y_fit, None, epochs, batch_size, seed, schedule, augment, extra_callbacks=[curve])
        reached = {f"{t:.1%}": next((s for s, a in curve.points if a >= t), None) for t in THRESHOLDS}
        rows.append(
            {
                "recipe": name,
                "architecture": architecture,
                "epochs": epochs,
                "batch_size": batch_size,
                "schedule": schedule,
                "augmentation": augment,
                "parameters": model.count_params(),
                "multiply_adds": networks.multiply_adds(model),
                "curve": curve.points,
                "seconds_to": reached,
                "final_accuracy": curve.points[-1][1],
                "images_per_s": round(len(x_fit) * epochs / curve.seconds, 1),
            }
        )
    reference = rows[0]["seconds_to"]
    for row in rows:
        row["ratio_to_reference"] = {
            t: (round(s / reference[t], 3) if s and reference.get(t) else None) for t, s in row["seconds_to"].items()
        }
    return {
        "dataset": ds.name,
        "source": ds.source,
        "n_fit": len(x_fit),
        "n_test": len(x_test),
        "device": device["device"],
        "backend": device["backend"],
        "evaluation": "test accuracy after every epoch (DAWNBench-style); times are training only",
        "recipes": rows,
    }
