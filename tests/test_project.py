"""Project conventions: dependencies agree, notebooks are stored clean and parameterised."""

import re

import nbformat
import pytest
import tomllib
import yaml
from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_clean_and_parameterised(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), (
        "store notebooks without outputs"
    )
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert (
        sum(line.startswith("# ") for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()) == 1
    ), "one # title per chapter"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("dataset", "profile", "seed", "n_jobs"):
        assert re.search(rf"^{name} = ", params[0].source, re.M), name
    assert any("plots.say(ds.source)" in c.source for c in nb.cells), "show the data source"
    assert "plots.learned(" in nb.cells[-1].source, "end with 'What we learned'"


def test_repository_url_has_one_source():
    from mnistlab import links

    slug = links.repository_url().removeprefix("https://github.com/")
    readme = (REPO / "README.md").read_text()
    badges = links.colab_badges(readme)
    assert {b[1] for b in badges} == {p.name for p in NOTEBOOKS}, "one badge per notebook, each naming a notebook"
    assert {b[0] for b in badges} == {slug}
    for path in NOTEBOOKS:
        text = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells)
        assert links.colab_badges(text) == [(slug, path.name)], path.name
        assert set(links.clone_urls(text)) == {slug}, path.name


def test_link_rewrite_follows_pyproject():
    from mnistlab import links

    text = (
        "[b](https://colab.research.google.com/github/old/repo/blob/main/notebooks/01_a.ipynb)\n"
        'REPO_URL = os.environ.get("MNISTLAB_REPO_URL", "https://github.com/old/repo")'
    )
    new = links._rewrite(text, "someone/mnistlab")
    assert links.colab_badges(new) == [("someone/mnistlab", "01_a.ipynb")]
    assert links.clone_urls(new) == ["someone/mnistlab"]


def test_extras_agree_between_makefile_and_environment_yml():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    makefile = re.search(r"^EXTRAS := (.+)$", (REPO / "Makefile").read_text(), re.M).group(1).split(",")
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == [f"-e .[{','.join(makefile)}]"]
    assert set(makefile) <= set(project["optional-dependencies"])


def test_colab_needs_only_what_the_notebooks_import():
    """The runner's tools are an extra: Colab's install cell must not pull papermill & co."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=\[]", r)[0] for r in project["dependencies"]}
    assert not core & {"papermill", "nbconvert", "nbformat", "ipykernel", "jupyterlab", "dask"}


def test_jupyterlab_is_in_the_environment():
    import subprocess
    import sys
    from pathlib import Path

    jupyter = Path(sys.executable).with_name("jupyter")
    result = subprocess.run([str(jupyter), "lab", "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().split(".")[0]) >= 4


def test_differences_are_printed_in_points_not_percent():
    """A signed difference of two accuracies ("+0.07") is a difference in percentage points:
    printing it with a percent sign (`:+.2%`) reads as a relative change. The chapters and the
    package print differences as `100 * diff:+.2f` followed by "points"."""
    signed_percent = re.compile(r":\+\.?\d*%")
    sources = {p.name: "\n".join(c.source for c in nbformat.read(str(p), 4).cells) for p in NOTEBOOKS}
    sources |= {p.name: p.read_text() for p in (REPO / "src" / "mnistlab").glob("*.py")}
    offenders = {name: signed_percent.findall(text) for name, text in sources.items() if signed_percent.search(text)}
    assert not offenders, offenders


def test_every_table_a_chapter_makes_is_shown():
    """A cell shows only its last expression: a `plots.Table(...)` anywhere else in the cell is
    built and thrown away, and its caption's promise ("fold by fold:") points at nothing. Such a
    table is wrapped in `display(...)`."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager  # cells may hold `!git clone …`

    to_python = TransformerManager().transform_cell
    dropped = []
    for path in NOTEBOOKS:
        for index, cell in enumerate(nbformat.read(str(path), 4).cells):
            if cell.cell_type != "code":
                continue
            body = ast.parse(to_python(cell.source)).body
            for statement in body[:-1]:
                call = statement.value if isinstance(statement, ast.Expr) else None
                if isinstance(call, ast.Call) and ast.unparse(call.func).endswith("Table"):
                    dropped.append(f"{path.name}, cell {index}, line {statement.lineno}")
    assert not dropped, dropped
