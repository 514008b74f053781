"""One-off: move the committed cache records in ``reports/executed/`` to the code-only cache key.

Until November 2026 a chapter's ``inputs.package`` was a sha256 over the bytes of the package
modules it imports and ``inputs.notebook`` one over the notebook file's bytes, so a comment or a
docstring made hours of chapters stale. ``mnistlab.cache`` now hashes the modules' code (their
syntax trees without docstrings) and the notebook's cells (type, source, tags).

For each executed chapter, this script computes the old key over the files of a commit (HEAD by
default: the files the committed study was checked against, not edits in progress) and, for each
of ``package`` and ``notebook`` whose stored value equals it, stores the new key over the same
files. A value that was already stale stays stale. Nothing else in the notebook changes
(nbformat writes it back as the runner wrote it).

Usage: ``python scripts/migrate_cache_key.py [--rev HEAD] [--dry-run]``
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import nbformat

from mnistlab import cache, config


def legacy_package_checksum(package: Path, modules) -> str:
    """The old key: sha256 over the names and bytes of the modules."""
    digest = hashlib.sha256()
    for module in sorted(modules):
        digest.update(module.encode())
        digest.update((package / f"{module}.py").read_bytes())
    return digest.hexdigest()


def legacy_notebook_checksum(path: Path) -> str:
    """The old key: sha256 over the notebook file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(rev: str, root: Path, into: Path) -> None:
    """The package and the notebooks as committed at ``rev``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "src/mnistlab", "notebooks"], cwd=root, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))


def migrate(rev: str = "HEAD", dry_run: bool = False) -> dict[str, list[str]]:
    root = config.repo_root()
    executed = config.reports_dir() / "executed"
    migrated = {}
    with tempfile.TemporaryDirectory() as tmp:
        export(rev, root, Path(tmp))
        package, notebooks = Path(tmp) / "src" / "mnistlab", Path(tmp) / "notebooks"
        cache._package_dir = lambda: package  # the committed modules, not edits in progress
        for path in sorted(executed.glob("[0-9][0-9]_*.ipynb")):
            source = notebooks / path.name
            nb = nbformat.read(str(path), as_version=4)
            inputs = nb.metadata.get("mnistlab", {}).get("cache", {}).get("inputs")
            if not source.exists() or not inputs:
                migrated[path.name] = []
                continue
            modules = cache.modules_used(source)
            changed = []
            if inputs.get("package") == legacy_package_checksum(package, modules):
                inputs["package"] = cache.package_checksum(modules)
                changed.append("package")
            if inputs.get("notebook") == legacy_notebook_checksum(source):
                inputs["notebook"] = cache.notebook_checksum(source)
                changed.append("notebook")
            migrated[path.name] = changed
            if changed and not dry_run:
                nbformat.write(nb, str(path))
    return migrated


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the commit whose notebooks and package were checked")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    for name, changed in migrate(args.rev, args.dry_run).items():
        print(f"{name:<32} {'migrated: ' + ', '.join(changed) if changed else 'left as it was (stale or no record)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
