"""Bring a GPU run home: unpack the tarball scripts/gpu/run.sh packed on the GPU machine
(``mnistlab-gpu.tar.gz``) into a checkout and record its times. ``scripts/gpu/unpack.sh`` runs this
with the checkout's .venv.

    bash scripts/gpu/unpack.sh TARBALL [--target DIR] [--name NAME] [--no-refresh]

1. The run's record goes to ``reports/NAME/`` (default ``<gpu>-<profile>``, e.g. ``h200-full``,
   like ``reports/h100-full/``): its executed chapters, metrics, ``run.json``, the bench's
   ``time_to_accuracy.json`` and the versions it ran with (``gpu-run.txt``; not the log, nor an
   unfinished chapter: they name the machine's folders). A second run of the same NAME adds its
   chapters there.
2. Its executed chapters, metrics and figures replace those in ``reports/executed/``,
   ``reports/metrics/`` and ``figures/`` of the run's output folder: the checkout itself when the
   run's dataset and profile are the committed study's (``reports/run.json``), else
   ``runs/<dataset>-<profile>/``, as ``python -m mnistlab run`` would have written them. The cache
   key does not depend on the machine or the backend, so these chapters are up to date here.
3. ``python -m mnistlab bench --record reports/NAME`` adds the chapters' times, and the bench's
   time to accuracy (as ``gpu``), to ``reports/bench.json``.
4. Unless ``--no-refresh``: when every chapter of that folder is then up to date, its
   ``reports/run.json`` is rewritten by ``python -m mnistlab run`` (which executes nothing then),
   after re-executing the results chapter here (seconds) when the GPU run changed other chapters
   but not it. When some chapter is stale, it only says which.

``--target DIR``: a checkout-shaped folder other than this one (``reports/``, ``figures/``), e.g. a
scratch copy to try this on; default: this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mnistlab(args: list[str], output: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m mnistlab ARGS`` of this checkout, writing into ``output`` (MNISTLAB_OUTPUT)."""
    env = {**os.environ, "MNISTLAB_OUTPUT": str(output)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    print(f"$ MNISTLAB_OUTPUT={output} python -m mnistlab {' '.join(args)}", flush=True)
    return subprocess.run([sys.executable, "-m", "mnistlab", *args], env=env, cwd=ROOT, check=check)


def _extract(tarball: Path, into: Path) -> None:
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                sys.exit(f"unpack: refusing {member.name!r} in {tarball}")
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)


def _gpu_name(run_dir: Path) -> str:
    """'h200' from the nvidia-smi line run.sh wrote (``NVIDIA H200, 143771 MiB, ...``), else 'gpu'."""
    try:
        text = (run_dir / "reports" / "gpu-run.txt").read_text()
    except OSError:
        return "gpu"
    match = re.search(r"NVIDIA ([A-Z]+\d+)", text)
    return match.group(1).lower() if match else "gpu"


def _settings(run_dir: Path) -> dict:
    """dataset, profile, seed, chapters of the run (run.json, else gpu-run.txt for a bench alone)."""
    try:
        return json.loads((run_dir / "reports" / "run.json").read_text())
    except (OSError, ValueError):
        pass
    first = (run_dir / "reports" / "gpu-run.txt").read_text().splitlines()[0]
    fields = dict(part.split("=", 1) for part in first.split() if "=" in part)
    return {"dataset": fields.get("dataset", "mnist"), "profile": fields.get("profile", "full"), "seed": 42}


def _copy(files, into: Path) -> list[str]:
    into.mkdir(parents=True, exist_ok=True)
    names = []
    for path in files:
        shutil.copy2(path, into / path.name)
        names.append(path.name)
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gpu/unpack.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("tarball", type=Path, help="mnistlab-gpu.tar.gz, as the device run tool brought it back")
    parser.add_argument("--target", type=Path, default=ROOT, help="the checkout to unpack into (default: this one)")
    parser.add_argument("--name", help="the record's folder under reports/ (default: <gpu>-<profile>, e.g. h200-full)")
    parser.add_argument("--no-refresh", action="store_true", help="leave run.json and the results chapter alone")
    args = parser.parse_args(argv)
    target = args.target.resolve()
    if not (target / "reports").is_dir():
        sys.exit(f"unpack: {target} has no reports/ folder: give --target a checkout (or a copy of one)")

    with tempfile.TemporaryDirectory(prefix="mnistlab-gpu-") as tmp:
        run_dir = Path(tmp)
        _extract(args.tarball, run_dir)
        reports = run_dir / "reports"
        info = _settings(run_dir)
        dataset, profile = info["dataset"], info["profile"]
        try:
            study = json.loads((target / "reports" / "run.json").read_text())
            is_study = (study["dataset"], study["profile"]) == (dataset, profile)
        except (OSError, ValueError, KeyError):
            study, is_study = {}, False
        dest = target if is_study else target / "runs" / f"{dataset}-{profile}"
        name = args.name or f"{_gpu_name(run_dir)}-{profile}"
        record = dest / "reports" / name
        executed = sorted((reports / "executed").glob("*.ipynb"))
        metrics = sorted((reports / "metrics").glob("*")) if (reports / "metrics").is_dir() else []
        finished = {p.name[:2] for p in executed}  # an unfinished chapter's figures are left behind
        figures = sorted(p for p in (run_dir / "figures").glob("*") if p.name[:2] in finished)
        partial = sorted((reports / "executed.partial").glob("*.ipynb"))
        where = "the committed study" if is_study else "its own folder"
        print(
            f"GPU run of {dataset}/{profile}: {len(executed)} executed chapter(s), {len(metrics)} metrics file(s), "
            f"{len(figures)} figure(s) -> {dest} ({where}); record in {record}"
        )
        if partial:
            print(
                f"  failed or interrupted there: {', '.join(p.name for p in partial)} (its output, and the log, "
                f"are in {args.tarball}: reports/executed.partial/, reports/gpu-run.log)"
            )

        # 1. the record of this run (not the log or unfinished chapters: they name the machine's folders)
        _copy(executed, record / "executed")
        _copy(metrics, record / "metrics")
        for extra in ("run.json", "time_to_accuracy.json", "gpu-run.txt"):
            if extra == "run.json" and not executed and (record / extra).exists():
                continue  # a run that finished no chapter keeps the record's settings as they were
            if (reports / extra).exists():
                shutil.copy2(reports / extra, record / extra)

        # 2. into the run's output folder
        for name_ in _copy(executed, dest / "reports" / "executed"):
            print(f"  reports/executed/{name_}")
        _copy(metrics, dest / "reports" / "metrics")
        _copy(figures, dest / "figures")
        print(f"  {len(metrics)} file(s) into reports/metrics/, {len(figures)} into figures/")

    # 3. the chapters' times and the time to accuracy, in the target's reports/bench.json
    if executed or (record / "time_to_accuracy.json").exists():
        _mnistlab(["bench", "--record", str(record)], target)

    # 4. run.json (and the results chapter) of the output folder
    if args.no_refresh or not executed:
        return 0
    settings = ["--dataset", dataset, "--profile", profile, "--seed", str(info.get("seed", 42))]
    settings += ["--jobs", str(study.get("jobs", 2) if is_study else 2)]
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["MNISTLAB_OUTPUT"] = str(dest)
    from mnistlab.cache import is_results_chapter
    from mnistlab.runner import status

    states = status(dataset, profile, info.get("seed", 42))
    stale = [s for s in states if s.stale and not is_results_chapter(Path(s.name))]
    results = [s.name for s in states if is_results_chapter(Path(s.name))]
    brought = {p.name for p in executed}
    if stale:
        print(
            f"not refreshing {dest}/reports/run.json: {len(stale)} chapter(s) there are stale (a GPU run of other code?):"
        )
        for state in stale:
            print(f"  {state.line()}")
        print(f"(run them on the GPU, or here with MNISTLAB_OUTPUT={dest} python -m mnistlab run {' '.join(settings)})")
        return 0
    if results and results[0] not in brought and brought - set(results):
        print(f"the GPU run changed chapters but not {results[0]}: re-executing it here")
        _mnistlab(["run", *settings, "--only", results[0][:2], "--force"], dest)
    _mnistlab(["run", *settings], dest)
    print(f"done: {dest}/reports/run.json describes every chapter; next: python -m mnistlab readme, make report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
