"""Runs ON the GPU machine beside a lane: how far longer schedules take the seeds chapter's
networks towards issue 24's floors (a single network's mean over seeds >= 99.65%, an ensemble
>= 99.80% on the MNIST test set). Each recipe trains ``--seeds`` networks together (the JAX loop)
on five sixths of the training images; the rows give the validation accuracy (what a choice may
use) and the test accuracy (reported, never used to choose), per seed and averaged. A row is
written to ``--out`` as soon as it is measured, and no recipe starts after ``--budget`` seconds.

    PYTHONPATH=/tmp/site:src KERAS_BACKEND=jax python3 scripts/gpu/explore_recipes.py --out $OUT/explore.json
    (here, to test it: --smoke trains two networks for one epoch on 2,000 images)

With ``--throughput`` it times instead what 100 seeds cost: 100 networks trained together on all
60,000 images for ``THROUGHPUT`` epochs at each batch size (images per second after compiling,
and the seconds 100 seeds of the longer recipes would take at that rate).
"""

import argparse
import json
import time

import numpy as np

from mnistlab import networks, seeds, training
from mnistlab.data import load_dataset

#: (architecture, augment, epochs), in the order they are tried: the chapter's chosen recipe of
#: 12 epochs for comparison, then longer schedules and the published strongest single network.
RECIPES = [("bn_cnn", True, 12), ("bn_cnn", True, 30), ("deep_cnn", True, 30), ("bn_cnn", True, 45)]
#: (architecture, epochs, batch size per network) timed by --throughput, 100 networks at once.
THROUGHPUT = [("bn_cnn", 2, 128), ("bn_cnn", 2, 512), ("deep_cnn", 1, 128), ("deep_cnn", 1, 512)]


def _write(rows: list[dict], out: str) -> None:
    """All rows so far to ``out`` (a later recipe may not finish), and the newest one to stdout."""
    with open(out, "w") as f:
        json.dump(rows, f, indent=1)
    print(json.dumps(rows[-1]), flush=True)


def throughput(x, y, n: int, jit_compile: bool, budget: float, start: float, out: str, smoke: bool) -> None:
    """Time ``n`` networks trained together, per :data:`THROUGHPUT` row; write the rows to ``out``."""
    rows = []
    for arch, epochs, batch in THROUGHPUT[:2] if smoke else THROUGHPUT:
        if time.perf_counter() - start > budget:
            break
        seeds_ = [42 + i for i in range(n)]
        models = [networks.build(arch, jit_compile=jit_compile, seed=s) for s in seeds_]
        histories = training.train_together(
            models, x, y, [(np.arange(len(y)), None)] * n, epochs, batch, seeds_, "one-cycle", True
        )
        seconds = histories[0].history["seconds"][-1]
        rate = n * epochs * len(y) / seconds
        rows.append(
            {
                "architecture": arch,
                "networks": n,
                "epochs": epochs,
                "batch_size": batch,
                "compile_seconds": round(histories[0].compile_seconds, 1),
                "train_seconds": round(seconds, 1),
                "images_per_second": round(rate),
                "seconds_for_100_seeds": {e: round(100 * e * len(y) / rate) for e in (12, 30, 45)},
                "last_training_accuracy": float(np.mean([h.history["accuracy"][-1] for h in histories])),
            }
        )
        _write(rows, out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--budget", type=float, default=420.0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--throughput", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    ds = load_dataset("mnist", "full", 42)
    device = networks.setup_device(42)
    x, y = networks.images(ds.x_train), ds.y_train
    x_test, y_test = networks.images(ds.x_test), ds.y_test
    recipes, n = RECIPES, args.seeds
    if args.throughput:
        if args.smoke:
            x, y = x[:1000], y[:1000]
        return throughput(
            x, y, 3 if args.smoke else 100, device["jit_compile"], args.budget, start, args.out, args.smoke
        )
    if args.smoke:
        x, y, x_test, y_test, n = x[:2000], y[:2000], x_test[:500], y_test[:500], 2
        recipes = [(arch, aug, 1) for arch, aug, _ in RECIPES[:3]]
    x_fit, x_val, y_fit, y_val = training.validation_split(x, y, seeds.VALIDATION_FRACTION, 42)
    rows = []
    for arch, augment, epochs in recipes:
        if time.perf_counter() - start > args.budget:
            break
        began = time.perf_counter()
        members = training.train_members(
            arch,
            x_fit,
            y_fit,
            [(np.arange(len(y_fit)), None)] * n,
            epochs,
            device["batch_size"],
            42,
            device["jit_compile"],
            "one-cycle",
            augment,
        )
        seconds = time.perf_counter() - began
        val = np.stack([networks.predict_proba(m, x_val) for m in members])
        test = np.stack([networks.predict_proba(m, x_test) for m in members])
        val_acc = (val.argmax(2) == y_val).mean(1)
        test_acc = (test.argmax(2) == y_test).mean(1)
        rows.append(
            {
                "architecture": arch,
                "augment": augment,
                "epochs": epochs,
                "seeds": n,
                "train_seconds": round(seconds, 1),
                "device": device["device"],
                "validation_mean": float(val_acc.mean()),
                "validation_ensemble": float((val.mean(0).argmax(1) == y_val).mean()),
                "test_mean": float(test_acc.mean()),
                "test_sd": float(test_acc.std(ddof=1)),
                "test_min": float(test_acc.min()),
                "test_max": float(test_acc.max()),
                "test_ensemble": float((test.mean(0).argmax(1) == y_test).mean()),
            }
        )
        _write(rows, args.out)


if __name__ == "__main__":
    main()
