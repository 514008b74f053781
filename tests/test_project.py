"""Project conventions: dependencies agree, notebooks are stored clean and parameterised."""
import re
import tomllib

import nbformat
import pytest
import yaml

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {normalise(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_clean_and_parameterised(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), "store notebooks without outputs"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert sum(line.startswith("# ") for c in nb.cells if c.cell_type == "markdown"
               for line in c.source.splitlines()) == 1, "one # title per chapter"
    assert "colab.research.google.com" in first.source
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("dataset", "profile", "seed", "n_jobs"):
        assert re.search(rf"^{name} = ", params[0].source, re.M), name
    assert any("print(ds.source)" in c.source for c in nb.cells), "print the data source"
