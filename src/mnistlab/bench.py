"""``make bench``: wall time of each notebook for a profile, written to ``reports/bench.json``."""

from __future__ import annotations

from . import config
from .evaluation import write_json_atomic
from .report import run_notebooks


def run_bench(dataset: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED,
              jobs: int = 2) -> dict:
    """Execute every chapter once and record its wall time; print a table."""
    info = run_notebooks(dataset, profile, seed, jobs, progress=False)
    result = {"dataset": info["dataset"], "profile": profile, "date": info["date"],
              "git_commit": info["git_commit"], "versions": info["versions"],
              "notebook_seconds": info["seconds"], "total_seconds": round(sum(info["seconds"].values()), 2)}
    path = write_json_atomic(config.reports_dir() / "bench.json", result)
    width = max(len(name) for name in info["seconds"])
    print(f"{'notebook':<{width}}  seconds")
    for name, seconds in info["seconds"].items():
        print(f"{name:<{width}}  {seconds:7.1f}")
    print(f"{'total':<{width}}  {result['total_seconds']:7.1f}\nwrote {path}")
    return result
