"""Execute the chapters with papermill, through an execution cache.

A chapter is re-executed only when one of its inputs changed since its executed copy in
``reports/executed/``: the notebook's source, its parameters, the package's source
(the modules of ``src/mnistlab`` it imports, transitively) or the data (a checksum of the arrays). The inputs are stored in the
executed notebook's metadata, so the committed ``reports/executed/`` is the cache and a fresh
clone starts warm. The results chapter reruns whenever any other chapter did.

A chapter executes into ``reports/executed.partial/``; its executed notebook and its metrics
files replace the previous ones only when it succeeded. ``reports/run.json`` describes what
``reports/executed/`` holds; it is marked incomplete until every chapter is up to date, and
the report refuses to build from an incomplete run.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import nbformat

from . import config
from .cache import (  # noqa: F401  (the cache key's names, kept importable from here)
    INPUTS,
    RESOURCE_PARAMETERS,
    ChapterState,
    cache_record,
    chapter_inputs,
    chapter_states,
    is_results_chapter,
    modules_used,
    package_checksum,
)
from .evaluation import write_json_atomic

REPORT_TITLE = "Handwritten-digit classification: a reproducible study"
VERSIONED = ("numpy", "scikit-learn", "tensorflow", "keras", "jax", "pandas", "matplotlib")


class NotebookFailed(RuntimeError):
    """A chapter raised an error; the message names the notebook and the cell."""


def notebook_paths(only=None) -> list[Path]:
    """The chapters in order (``NN_name.ipynb``), optionally only those whose name starts with ``only``."""
    paths = sorted(config.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in only)]
        if not paths:
            raise config.UnknownNameError(f"no notebook matches {only}")
    return paths


def git_commit() -> str:
    """Short commit of the checkout, with ``+changes`` when its tracked files differ from it
    (outside ``reports/`` and ``figures/``, which a run itself rewrites)."""
    root = config.repo_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)reports",
                ":(exclude)figures",
            ],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return commit + (" +changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict:
    found = {"python": platform.python_version(), "keras backend": os.environ.get("KERAS_BACKEND", "tensorflow")}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


@contextmanager
def environment(**values):
    """Set environment variables for the duration of a with-block (children see them too)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_parameters(dataset, profile, seed, jobs, only=None):
    """Resolve ``auto`` once (every chapter gets the same data) and return the shared pieces."""
    from .data import DATASETS, load_dataset

    config.check_name("dataset", dataset, [d for d in DATASETS if d != "triplet-mnist"])
    config.get_profile(profile)
    paths = notebook_paths(only)
    data = load_dataset(dataset, profile, seed)
    resolved = data.name if dataset == "auto" else dataset
    params = {"dataset": resolved, "profile": profile, "seed": seed, "n_jobs": jobs}
    return paths, data, params


def status(
    dataset: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED, jobs: int = 2, force: bool = False
) -> list[ChapterState]:
    """Every chapter, up to date or stale (and why), for a run with these settings."""
    paths, data, params = _run_parameters(dataset, profile, seed, jobs)
    return chapter_states(paths, params, data.checksum, config.reports_dir() / "executed", force)


# --------------------------------------------------------------------------- running


def _move_metrics(staging: Path) -> None:
    """A chapter succeeded: its metrics files replace the previous ones."""
    for path in staging.iterdir():
        os.replace(path, config.metrics_dir() / path.name)


def run_notebooks(
    dataset: str = "auto",
    profile: str = "quick",
    seed: int = config.DEFAULT_SEED,
    jobs: int = 2,
    only=None,
    progress: bool = True,
    force: bool = False,
) -> dict:
    """Execute the stale chapters in order with papermill (all of them with ``force``), reuse
    the others, and write ``reports/run.json``.

    Raises :class:`NotebookFailed` naming the notebook and cell when one fails; chapters that
    succeeded before it keep their new results.
    """
    import papermill as pm

    paths, data, params = _run_parameters(dataset, profile, seed, jobs, only)
    commit = git_commit()  # before the run rewrites anything
    reports = config.reports_dir()
    executed, staging = reports / "executed", reports / "executed.partial"
    executed.mkdir(exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    states = chapter_states(paths, params, data.checksum, executed, force)
    info = {
        "title": REPORT_TITLE,
        "dataset": data.name,
        "requested_dataset": dataset,
        "source": data.source,
        "data_checksum": data.checksum,
        "profile": profile,
        "seed": seed,
        "jobs": jobs,
        "notebooks": [p.name for p in paths],
        "complete": False,
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "git_commit": commit,
        "versions": versions(),
        "seconds": {},
        "chapters": {},
    }
    env = {
        "MNISTLAB_OUTPUT": config.output_dir(),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MNISTLAB_METRICS_STAGING": staging / "metrics",
    }
    with environment(**env):
        for path, state in zip(paths, states):
            if not state.stale:
                record = state.record
                print(f"== {path.name}: up to date (executed {record['executed']}), reused", flush=True)
            else:
                print(f"== {path.name} ({data.name}, {profile}): {'; '.join(state.reasons)}", flush=True)
                record = _execute(pm, path, staging, params, data.checksum, commit, progress)
            info["seconds"][path.name] = record["seconds"]
            info["chapters"][path.name] = {
                "executed": record["executed"],
                "git_commit": record["git_commit"],
                "seconds": record["seconds"],
                "reused": not state.stale,
            }
            write_json_atomic(reports / "run.json", info)  # always describes reports/executed/
    info["complete"] = True
    write_json_atomic(reports / "run.json", info)
    shutil.rmtree(staging, ignore_errors=True)
    return info


def _execute(pm, path: Path, staging: Path, params: dict, data_checksum: str, commit: str, progress: bool) -> dict:
    target = staging / path.name
    metrics = staging / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir()
    inputs = chapter_inputs(path, params, data_checksum)  # before running: what this execution saw
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(path),
            str(target),
            parameters=params,
            kernel_name="python3",
            progress_bar=progress,
            cwd=str(config.output_dir()),
        )
    except pm.PapermillExecutionError as err:
        raise NotebookFailed(
            f"notebook {path.name} failed in cell {err.cell_index} (execution count "
            f"{err.exec_count}): {err.ename}: {err.evalue}\nThe partly executed notebook is "
            f"kept at {target}; the previous report, this chapter's previous results and its "
            f"metrics were left in place."
        ) from None
    record = {
        "inputs": inputs,
        "seconds": round(time.perf_counter() - start, 2),
        "executed": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "git_commit": commit,
    }
    nb = nbformat.read(str(target), as_version=4)
    nb.metadata.setdefault("mnistlab", {})["cache"] = record
    nbformat.write(nb, str(target))
    _move_metrics(metrics)
    os.replace(target, config.reports_dir() / "executed" / path.name)
    return record
