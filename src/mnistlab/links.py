"""The repository URL lives in one place, ``[project.urls] Repository`` in pyproject.toml; the
README's Colab badges and each notebook's badge and clone cell follow it."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import tomllib

from . import config

_GITHUB = re.compile(r"https://github\.com/([\w.-]+/[\w.-]+?)(?=[\"/)\s]|$)")
_COLAB = re.compile(
    r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/notebooks/([\w.-]+\.ipynb)"
)


def repository_url() -> str:
    """``[project.urls] Repository`` of pyproject.toml (``https://github.com/OWNER/NAME``)."""
    project = tomllib.loads((config.repo_root() / "pyproject.toml").read_text())["project"]
    return project["urls"]["Repository"].rstrip("/")


def _slug(url: str) -> str:
    return url.removeprefix("https://github.com/")


def colab_badges(text: str) -> list[tuple[str, str]]:
    """``(owner/name, notebook file)`` of every Colab link in ``text``."""
    return _COLAB.findall(text)


def clone_urls(text: str) -> list[str]:
    """``owner/name`` of every GitHub URL in ``text`` that is not a Colab link."""
    return _GITHUB.findall(_COLAB.sub("", text))


def _rewrite(text: str, slug: str) -> str:
    text = _COLAB.sub(
        lambda m: f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/{m.group(2)}", text
    )
    return _GITHUB.sub(f"https://github.com/{slug}", text)


def sync_links() -> list[Path]:
    """Point README badges and notebook cells at :func:`repository_url`; return the files changed."""
    slug = _slug(repository_url())
    changed = []
    readme = config.repo_root() / "README.md"
    text = readme.read_text()
    if _rewrite(text, slug) != text:
        readme.write_text(_rewrite(text, slug))
        changed.append(readme)
    for path in sorted(config.notebooks_dir().glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        before = [c.source for c in nb.cells]
        for cell in nb.cells:
            cell.source = _rewrite(cell.source, slug)
        if [c.source for c in nb.cells] != before:
            nbformat.write(nb, str(path))
            changed.append(path)
    return changed
