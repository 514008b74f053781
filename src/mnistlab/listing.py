"""Short listings of the package's own source, shown where a chapter explains the code.

``listing.show(networks.build_bn_cnn)`` displays the function's source as a syntax-highlighted
listing: Markdown with a ``python`` fence, which the notebook and the HTML report highlight with
Pygments and the PDF report with pandoc (through our LaTeX template). The listing is read from the
package itself (:func:`inspect.getsource`), so it cannot drift from the code that ran.

A name given as a string (``"mnistlab.jaxloop.train_step"``) is read from the module's file
without importing it (nothing is imported, no device is touched), and may come with fallbacks for
a package version that does not have it yet.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Listing:
    """Source text to show, and where it comes from. Displays as highlighted code."""

    name: str  # e.g. "networks.build_bn_cnn"
    source: str  # the text shown
    path: str = ""  # the file, relative to the repository (never a machine path)
    line: int | None = None  # first line in that file
    note: str = ""  # what was left out, if anything

    def header(self) -> str:
        where = ", ".join(p for p in (self.path, f"line {self.line}" if self.line else "", self.note) if p)
        return f"*Listing:* `{self.name}`" + (f" ({where})" if where else "")

    def _repr_markdown_(self) -> str:
        if not self.source:
            return f"*Listing:* `{self.name}` ({self.note})"
        return f"{self.header()}\n\n```python\n{self.source.rstrip()}\n```\n"

    def __repr__(self) -> str:  # text/plain: the code itself
        return self.source or f"{self.name}: {self.note}"

    @property
    def n_lines(self) -> int:
        return len(self.source.splitlines())


def _shown_path(filename: str | None) -> str:
    """``src/mnistlab/<file>`` for the package's own files, the bare file name otherwise."""
    if not filename:
        return ""
    path = Path(filename).resolve()
    try:
        return str(Path("src/mnistlab") / path.relative_to(PACKAGE_DIR))
    except ValueError:
        return path.name


def _short_name(module: str, qualname: str) -> str:
    return f"{module.removeprefix('mnistlab.')}.{qualname}"


def _from_object(obj) -> tuple[str, str, str, int]:
    """(name, source, file, first line) of a function or class, through :mod:`inspect`."""
    obj = inspect.unwrap(obj)
    lines, first = inspect.getsourcelines(obj)
    return (
        _short_name(obj.__module__, obj.__qualname__),
        "".join(lines),
        inspect.getsourcefile(obj) or "",
        first,
    )


def _find_definition(body, names: list[str]):
    """The ``def`` or ``class`` node reached by following ``names`` through nested bodies."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == names[0]:
            return node if len(names) == 1 else _find_definition(node.body, names[1:])
    return None


def _from_name(dotted: str) -> tuple[str, str, str, int] | None:
    """(name, source, file, first line) of a function, class or method named
    ``package.module.name`` (or ``package.module.Class.method``), read from the module's file
    without importing the module; None when it does not exist."""
    parts = dotted.split(".")
    for k in range(1, len(parts)):
        module_name, names = ".".join(parts[:k]), parts[k:]
        module = sys.modules.get(module_name)
        if module is not None:  # already imported: as inspect sees it
            obj = module
            for name in names:
                obj = getattr(obj, name, None)
            if obj is not None and not inspect.ismodule(obj):
                try:
                    return _from_object(obj)
                except (TypeError, OSError):
                    pass
        try:
            spec = importlib.util.find_spec(module_name)  # imports the parent packages only
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        if spec.origin and spec.origin.endswith(".py"):
            text = Path(spec.origin).read_text(encoding="utf-8")
            node = _find_definition(ast.parse(text).body, names)
            if node is not None:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = text.splitlines(keepends=True)[first - 1 : node.end_lineno]
                return _short_name(module_name, ".".join(names)), "".join(lines), spec.origin, first
        if spec.submodule_search_locations is None:  # a plain module: nothing deeper to look in
            return None
    return None


def strip_docstrings(source: str) -> str:
    """``source`` without the docstrings of its functions and classes (the code alone)."""
    dedented = textwrap.dedent(source)
    drop = set()
    for node in ast.walk(ast.parse(dedented)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
                and len(node.body) > 1
            ):
                drop.update(range(first.lineno, first.end_lineno + 1))
    return "".join(line for i, line in enumerate(source.splitlines(keepends=True), start=1) if i not in drop)


def show(obj, lines: tuple[int, int] | None = None, docstring: bool = False, fallback=()) -> Listing:
    """A listing of ``obj`` (a function or class, or its dotted name as a string).

    ``docstring=False`` leaves the docstrings out (the chapter's text explains the code);
    ``lines=(first, last)`` keeps only those lines of what is shown (1-based, inclusive), with
    ``...`` where lines were cut. ``fallback``: names or objects tried in turn when ``obj`` is a
    name this version of the package does not have; when none exists, the listing says so.
    """
    candidates = [obj, *([fallback] if isinstance(fallback, str) or callable(fallback) else fallback)]
    found = None
    for candidate in candidates:
        found = _from_name(candidate) if isinstance(candidate, str) else _from_object(candidate)
        if found:
            break
    if not found:
        wanted = obj if isinstance(obj, str) else getattr(obj, "__qualname__", repr(obj))
        return Listing(name=str(wanted).removeprefix("mnistlab."), source="", note="not in this version of the package")
    name, source, filename, first = found
    source = textwrap.dedent(source)
    notes = []
    if not docstring:
        stripped = strip_docstrings(source)
        if stripped != source:
            notes.append("docstring left out")
        source = stripped
    if lines is not None:
        start, stop = lines
        all_lines = source.splitlines(keepends=True)
        kept = all_lines[start - 1 : stop]
        indent = " " * (len(kept[0]) - len(kept[0].lstrip())) if kept else ""
        source = (
            (f"{indent}...\n" if start > 1 else "")
            + "".join(kept)
            + (f"{indent}...\n" if stop < len(all_lines) else "")
        )
        notes.append(f"lines {start}-{min(stop, len(all_lines))} of the function")
    return Listing(name=name, source=source, path=_shown_path(filename), line=first, note="; ".join(notes))
