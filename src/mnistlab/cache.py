"""The execution cache's key: what a chapter's results depend on, and whether its executed copy
is up to date.

A chapter's inputs are its notebook's source, its parameters (less those that only choose how
much of the machine it uses), the source of the package modules it imports (transitively) and a
checksum of the data. They are stored in the executed notebook's metadata (``mnistlab.cache``),
so ``reports/executed/`` is the cache.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

INPUTS = ("notebook", "parameters", "package", "data")


def is_results_chapter(path: Path) -> bool:
    """The results chapter only reads the others' metrics: it reruns whenever any of them did."""
    return path.stem.endswith("_results")


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


_CHAPTER_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+mnistlab(?:\.(\w+))?[ \t]+import[ \t]+(\([^)]*\)|[\w \t,]+)|import[ \t]+mnistlab\.(\w+))",
    re.M,
)
_PACKAGE_IMPORT = re.compile(r"^[ \t]*from[ \t]+\.(\w*)[ \t]+import[ \t]+(\([^)]*\)|[\w \t,]+)", re.M)


def _package_dir() -> Path:
    return Path(__file__).parent


def modules_used(path: Path) -> list[str]:
    """The package modules a chapter runs: those its code cells import, and theirs, transitively."""
    package = _package_dir()
    known = {p.stem for p in package.glob("*.py")}
    code = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code")

    def named(module, names):
        found = {module} if module else set()
        names = re.sub(r"#[^\n]*", "", names).strip("()")
        return found | {n.strip() for n in names.split(",")} & known

    todo = set()
    for module, names, plain in _CHAPTER_IMPORT.findall(code):
        todo |= {plain} if plain else named(module, names)
    seen = {"__init__"}
    while todo:
        module = todo.pop()
        if module in seen or module not in known:
            continue
        seen.add(module)
        for sub, names in _PACKAGE_IMPORT.findall((package / f"{module}.py").read_text()):
            todo |= named(sub, names)
    return sorted(seen)


def package_checksum(modules) -> str:
    """sha256 over the source of the given package modules (names and contents)."""
    parts = []
    for module in sorted(modules):
        parts += [module.encode(), (_package_dir() / f"{module}.py").read_bytes()]
    return _sha256(*parts)


#: Parameters that choose how much of the machine a chapter uses, not what it computes: a chapter
#: executed with 16 jobs on a GPU machine stays up to date on a laptop that runs with 2.
RESOURCE_PARAMETERS = ("n_jobs",)


def chapter_inputs(path: Path, params: dict, data_checksum: str) -> dict:
    """What a chapter's results depend on, each as a checksum (or the parameters themselves)."""
    return {
        "notebook": _sha256(path.read_bytes()),
        "parameters": {k: v for k, v in sorted(params.items()) if k not in RESOURCE_PARAMETERS},
        "package": package_checksum(modules_used(path)),
        "data": data_checksum,
    }


def cache_record(path: Path) -> dict | None:
    """The cache record kept in an executed notebook's metadata, or None."""
    if not path.exists():
        return None
    try:
        return nbformat.read(str(path), as_version=4).metadata.get("mnistlab", {}).get("cache")
    except (OSError, ValueError):
        return None


@dataclass
class ChapterState:
    name: str
    stale: bool
    reasons: list[str]
    record: dict | None  # the stored record when up to date

    def line(self) -> str:
        return f"{self.name:<32} {'stale: ' + '; '.join(self.reasons) if self.stale else 'up to date'}"


def chapter_states(paths, params: dict, data_checksum: str, executed: Path, force: bool = False) -> list[ChapterState]:
    """Which chapters must run, and why (the results chapter whenever another one must)."""
    states = []
    for path in paths:
        record = cache_record(executed / path.name)
        inputs = chapter_inputs(path, params, data_checksum)
        if force:
            reasons = ["forced (FORCE=1)"]
        elif record is None:
            reasons = ["never executed"]
        else:
            reasons = [f"{key} changed" for key in INPUTS if record.get("inputs", {}).get(key) != inputs[key]]
        states.append(ChapterState(path.name, bool(reasons), reasons, None if reasons else record))
    others = [s for s, p in zip(states, paths) if not is_results_chapter(p)]
    for state, path in zip(states, paths):
        if is_results_chapter(path) and not state.stale and any(s.stale for s in others):
            state.stale, state.reasons, state.record = True, ["another chapter reruns"], None
    return states
