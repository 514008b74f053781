"""The execution cache: a chapter reruns only when its notebook, parameters, package source or
data changed; the results chapter whenever another one ran; metrics only replaced on success."""

import json

import nbformat
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
    assert set(executed.metadata["mnistlab"]["cache"]["inputs"]) == set(runner.INPUTS)


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
