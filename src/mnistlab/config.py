"""Paths, profiles and seeds shared by the package, the notebooks and the CLI.

Environment variables (all optional):

- ``MNISTLAB_ROOT``: the repository root (found automatically from the package).
- ``MNISTLAB_OUTPUT``: where ``figures/`` and ``reports/`` are written (default: the root for the
  committed study, ``<root>/runs/<dataset>-<profile>/`` for any other run: :func:`run_output_dir`).
- ``MNISTLAB_DATA``: the download cache (default: ``<root>/data/raw``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_SEED = 42

#: The datasets a whole run of the course accepts (``--dataset``, ``DATASET=``). ``load_dataset``
#: also knows ``triplet-mnist``, chapter 9's 64×64 three-digit canvases, which is no dataset for
#: every chapter.
COURSE_DATASETS = ("auto", "mnist", "mnist-sample", "fashion", "noisy-mnist")


def repo_root() -> Path:
    """The repository root: ``$MNISTLAB_ROOT``, the checkout holding this package, or the cwd."""
    if os.environ.get("MNISTLAB_ROOT"):
        return Path(os.environ["MNISTLAB_ROOT"]).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir():
        return here
    return Path.cwd()


def output_dir() -> Path:
    """Directory that receives ``figures/`` and ``reports/`` for this run."""
    return Path(os.environ.get("MNISTLAB_OUTPUT") or repo_root()).resolve()


#: The committed study in ``reports/`` when its ``run.json`` cannot be read: MNIST in the full profile.
STUDY = ("mnist", "full")


def study() -> tuple[str, str]:
    """``(dataset, profile)`` of the committed study: HEAD's ``reports/run.json`` (so a run that
    already rewrote the working copy cannot redefine it), else the working copy's, else :data:`STUDY`."""
    import json
    import subprocess

    root = repo_root()
    text = None
    try:
        text = subprocess.run(
            ["git", "show", "HEAD:./reports/run.json"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pass
    for candidate in (text, None):
        try:
            info = json.loads(candidate if candidate else (root / "reports" / "run.json").read_text())
            return str(info["dataset"]), str(info["profile"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return STUDY


def run_output_dir(dataset: str, profile: str) -> Path:
    """Where a run of ``dataset`` in ``profile`` writes ``figures/`` and ``reports/``:
    ``$MNISTLAB_OUTPUT`` when set; the repository itself for the committed study (:func:`study`);
    else a folder of its own, ``<root>/runs/<dataset>-<profile>/`` (ignored by git), so a quick or
    smoke run never overwrites the study."""
    if os.environ.get("MNISTLAB_OUTPUT"):
        return output_dir()
    root = repo_root()
    if (dataset, profile) == study():
        return root
    return root / "runs" / f"{dataset}-{profile}"


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when inside it (``.`` for the root itself), else as is."""
    path = Path(path).resolve()
    try:
        return path.relative_to(repo_root()).as_posix() or "."
    except ValueError:
        return str(path)


def output_note(dataset: str, profile: str) -> str:
    """Where a run of ``dataset`` in ``profile`` writes, in words (printed by run, status and report)."""
    path = run_output_dir(dataset, profile)
    if os.environ.get("MNISTLAB_OUTPUT"):
        return f"{shown_path(path)}/ (from $MNISTLAB_OUTPUT)"
    if path == repo_root():
        return "the repository's reports/ and figures/ (the committed study)"
    return (
        f"{shown_path(path)}/ (this run's own folder, ignored by git; the committed study in reports/ is not touched)"
    )


class OutputError(RuntimeError):
    """The output folder cannot be written, or another run is using it; the message says what to do."""


def figures_dir() -> Path:
    path = output_dir() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def reports_dir() -> Path:
    path = output_dir() / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def metrics_dir() -> Path:
    path = reports_dir() / "metrics"
    path.mkdir(parents=True, exist_ok=True)
    return path


def metrics_output_dir() -> Path:
    """Where a chapter writes its metrics: the runner's staging folder while it executes a
    chapter (``$MNISTLAB_METRICS_STAGING``; moved into :func:`metrics_dir` only if the chapter
    succeeds), else :func:`metrics_dir`."""
    staging = os.environ.get("MNISTLAB_METRICS_STAGING")
    if not staging:
        return metrics_dir()
    Path(staging).mkdir(parents=True, exist_ok=True)
    return Path(staging)


def data_cache_dir() -> Path:
    """Download cache (raw data is immutable: files are only ever added, after verification)."""
    return Path(os.environ.get("MNISTLAB_DATA") or repo_root() / "data" / "raw")


def sample_dir() -> Path:
    """The committed sample data."""
    return repo_root() / "data" / "sample"


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets of a run. Profiles never change the code path, only how much work it does."""

    name: str
    max_train: int | None  # None: the whole training set
    max_test: int | None
    cv_folds: int
    epochs: int
    embedding_samples: int  # points in the 2-D embedding (t-SNE)
    grid: str  # "tiny", "small" or "full": size of hyper-parameter grids
    search_max_train: int  # training images used by grid searches and the slowest models
    cnn_search_max_train: int  # training images for the CNN grid search
    cnn_search_folds: int  # cross-validation folds of the CNN grid search
    svc_max_train: int | None = None  # training images of the plain RBF SVC; None: all (as published baselines)
    triplet_train: int | None = None  # chapter 9's training canvases (from training digits); None: one per digit
    triplet_epochs: int | None = None  # epochs of chapter 9's residual networks; None: ``epochs``

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        max_train=600,
        max_test=300,
        cv_folds=2,
        epochs=1,
        embedding_samples=300,
        grid="tiny",
        search_max_train=600,
        cnn_search_max_train=600,
        cnn_search_folds=2,
        svc_max_train=600,
        triplet_train=600,
        triplet_epochs=1,
    ),
    "quick": Profile(
        "quick",
        max_train=6000,
        max_test=2000,
        cv_folds=3,
        epochs=4,
        embedding_samples=1500,
        grid="small",
        search_max_train=3000,
        cnn_search_max_train=1500,
        cnn_search_folds=2,
        svc_max_train=3000,
        # 6,000 images for 4 epochs and 3,000 canvases for 3 epochs keep the course within ten
        # minutes on 2 CPU cores (chapters 5, 8 and 9: 110, 84 and 158 s, against 146, 127 and 248 s
        # with 8,000 images for 5 epochs and 4,000 canvases); the residual vote still beats the
        # plain CNN (58.9% against 54.7%). 3,000 canvases for 2 epochs fell to 40.5%, below it.
        triplet_train=3000,
        triplet_epochs=3,
    ),
    "full": Profile(
        "full",
        max_train=None,
        max_test=None,
        cv_folds=5,
        epochs=30,
        embedding_samples=5000,
        grid="full",
        search_max_train=10000,
        cnn_search_max_train=3000,
        cnn_search_folds=3,
        svc_max_train=None,
        # 200,000 canvases, 10 epochs: each of the five residual networks sees 1.6M canvases
        # (160,000 a pass), where the 10,000 canvases of the plain CNN were far too few.
        triplet_train=200_000,
        triplet_epochs=10,
    ),
}


#: Chapter 9's residual networks in ``full`` without a GPU: (training canvases, epochs). On 2 CPU
#: cores one trains on about 150 canvases/s, so the profile's 200,000 canvases for 10 epochs, five
#: networks, would take some 15 hours; these take well under one.
FULL_CPU_TRIPLETS = (30_000, 3)


def triplet_budget(profile, gpu: bool) -> tuple[int | None, int, str]:
    """Chapter 9's residual networks in ``profile``: ``(training canvases, epochs, why)``; the
    profile's ``triplet_train`` and ``triplet_epochs``, or :data:`FULL_CPU_TRIPLETS` in ``full``
    without a ``gpu``. ``why`` says which, in words."""
    prof = get_profile(profile)
    n, epochs = prof.triplet_train, prof.triplet_epochs or prof.epochs

    def amount(n, epochs):
        return f"{f'{n:,}' if n else 'one per training digit'} canvases for {epochs} epoch{'s' * (epochs != 1)}"

    if prof.name == "full" and not gpu:
        why = f"without a GPU the full profile trains them on {amount(*FULL_CPU_TRIPLETS)} (with one: {amount(n, epochs)})"
        return *FULL_CPU_TRIPLETS, why
    return n, epochs, f"the {prof.name} profile trains them on {amount(n, epochs)}"


RUNTIME_PACKAGES = ("numpy", "scikit-learn", "pandas", "matplotlib", "tensorflow", "keras")


def runtime_versions() -> str:
    """One line naming the Python and library versions this notebook runs with."""
    import platform
    from importlib import metadata

    found = []
    for name in RUNTIME_PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return f"Running with Python {platform.python_version()}, " + ", ".join(found) + "."


def bench_record(path: Path | None = None) -> dict:
    """The last ``make bench`` (reports/bench.json), or an empty dict."""
    import json

    path = path or repo_root() / "reports" / "bench.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def measured_seconds(notebook: str, path: Path | None = None) -> float | None:
    """The chapter's wall time in the last ``make bench`` (reports/bench.json), if recorded."""
    return bench_record(path).get("notebook_seconds", {}).get(f"{notebook}.ipynb")


class UnknownNameError(ValueError):
    """An unknown dataset or profile name; the message lists the valid ones."""


def check_name(kind: str, name: str, valid) -> str:
    """Return ``name`` if it is one of ``valid``, else raise one clear line listing them."""
    valid = list(valid)
    if name not in valid:
        raise UnknownNameError(f"unknown {kind} {name!r}; choose one of: {', '.join(valid)}")
    return name


def get_profile(name: str | Profile) -> Profile:
    """The :class:`Profile` called ``name`` (``smoke``, ``quick`` or ``full``)."""
    if isinstance(name, Profile):
        return name
    return PROFILES[check_name("profile", name, PROFILES)]
