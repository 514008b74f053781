"""The execution cache: a chapter reruns only when its notebook, parameters, package source or
data changed; the results chapter whenever another one ran; metrics only replaced on success."""

import ast
import json
import shutil

import nbformat
import numpy as np
import pytest
from conftest import REPO
from test_report import write_chapter

from mnistlab import cache, config, runner

PARAMS = "dataset = 'auto'\nprofile = 'quick'\nseed = 0\nn_jobs = 1"
WRITE_METRICS = (
    "from mnistlab import evaluation\nfrom mnistlab.data import load_dataset\n"
    "ds = load_dataset(dataset, profile, seed)\n"
    "evaluation.write_metrics('{name}', ds, [evaluation.result_record('m', ds.y_test, ds.y_test)])"
)


@pytest.fixture
def chapters(tmp_path, monkeypatch):
    """Two chapters that write metrics, and a results chapter."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("01_a", "02_b"):
        write_chapter(notebooks / f"{name}.ipynb", WRITE_METRICS.format(name=name), params=PARAMS)
    write_chapter(notebooks / "03_results.ipynb", "print('results')", params=PARAMS)
    monkeypatch.setattr(config, "notebooks_dir", lambda: notebooks)
    return notebooks


def run():
    info = runner.run_notebooks("mnist-sample", "smoke", seed=0, progress=False)
    return {name: c["reused"] for name, c in info["chapters"].items()}, info


def states():
    return {s.name: s.reasons for s in runner.status("mnist-sample", "smoke", seed=0)}


def test_second_run_reuses_everything(chapters):
    assert run()[0] == {"01_a.ipynb": False, "02_b.ipynb": False, "03_results.ipynb": False}
    assert states() == {"01_a.ipynb": [], "02_b.ipynb": [], "03_results.ipynb": []}
    reused, info = run()
    assert all(reused.values()) and info["complete"]
    executed = nbformat.read(str(config.reports_dir() / "executed" / "01_a.ipynb"), 4)
    assert set(executed.metadata["mnistlab"]["cache"]["inputs"]) == set(runner.INPUTS) - {"metrics"}
    results = nbformat.read(str(config.reports_dir() / "executed" / "03_results.ipynb"), 4)
    assert set(results.metadata["mnistlab"]["cache"]["inputs"]) == set(runner.INPUTS)
    # No folder of the machine that ran it: papermill's paths are the chapter's place in the course.
    assert executed.metadata["papermill"]["input_path"] == "notebooks/01_a.ipynb"
    assert executed.metadata["papermill"]["output_path"] == "reports/executed/01_a.ipynb"


def test_edited_notebook_reruns_it_and_the_results_chapter(chapters):
    run()
    nb = nbformat.read(str(chapters / "02_b.ipynb"), 4)
    nb.cells.append(nbformat.v4.new_code_cell("print('new cell')"))
    nbformat.write(nb, str(chapters / "02_b.ipynb"))
    assert states() == {
        "01_a.ipynb": [],
        "02_b.ipynb": ["notebook changed"],
        "03_results.ipynb": ["another chapter reruns"],
    }
    assert run()[0] == {"01_a.ipynb": True, "02_b.ipynb": False, "03_results.ipynb": False}


def test_changed_metrics_make_only_the_results_chapter_stale(chapters):
    """A chapter's metrics replaced without running it (a study promoted from a GPU machine, a
    copied file): the results chapter, which reads them, is stale; the chapters are not."""
    run()
    metrics = config.metrics_dir() / "01_a.json"
    record = json.loads(metrics.read_text())
    record["results"][0]["accuracy"] = 0.5
    metrics.write_text(json.dumps(record))
    assert states() == {"01_a.ipynb": [], "02_b.ipynb": [], "03_results.ipynb": ["metrics changed"]}
    assert run()[0] == {"01_a.ipynb": True, "02_b.ipynb": True, "03_results.ipynb": False}
    assert states()["03_results.ipynb"] == []  # keyed on the metrics it read


def test_parameters_data_and_package_make_chapters_stale(chapters, monkeypatch):
    run()
    other_seed = {s.name: s.reasons for s in runner.status("mnist-sample", "smoke", seed=1)}
    assert other_seed["01_a.ipynb"] == ["parameters changed", "data changed"]  # the sample's split follows the seed
    monkeypatch.setattr(cache, "package_checksum", lambda modules: "edited")
    assert states()["02_b.ipynb"] == ["package changed"]


def test_job_count_does_not_make_chapters_stale(chapters):
    """n_jobs chooses how much of the machine a chapter uses, not what it computes: chapters
    executed on a 16-core GPU machine stay up to date where the default is 2 jobs."""
    run()
    assert all(s.reasons == [] for s in runner.status("mnist-sample", "smoke", seed=0, jobs=16))
    other_seed = runner.status("mnist-sample", "smoke", seed=1, jobs=16)
    assert other_seed[0].reasons == ["parameters changed", "data changed"]


def test_force_reruns_everything(chapters):
    run()
    info = runner.run_notebooks("mnist-sample", "smoke", seed=0, progress=False, force=True)
    assert not any(c["reused"] for c in info["chapters"].values())


def test_failed_chapter_keeps_its_previous_results_and_metrics(chapters):
    run()
    metrics = config.metrics_dir() / "02_b.json"
    before = metrics.read_bytes()
    write_chapter(chapters / "02_b.ipynb", WRITE_METRICS.format(name="02_b"), "1 / 0", params=PARAMS)
    with pytest.raises(runner.NotebookFailed, match="02_b.ipynb failed"):
        run()
    assert metrics.read_bytes() == before  # written by the failing run, but only to the staging folder
    executed = nbformat.read(str(config.reports_dir() / "executed" / "02_b.ipynb"), 4)
    assert "1 / 0" not in "".join(c.source for c in executed.cells)
    saved = json.loads((config.reports_dir() / "run.json").read_text())
    assert saved["complete"] is False
    from mnistlab import report

    with pytest.raises(runner.NotebookFailed, match="stopped before every chapter"):
        report.build_report(pdf=False)


def test_a_chapter_depends_on_the_modules_it_imports_only():
    classical = runner.modules_used(REPO / "notebooks" / "04_multiclass_baselines.ipynb")
    networks = runner.modules_used(REPO / "notebooks" / "05_neural_networks.ipynb")
    assert {"data", "config", "search", "plots"} <= set(classical)  # search imports data: transitive
    assert "networks" not in classical and "networks" in networks
    assert "report" not in networks and "runner" not in networks


# --------------------------------------------------------------------------- the key: code, not comments


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the package that the cache key reads (real files, edited by the tests), and a
    cache record for every real chapter, as if each had just been executed against that copy."""
    package = tmp_path / "pkg"
    shutil.copytree(REPO / "src" / "mnistlab", package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_package_dir", lambda: package)
    executed = tmp_path / "executed"
    executed.mkdir()
    paths = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        record_executed(path, executed / path.name)
    return package, executed, paths


KEY_PARAMS = {"dataset": "mnist", "profile": "full", "seed": 42, "n_jobs": 2}


def record_executed(notebook, target, params=KEY_PARAMS):
    """What the runner leaves in reports/executed/ (without running the chapter)."""
    nb = nbformat.read(str(notebook), 4)
    inputs = cache.chapter_inputs(notebook, params, "data", target.parent.parent / "metrics")
    record = {"inputs": inputs, "seconds": 1.0, "executed": "now"}
    nb.metadata["mnistlab"] = {"cache": {**record, "git_commit": "abc"}}
    nbformat.write(nb, str(target))


def stale_chapters(paths, executed) -> dict:
    return {s.name: s.reasons for s in cache.chapter_states(paths, KEY_PARAMS, "data", executed) if s.stale}


def edit(path, old, new):
    source = path.read_text()
    assert old in source, f"{old!r} not in {path.name}"
    path.write_text(source.replace(old, new, 1))


def test_comments_docstrings_and_layout_leave_every_chapter_up_to_date(package_copy):
    package, executed, paths = package_copy
    assert stale_chapters(paths, executed) == {}
    for module in ("config", "data", "networks", "search", "compile_cache"):  # every chapter uses config and data
        path = package / f"{module}.py"
        tree = ast.parse(path.read_text())
        function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and ast.get_docstring(n))
        lines = path.read_text().splitlines(keepends=True)
        doc = function.body[0]
        assert lines[doc.lineno - 1].lstrip().startswith('"""'), (module, function.name)
        lines[doc.lineno - 1] = lines[doc.lineno - 1].replace('"""', '"""Edited docstring. ', 1)
        first = min([function.lineno] + [d.lineno for d in function.decorator_list])
        lines.insert(first - 1, "# a new comment before a function\n\n")
        edited = "".join(lines).replace('"""', '"""A new module docstring line.\n\n', 1)
        path.write_text(edited + "\n\n# a trailing comment\n")
        assert ast.get_docstring(ast.parse(edited)) != ast.get_docstring(tree)  # the edits really happened
    assert stale_chapters(paths, executed) == {}


def users_of(module, paths):
    return {p.name for p in paths if module in cache.modules_used(p)}


def test_a_code_edit_makes_exactly_the_chapters_that_import_it_stale(package_copy):
    package, executed, paths = package_copy
    results = {p.name for p in paths if runner.is_results_chapter(p)}
    edit(package / "search.py", "\ndef ", "\nEDITED = 1\n\n\ndef ")
    stale = stale_chapters(paths, executed)
    expected = users_of("search", paths)
    assert "04_multiclass_baselines.ipynb" in expected and "05_neural_networks.ipynb" not in expected
    assert {name for name, reasons in stale.items() if reasons == ["package changed"]} == expected
    assert set(stale) == expected | results  # every other chapter stays up to date


def test_a_code_edit_reaches_chapters_through_the_modules_they_import(package_copy):
    """A module no notebook imports itself, imported by one they import (search)."""
    package, executed, paths = package_copy
    (package / "probe.py").write_text("LIMIT = 1\n")
    edit(package / "search.py", "from . import config\n", "from . import config, probe\n")
    for path in paths:  # executed against the package with the new import
        record_executed(path, executed / path.name)
    assert stale_chapters(paths, executed) == {}
    expected = users_of("probe", paths)
    assert expected == users_of("search", paths) and not any("probe" in p.read_text() for p in paths)
    (package / "probe.py").write_text("LIMIT = 2\n")
    stale = stale_chapters(paths, executed)
    assert set(stale) == expected | {p.name for p in paths if runner.is_results_chapter(p)}
    assert "04_multiclass_baselines.ipynb" in stale and "05_neural_networks.ipynb" not in stale


def test_listed_code_is_keyed_with_its_comments(package_copy, tmp_path):
    """A chapter that shows a function as a listing (its comments, not its docstring, in the
    report) reruns when that function's comments change; a chapter that only runs it does not."""
    package, executed, _ = package_copy
    notebooks = tmp_path / "listings"
    notebooks.mkdir()
    shows = {
        "01_lists": "listing.show(search.grid_size)\nlisting.show(search.pca_svc_grid)",
        "02_by_name": 'listing.show("mnistlab.search.grid_size", fallback="mnistlab.search.nothing")',
        "03_with_docstring": "listing.show(search.pca_svc_grid, docstring=True)",
        "04_runs_it": "search.grid_size({})",
    }
    paths = []
    for name, code in shows.items():
        write_chapter(notebooks / f"{name}.ipynb", f"from mnistlab import listing, search\n{code}", params=PARAMS)
        paths.append(notebooks / f"{name}.ipynb")
        record_executed(paths[-1], executed / f"{name}.ipynb")
    module = package / "search.py"
    edit(
        module,
        "def grid_size(grid: dict) -> int:\n",
        "# a comment above, outside the listing\ndef grid_size(grid: dict) -> int:\n",
    )
    edit(module, '    """The ``n_components', '    """The (edited) ``n_components')
    assert stale_chapters(paths, executed) == {"03_with_docstring.ipynb": ["package changed"]}
    record_executed(paths[2], executed / paths[2].name)
    edit(
        module,
        "def grid_size(grid: dict) -> int:\n",
        "def grid_size(grid: dict) -> int:\n    # a comment the listing shows\n",
    )
    assert set(stale_chapters(paths, executed)) == {"01_lists.ipynb", "02_by_name.ipynb"}


def test_the_key_is_the_same_on_every_python_version():
    """Python 3.12 adds an empty string to some f-string format specs and a ``type_params`` field,
    3.13's ast.dump hides empty fields: the canonical form sees none of it (checked on 3.10-3.13)."""
    source = 'def f(x: int = None, *, w=3):\n    """Doc."""\n    return f"{x:<{w}}"  # note\n'
    assert cache.code_form(source).decode() == (
        "Module(body=[FunctionDef(name='f', args=arguments(args=[arg(arg='x', annotation=Name(id='int', "
        "ctx=Load()))], kwonlyargs=[arg(arg='w')], kw_defaults=[Constant(value=3)], defaults=[Constant()]), "
        "body=[Return(value=JoinedStr(values=[FormattedValue(value=Name(id='x', ctx=Load()), conversion=-1, "
        "format_spec=JoinedStr(values=[Constant(value='<'), FormattedValue(value=Name(id='w', ctx=Load()), "
        "conversion=-1)]))]))])])"
    )
    assert cache.code_form(source.replace("<", ">")) != cache.code_form(source)


def test_notebook_key_is_its_cells_not_metadata_ids_or_outputs(tmp_path):
    notebook, executed = tmp_path / "01_a.ipynb", tmp_path / "executed"
    executed.mkdir()
    write_chapter(notebook, "x = 1  # a comment", params=PARAMS)
    record_executed(notebook, executed / notebook.name)
    nb = nbformat.read(str(notebook), 4)
    nb.metadata["colab"] = {"provenance": []}
    nb.cells[-1].id, nb.cells[-1].execution_count = "renamed", 7
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nbformat.write(nb, str(notebook))
    assert stale_chapters([notebook], executed) == {}
    for change in ("markdown", "comment", "tags"):
        nb = nbformat.read(str(notebook), 4)
        if change == "markdown":  # the text is report content
            nb.cells[0].source += "\n\nA new sentence."
        elif change == "comment":  # shown in the HTML report
            nb.cells[-1].source = "x = 1  # another comment"
        else:  # papermill injects the parameters after the cell tagged `parameters`
            nb.cells[1].metadata["tags"] = []
        nbformat.write(nb, str(notebook))
        assert stale_chapters([notebook], executed) == {"01_a.ipynb": ["notebook changed"]}, change
        record_executed(notebook, executed / notebook.name)


@pytest.mark.parametrize(
    "content",
    [
        '{"cells": [',
        '{"cells": 3}',
        "[]",
        '{"nbformat": 4, "nbformat_minor": 5, "metadata": {"mnistlab": {"cache": 1}}, "cells": []}',
    ],
    ids=["truncated", "not-a-notebook", "a-list", "record-not-a-dict"],
)
def test_unreadable_cache_record_makes_the_chapter_stale(chapters, content):
    run()
    (config.reports_dir() / "executed" / "02_b.ipynb").write_text(content)
    assert states() == {
        "01_a.ipynb": [],
        "02_b.ipynb": ["unreadable cache record"],
        "03_results.ipynb": ["another chapter reruns"],
    }
    assert runner.cache_record(config.reports_dir() / "executed" / "02_b.ipynb") is None  # bench skips it


def test_an_unreadable_cache_record_is_replaced_by_a_new_run(chapters):
    run()
    (config.reports_dir() / "executed" / "02_b.ipynb").write_text('{"cells": [')
    assert run()[0] == {"01_a.ipynb": True, "02_b.ipynb": False, "03_results.ipynb": False}
    assert all(s.reasons == [] for s in runner.status("mnist-sample", "smoke", seed=0))


FIT = (
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from mnistlab import evaluation\nfrom mnistlab.data import load_dataset\n"
    "ds = load_dataset(dataset, profile, seed)\n"
    "x_train, x_test = ds.x_train.reshape(len(ds.x_train), -1), ds.x_test.reshape(len(ds.x_test), -1)\n"
    "model = RandomForestClassifier(n_estimators=5, max_features=0.02, random_state=seed)\n"
    "record, pred = evaluation.fit_and_score('forest', model, x_train, ds.y_train, x_test, ds.y_test)\n"
    "evaluation.write_metrics('01_forest', ds, [record], predictions={'forest': pred})"
)
TIMINGS = ("fit_seconds", "predict_seconds")


def test_a_chapter_run_twice_gives_the_same_metrics(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_chapter(notebooks / "01_forest.ipynb", FIT, params=PARAMS)
    monkeypatch.setattr(config, "notebooks_dir", lambda: notebooks)
    outcomes = []
    for _ in range(2):
        runner.run_notebooks("mnist-sample", "smoke", seed=0, progress=False, force=True)
        metrics = json.loads((config.metrics_dir() / "01_forest.json").read_text())
        for record in metrics["results"]:
            assert all(record.pop(key) > 0 for key in TIMINGS)  # the only values allowed to differ
        predictions = np.load(config.metrics_dir() / "01_forest.predictions.npz")
        outcomes.append((metrics, predictions["model_0"]))
    (first, first_pred), (second, second_pred) = outcomes
    assert first == second and 0.3 < first["results"][0]["accuracy"] < 1
    np.testing.assert_array_equal(first_pred, second_pred)


def test_a_run_of_some_chapters_keeps_the_others_up_to_date_and_names_the_stale_ones(chapters, monkeypatch):
    """``--only 01`` after 02 was edited: the report holds 01 (run) and nothing stale; 02 and the
    results chapter that reads it are named as left out, with the command that adds them."""
    from mnistlab import report

    run()
    write_chapter(chapters / "02_b.ipynb", WRITE_METRICS.format(name="02_b"), "print('edited')", params=PARAMS)
    info = runner.run_notebooks("mnist-sample", "smoke", seed=0, only=["01"], progress=False)
    assert info["notebooks"] == ["01_a.ipynb"] and info["only"] == ["01"] and info["complete"]
    assert info["left_out"] == {"02_b.ipynb": "notebook changed", "03_results.ipynb": "another chapter reruns"}
    text = runner.left_out_text(info)
    assert "02_b (notebook changed)" in text and "make report DATASET=mnist-sample PROFILE=smoke ONLY='02 03'" in text
    assert ["Left out", text.replace("`", "")] in report.title_rows(info | {"source": "s", "date": "d"})

    # Up-to-date chapters outside --only join the run as reused: here 01 and the results chapter.
    info = runner.run_notebooks("mnist-sample", "smoke", seed=0, only=["02"], progress=False)
    assert info["notebooks"][:2] == ["01_a.ipynb", "02_b.ipynb"] and info["chapters"]["01_a.ipynb"]["reused"]
    assert not info["chapters"]["02_b.ipynb"]["reused"] and set(info["seconds"]) == set(info["notebooks"])
    assert set(info["left_out"]) | set(info["notebooks"]) == {"01_a.ipynb", "02_b.ipynb", "03_results.ipynb"}

    # The committed study's report is never built with chapters left out.
    write_chapter(chapters / "02_b.ipynb", WRITE_METRICS.format(name="02_b"), "print('again')", params=PARAMS)
    runner.run_notebooks("mnist-sample", "smoke", seed=0, only=["01"], progress=False)
    monkeypatch.setattr(config, "repo_root", config.output_dir)
    with pytest.raises(runner.NotebookFailed, match="committed study's report would lack .*02_b.*PROFILE=smoke`"):
        report.build_report(pdf=False)


def test_a_run_of_some_chapters_cut_short_names_them_in_its_advice(chapters):
    from mnistlab import report

    write_chapter(chapters / "02_b.ipynb", "1 / 0", params=PARAMS)
    with pytest.raises(runner.NotebookFailed):
        runner.run_notebooks("mnist-sample", "smoke", seed=0, only=["01", "02"], progress=False)
    with pytest.raises(runner.NotebookFailed, match="stopped before.*PROFILE=smoke ONLY='01 02'` again"):
        report.build_report(pdf=False)
