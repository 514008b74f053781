"""Execute the chapters with papermill, through an execution cache.

A chapter is re-executed only when one of its inputs changed since its executed copy in
``reports/executed/``: the notebook's source, its parameters, the package's source
(the modules of ``src/mnistlab`` it imports, transitively) or the data (a checksum of the arrays). The inputs are stored in the
executed notebook's metadata, so the committed ``reports/executed/`` is the cache and a fresh
clone starts warm. The results chapter reruns whenever any other chapter did.

A chapter executes into ``reports/executed.partial/``; its executed notebook and its metrics
files replace the previous ones only when it succeeded. ``reports/run.json`` describes what
``reports/executed/`` holds; it is marked incomplete until every chapter is up to date, and
the report refuses to build from an incomplete run. A run of some chapters (``--only``) also
lists the other chapters that are up to date, and names the stale ones under ``left_out``.
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


def _chapters(only=None) -> list[Path]:
    """The chapters to run; an ``--only`` prefix that matches none of them is refused, naming those that exist."""
    paths = notebook_paths()
    if only:
        short = [prefix for prefix in only if len(prefix) < 2]
        if short:
            raise config.UnknownNameError(
                f"--only {', '.join(repr(s) for s in short)}: give chapters by their two-digit number, "
                f"{', '.join(p.name[:2] for p in paths)} (for example --only {paths[0].name[:2] if paths else '01'})"
            )
        unknown = [prefix for prefix in only if not any(p.name.startswith(prefix) for p in paths)]
        if unknown:
            raise config.UnknownNameError(
                f"no chapter starts with {', '.join(repr(u) for u in unknown)}; the chapters are "
                f"{', '.join(p.name[:2] for p in paths)} (for example --only {paths[0].name[:2] if paths else '01'})"
            )
        paths = notebook_paths(only)
    return paths


def _run_parameters(dataset, profile, seed, jobs, only=None):
    """Resolve ``auto`` once (every chapter gets the same data) and return the shared pieces."""
    from .data import load_dataset

    _check_names(dataset, profile)
    paths = _chapters(only)
    data = load_dataset(dataset, profile, seed)
    resolved = data.name if dataset == "auto" else dataset
    params = {"dataset": resolved, "profile": profile, "seed": seed, "n_jobs": jobs}
    return paths, data, params


def _check_names(dataset, profile) -> None:
    config.check_name("dataset", dataset, config.COURSE_DATASETS)
    config.get_profile(profile)


def status(
    dataset: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED, jobs: int = 2, force: bool = False
) -> list[ChapterState]:
    """Every chapter, up to date or stale (and why), for a run with these settings, in that run's
    output folder (:func:`config.run_output_dir`)."""
    _check_names(dataset, profile)
    with environment(MNISTLAB_OUTPUT=config.run_output_dir(dataset, profile)):
        paths, data, params = _run_parameters(dataset, profile, seed, jobs)
        return chapter_states(paths, params, data.checksum, config.output_dir() / "reports" / "executed", force)


LOCK_NAME = ".run.lock"


def _unwritable(folder: Path, err: OSError) -> config.OutputError:
    return config.OutputError(
        f"cannot write to {config.shown_path(folder)}/ ({err.strerror or err}): make it a writable folder, "
        f"or write this run elsewhere with MNISTLAB_OUTPUT=DIR"
    )


def _open_lock(path: Path):
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+")


@contextmanager
def run_lock():
    """Hold ``reports/.run.lock`` of the current output folder (``fcntl.flock``) for a run or a
    report; while another process holds it, fail at once with :class:`config.OutputError`."""
    out = config.output_dir()
    try:
        reports = out / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        handle = _open_lock(reports / LOCK_NAME)
    except OSError as err:
        raise _unwritable(out / "reports", err) from None
    try:
        import fcntl
    except ImportError:  # no flock (Windows): run unlocked
        fcntl = None
    with handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = handle.read().strip() or "pid unknown"
                raise config.OutputError(
                    f"another run ({holder}) is using {config.shown_path(out)}/ right now: wait for it to "
                    f"finish, or give this one its own folder with MNISTLAB_OUTPUT=DIR"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()


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
    the others, and write ``reports/run.json``, in the run's output folder
    (:func:`config.run_output_dir`: the repository for the committed study, else
    ``runs/<dataset>-<profile>/``), which it names at the start and at the end. The run holds that
    folder's lock (:func:`run_lock`): a second run there fails at once.

    Raises :class:`NotebookFailed` naming the notebook and cell when one fails; chapters that
    succeeded before it keep their new results.
    """
    import papermill as pm

    _check_names(dataset, profile)
    _chapters(only)  # an unknown --only prefix is refused before anything is written
    where = config.output_note(dataset, profile)
    with environment(MNISTLAB_OUTPUT=config.run_output_dir(dataset, profile)):
        print(f"== output folder: {where}", flush=True)
        with run_lock():
            info = _run(pm, dataset, profile, seed, jobs, only, progress, force)
        ran = sum(not c["reused"] for c in info["chapters"].values())
        print(
            f"== done: {ran} chapter(s) executed, {len(info['chapters']) - ran} reused; results in "
            f"{config.shown_path(config.reports_dir())}/ and {config.shown_path(config.figures_dir())}/",
            flush=True,
        )
        if info.get("left_out"):
            print(f"== not in the report: {left_out_text(info)}", flush=True)
    return info


def _run(pm, dataset, profile, seed, jobs, only, progress, force) -> dict:
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
    if only:  # a run of some chapters: the advice to finish it names them
        info["only"] = [p.name[:2] for p in paths]
    env = {
        "MNISTLAB_OUTPUT": config.output_dir(),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MNISTLAB_METRICS_STAGING": staging / "metrics",
    }
    write_json_atomic(reports / "run.json", info)  # incomplete from now on, even if the first chapter fails
    with environment(**env):
        for path, state in zip(paths, states):
            if not state.stale:
                record = state.record
                print(f"== {path.name}: up to date (executed {record['executed']}), reused", flush=True)
            else:
                print(f"== {path.name} ({data.name}, {profile}): {'; '.join(state.reasons)}", flush=True)
                record = _execute(pm, path, staging, params, data.checksum, commit, progress)
            info["seconds"][path.name] = record["seconds"]
            info["chapters"][path.name] = _chapter_entry(record, reused=not state.stale)
            write_json_atomic(reports / "run.json", info)  # always describes reports/executed/
    if only:
        _add_unselected(info, paths, params, data.checksum, executed)
    info["complete"] = True
    write_json_atomic(reports / "run.json", info)
    shutil.rmtree(staging, ignore_errors=True)
    return info


def _add_unselected(info: dict, selected, params: dict, data_checksum: str, executed: Path) -> None:
    """After a run of some chapters (``--only``): the other chapters that are up to date join
    ``info`` as reused, in course order, so the report holds every chapter it can; the stale or
    never executed ones are listed, with why, under ``left_out`` (the report names them)."""
    course = notebook_paths()
    chosen = {p.name for p in selected}
    others = [p for p in course if p.name not in chosen]
    chapters = dict(info["chapters"])
    info["left_out"] = {}
    for path, state in zip(others, chapter_states(others, params, data_checksum, executed)):
        if state.stale:
            info["left_out"][path.name] = "; ".join(state.reasons)
        else:
            chapters[path.name] = _chapter_entry(state.record, reused=True)
    info["notebooks"] = [p.name for p in course if p.name in chapters]
    info["chapters"] = {name: chapters[name] for name in info["notebooks"]}
    info["seconds"] = {name: chapters[name]["seconds"] for name in info["notebooks"]}


def only_setting(prefixes) -> str:
    """make's ONLY= for chapter ``prefixes``: ``ONLY=05``, or quoted when there are several."""
    joined = " ".join(prefixes)
    return f"ONLY='{joined}'" if " " in joined else f"ONLY={joined}"


def make_command(run: dict, target: str = "notebooks", only=()) -> str:
    """`make TARGET DATASET=… PROFILE=…` for ``run`` (its ``run.json``, or just its ``dataset``
    and ``profile``), with ONLY= when chapter prefixes ``only`` are given (none: every chapter)."""
    dataset, profile = run.get("requested_dataset") or run.get("dataset", "auto"), run.get("profile", "quick")
    return f"`make {target} DATASET={dataset} PROFILE={profile}" + (f" {only_setting(only)}`" if only else "`")


def left_out_text(info: dict) -> str:
    """The chapters a run of some chapters (``--only``) left out of its report, why, and the command that adds them."""
    left = info.get("left_out", {})
    named = "; ".join(f"{name.removesuffix('.ipynb')} ({why})" for name, why in left.items())
    adds = make_command(info, "report", [name[:2] for name in left])
    return f"{named}, not among this run's {only_setting(info.get('only', []))}; {adds} adds them"


def _chapter_entry(record: dict, reused: bool) -> dict:
    """What ``run.json`` says of one chapter, from its cache record."""
    return {k: record[k] for k in ("executed", "git_commit", "seconds")} | {"reused": reused}


def kernel_config():
    """nbclient configuration for the chapters' kernels: the kernel manager provisions CurveZMQ
    keys when the kernel declares support (ipykernel 7 does), so its sockets are encrypted and it
    does not warn "Kernel is running over TCP without encryption" in every chapter. Older
    jupyter_client or a libzmq without CURVE: nothing changes (older ipykernels do not warn)."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if "transport_encryption" in KernelManager.class_trait_names() and zmq.has("curve"):
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


def _execute(pm, path: Path, staging: Path, params: dict, data_checksum: str, commit: str, progress: bool) -> dict:
    target = staging / path.name
    metrics = staging / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir()
    # before running: what this execution saw (the results chapter: the metrics the others just wrote)
    inputs = chapter_inputs(path, params, data_checksum, config.reports_dir() / "metrics")
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(path),
            str(target),
            parameters=params,
            kernel_name="python3",
            progress_bar=progress,
            cwd=str(config.output_dir()),
            config=kernel_config(),
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
    # papermill records absolute paths: keep the notebook's place in the course, not this machine's folders
    paths = nb.metadata.get("papermill", {})
    paths.update(input_path=f"notebooks/{path.name}", output_path=f"reports/executed/{path.name}")
    nbformat.write(nb, str(target))
    _move_metrics(metrics)
    os.replace(target, config.reports_dir() / "executed" / path.name)
    return record
