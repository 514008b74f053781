"""The execution cache's key: what a chapter's results depend on, and whether its executed copy
is up to date.

A chapter's inputs are its notebook's cells (code and markdown; not its metadata or outputs),
its parameters (less those that only choose how much of the machine it uses), the code of the
package modules it imports (transitively; comments, docstrings and layout are not part of it) and
a checksum of the data; the results chapter's also the other chapters' metrics files, which it
reads. They are stored in the executed notebook's metadata (``mnistlab.cache``), so
``reports/executed/`` is the cache. The key is the same on Python 3.10 to 3.13.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

INPUTS = ("notebook", "parameters", "package", "data", "metrics")
#: What the runner stores in an executed notebook's metadata (``mnistlab.cache``).
RECORD_KEYS = ("inputs", "seconds", "executed", "git_commit")


def is_results_chapter(path: Path) -> bool:
    """The results chapter only reads the others' metrics: it reruns whenever any of them did, or
    whenever their metrics files changed (a study promoted from another machine)."""
    return path.stem.endswith("_results")


def metrics_checksum(folder: Path) -> str:
    """sha256 over the names and bytes of the metrics files in ``folder`` (none: the empty list's)."""
    files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    return _sha256(*(part for p in files for part in (p.name.encode(), b"\0", p.read_bytes(), b"\0")))


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


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """Drop every statement that is only a string: docstrings (the first statement of a module,
    class or function) and attribute docstrings. They do nothing when the code runs."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                body[:] = [
                    stmt
                    for stmt in body
                    if not (
                        isinstance(stmt, ast.Expr)
                        and isinstance(stmt.value, ast.Constant)
                        and isinstance(stmt.value.value, str)
                    )
                ]
    return tree


def _canonical(node) -> str:
    """A dump of an AST that is the same on every Python version from 3.10 on: like ``ast.dump``
    without positions, but fields that are None or empty lists are left out, whichever Python
    added them (``type_params`` came in 3.12) and whichever way ``ast.dump`` shows them (3.13
    hides them, earlier versions print them), and empty strings inside f-strings are left out
    (3.12's parser adds one to some format specs: ``f"{x:<{w}}"``)."""
    if isinstance(node, ast.AST):
        fields = []
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(node, ast.JoinedStr) and name == "values":
                value = [v for v in value if not (isinstance(v, ast.Constant) and v.value == "")]
            if value is None or (isinstance(value, list) and not value):
                continue
            fields.append(f"{name}={_canonical(value)}")
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return "[" + ", ".join(_canonical(item) for item in node) + "]"
    return repr(node)


def code_form(source: str) -> bytes:
    """What a module's behaviour depends on: its syntax tree without comments (parsing drops
    them), docstrings or positions. A module that does not parse is taken byte for byte."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source.encode()
    return _canonical(_strip_docstrings(tree)).encode()


def package_checksum(modules) -> str:
    """sha256 over the code of the given package modules (names and :func:`code_form`): editing a
    comment, a docstring or the layout of a module leaves every chapter up to date; editing its
    code makes the chapters that import it stale. The checksum is the same on Python 3.10 to 3.13."""
    parts = []
    for module in sorted(modules):
        source = (_package_dir() / f"{module}.py").read_text(encoding="utf-8")
        parts += [module.encode(), b"\0", code_form(source), b"\0"]
    return _sha256(*parts)


def notebook_checksum(path: Path) -> str:
    """sha256 over the notebook's cells: type, source (code with its comments, and markdown, which
    the report shows) and tags (``parameters`` tells papermill where to inject). Not the notebook's
    metadata, cell ids or outputs, which saving it in Jupyter or Colab may change."""
    cells = [
        [cell.cell_type, cell.source, sorted(cell.get("metadata", {}).get("tags", []))]
        for cell in nbformat.read(str(path), as_version=4).cells
    ]
    return _sha256(json.dumps(cells, ensure_ascii=False).encode())


_LISTING_CALL = re.compile(r"\blisting\.show\(((?:[^()]|\([^()]*\))*)\)")
_LISTED_NAME = re.compile(r"""["']mnistlab\.([\w.]+)["']|\b([a-z_]\w*)\.(\w+(?:\.\w+)*)""")


def _docstring_lines(node) -> set[int]:
    """Line numbers of the docstrings in a definition and the definitions inside it."""
    found = set()
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body:
            first = body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found |= set(range(first.lineno, first.end_lineno + 1))
    return found


def _listed_text(module: str, names: list[str], docstring: bool) -> str:
    """The text a listing of ``module.names`` shows (a definition with its comments; its
    docstrings unless asked for), or a marker when the package has no such definition."""
    label = ".".join([module, *names])
    path = _package_dir() / f"{module}.py"
    try:
        text = path.read_text(encoding="utf-8")
        body = ast.parse(text).body
    except (OSError, SyntaxError):
        return f"{label}: unreadable\n"
    node = None
    for name in names:
        node = next((n for n in body if getattr(n, "name", None) == name), None)
        if node is None:
            return f"{label}: absent\n"
        body = getattr(node, "body", [])
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    skip = set() if docstring else _docstring_lines(node)
    lines = text.splitlines(keepends=True)
    shown = [lines[i - 1] for i in range(first, node.end_lineno + 1) if i not in skip]
    return f"{label}:\n" + textwrap.dedent("".join(shown))


def listings_shown(path: Path) -> str:
    """What the chapter's ``listing.show(...)`` calls display of the package's source (code with
    its comments, which the report shows, unlike the rest of a module's comments); "" if none.
    The line number a listing's header cites is not part of it: an edit above a listed definition
    moves it without re-executing the chapter."""
    known = {p.stem for p in _package_dir().glob("*.py")}
    code = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code")
    parts = []
    for call in _LISTING_CALL.finditer(code):
        docstring = bool(re.search(r"\bdocstring\s*=\s*True\b", call.group(1)))
        for dotted, module, rest in _LISTED_NAME.findall(call.group(1)):
            if dotted:
                module, _, rest = dotted.partition(".")
            if module in known and rest:
                parts.append(_listed_text(module, rest.split("."), docstring))
    return "".join(parts)


#: Parameters that choose how much of the machine a chapter uses, not what it computes: a chapter
#: executed with 16 jobs on a GPU machine stays up to date on a laptop that runs with 2.
RESOURCE_PARAMETERS = ("n_jobs",)


def _package_key(path: Path) -> str:
    """The code of the modules the chapter imports, and the listings it shows of them."""
    key, shown = package_checksum(modules_used(path)), listings_shown(path)
    return _sha256(key.encode(), b"\0", shown.encode()) if shown else key


def chapter_inputs(path: Path, params: dict, data_checksum: str, metrics: Path | None = None) -> dict:
    """What a chapter's results depend on, each as a checksum (or the parameters themselves); for
    the results chapter also the metrics files in ``metrics``, the folder it reads them from."""
    inputs = {
        "notebook": notebook_checksum(path),
        "parameters": {k: v for k, v in sorted(params.items()) if k not in RESOURCE_PARAMETERS},
        "package": _package_key(path),
        "data": data_checksum,
    }
    if is_results_chapter(path) and metrics is not None:
        inputs["metrics"] = metrics_checksum(metrics)
    return inputs


class UnreadableRecord(ValueError):
    """An executed notebook whose cache record cannot be read (not JSON, not a notebook, no inputs)."""


def read_record(path: Path) -> dict | None:
    """The cache record kept in an executed notebook's metadata; None when there is no executed
    notebook or it carries no record. Raises :class:`UnreadableRecord` when it cannot be read."""
    if not path.exists():
        return None
    try:
        record = nbformat.read(str(path), as_version=4).metadata.get("mnistlab", {}).get("cache")
    except Exception as err:  # noqa: BLE001  (truncated JSON, not a notebook, an unknown nbformat...)
        raise UnreadableRecord(f"{path.name}: {type(err).__name__}") from err
    if record is not None and not (
        isinstance(record, dict) and isinstance(record.get("inputs"), dict) and set(RECORD_KEYS) <= set(record)
    ):
        raise UnreadableRecord(f"{path.name}: its cache record lacks {', '.join(RECORD_KEYS)}")
    return record


def cache_record(path: Path) -> dict | None:
    """The cache record kept in an executed notebook's metadata, or None (also when unreadable)."""
    try:
        return read_record(path)
    except UnreadableRecord:
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
        try:
            record, unreadable = read_record(executed / path.name), False
        except UnreadableRecord:
            record, unreadable = None, True
        inputs = chapter_inputs(path, params, data_checksum, executed.parent / "metrics")
        if force:
            reasons = ["forced (FORCE=1)"]
        elif unreadable:
            reasons = ["unreadable cache record"]
        elif record is None:
            reasons = ["never executed"]
        else:
            reasons = [f"{key} changed" for key in INPUTS if record["inputs"].get(key) != inputs.get(key)]
        states.append(ChapterState(path.name, bool(reasons), reasons, None if reasons else record))
    others = [s for s, p in zip(states, paths) if not is_results_chapter(p)]
    for state, path in zip(states, paths):
        if is_results_chapter(path) and not state.stale and any(s.stale for s in others):
            state.stale, state.reasons, state.record = True, ["another chapter reruns"], None
    return states
