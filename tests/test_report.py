import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from mnistlab import config, evaluation, report, runner

KERNEL = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def new_notebook(cells):
    return nbformat.v4.new_notebook(cells=cells, metadata=KERNEL)


def write_chapter(path, *cells, params="dataset = 'auto'"):
    """A chapter with a title, a parameters cell and the given code cells."""
    parameters = nbformat.v4.new_code_cell(params)
    parameters.metadata["tags"] = ["parameters"]
    code = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(new_notebook([nbformat.v4.new_markdown_cell(f"# {path.stem}"), parameters, *code]), str(path))


def executed_notebook(path, title, outputs):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f"# {title}\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://x)"
        ),
        nbformat.v4.new_code_cell("x = 1", outputs=outputs),
    ]
    nbformat.write(nb, str(path))
    return path


INFO = {
    "dataset": "mnist-sample",
    "requested_dataset": "auto",
    "source": "the source line",
    "profile": "smoke",
    "seed": 1,
    "date": "2026-01-01 00:00",
    "git_commit": "abc123",
    "versions": {"python": "3.11", "keras": "3"},
}


def test_merge_keeps_order_and_drops_noise(tmp_path):
    out = nbformat.v4.new_output
    noisy = [
        out("stream", name="stderr", text="oneDNN custom operations are on"),
        out("stream", name="stdout", text="accuracy 0.9\n"),
        out("execute_result", data={"text/plain": "<Figure size 640x480 with 1 Axes>"}, execution_count=1),
        out("execute_result", data={"text/plain": "<pandas.io.formats.style.Styler at 0x7f00>"}, execution_count=1),
    ]
    paths = [
        executed_notebook(tmp_path / "01_a.ipynb", "Alpha", noisy),
        executed_notebook(tmp_path / "02_b.ipynb", "Beta", []),
    ]
    merged = report.merge_notebooks(paths, INFO)
    titles = [c.source.splitlines()[0] for c in merged.cells if c.cell_type == "markdown"]
    assert titles == ["# Alpha", "# Beta"]
    outputs = merged.cells[1].outputs
    assert [o.get("text") for o in outputs] == ["accuracy 0.9\n"]
    assert len({c.id for c in merged.cells}) == len(merged.cells)
    rows = dict(merged.metadata["mnistlab"]["title_rows"])
    assert rows["Source"] == "the source line" and rows["Dataset"].startswith("mnist-sample")
    assert rows["Git commit"] == "abc123"
    reused = {"executed": "2026-01-01 00:00", "git_commit": "unknown", "reused": True}
    chapters = {"01_a.ipynb": {**reused, "reused": False}, "02_b.ipynb": reused}
    rows = dict(report.title_rows({**INFO, "chapters": chapters, "git_commit": "unknown"}))
    assert "1 executed in this run, 1 reused" in rows["Chapters"] and "commit not recorded" in rows["Chapters"]
    assert rows["Git commit"] == "not recorded"  # a run outside a git checkout
    pdf_nb = report._for_pdf(merged)
    assert "colab-badge" not in pdf_nb.cells[0].source and "colab-badge" in merged.cells[0].source


def test_chapters_are_numbered_by_their_notebook_in_a_partial_report(tmp_path):
    """A report of chapters 5 and 7 (a run with --only) calls them chapters 5 and 7, as their text
    and figure numbers do, in the PDF (LaTeX's counter set before each) and in the HTML contents."""
    paths = [
        executed_notebook(tmp_path / "05_a.ipynb", "Alpha", []),
        executed_notebook(tmp_path / "07_b.ipynb", "Beta", []),
    ]
    merged = report.merge_notebooks(paths, INFO)
    pdf = report._for_pdf(merged, summary="All good.")
    raw = [c.source for c in pdf.cells if c.cell_type == "raw"]
    assert raw == ["\\setcounter{chapter}{4}", "\\setcounter{chapter}{6}"]
    assert [c.cell_type for c in pdf.cells] == ["markdown", "raw", "markdown", "code", "raw", "markdown", "code"]
    contents = report._for_html(merged).cells[0].source
    assert "5. [Alpha](#chapter-5)" in contents and "7. [Beta](#chapter-7)" in contents and "1. [" not in contents


@pytest.mark.skipif(
    shutil.which("xelatex") is None or shutil.which("pdftotext") is None, reason="make setup installs TeX"
)
def test_a_partial_pdf_says_chapter_7_for_chapter_7():
    executed = config.reports_dir() / "executed"
    executed.mkdir(parents=True)
    for name, title in (("05_a.ipynb", "Alpha"), ("07_b.ipynb", "Beta")):
        executed_notebook(executed / name, title, [])
    info = {**INFO, "notebooks": ["05_a.ipynb", "07_b.ipynb"], "complete": True}
    (config.reports_dir() / "run.json").write_text(json.dumps(info))
    written = report.build_report(dataset_profile={"dataset": "mnist-sample", "profile": "smoke"})
    text = " ".join(subprocess.run(["pdftotext", written["pdf"], "-"], capture_output=True, text=True).stdout.split())
    assert "Chapter 5 Alpha" in text and "Chapter 7 Beta" in text and "Chapter 1 " not in text


def test_missing_tex_gives_install_command(monkeypatch):
    monkeypatch.setattr(report.shutil, "which", lambda tool: None)
    with pytest.raises(report.MissingToolError, match="apt-get install texlive-xetex"):
        report.check_tex()


def test_report_needs_a_run_first():
    with pytest.raises(FileNotFoundError, match="make notebooks DATASET=auto PROFILE=quick"):
        report.build_report(pdf=False)


def test_a_truncated_run_json_says_to_run_again():
    (config.reports_dir() / "run.json").write_text('{"dataset": "mnist-sample"')  # a run cut short
    with pytest.raises(runner.NotebookFailed, match=r"run.json cannot be read \(JSONDecodeError\).*make notebooks"):
        report.build_report(pdf=False, dataset_profile={"dataset": "mnist-sample", "profile": "smoke"})


def test_a_listed_chapter_missing_from_executed_says_which_and_how_to_rerun_it():
    info = {"notebooks": ["01_data_exploration.ipynb"], "date": "now", "dataset": "mnist-sample", "profile": "smoke"}
    (config.reports_dir() / "run.json").write_text(json.dumps(info))
    with pytest.raises(runner.NotebookFailed, match="01_data_exploration.ipynb is missing.*ONLY=01"):
        report.build_report(pdf=False)


def test_failing_notebook_names_cell_and_keeps_previous_report(tmp_path, monkeypatch):
    """`make report` = run the chapters, then build: a failing chapter stops it, and the report
    built from the last complete run stays as it was."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    params = "dataset = 'auto'\nprofile = 'quick'\nseed = 0\nn_jobs = 1"
    write_chapter(notebooks / "01_fine.ipynb", "print('fine')", params=params)
    write_chapter(notebooks / "02_broken.ipynb", "print('fine')", params=params)
    monkeypatch.setattr(config, "notebooks_dir", lambda: notebooks)
    runner.run_notebooks("mnist-sample", "smoke", progress=False)
    previous = report.build_report(pdf=False)
    html = Path(previous["html"]).read_bytes()
    pdf = config.reports_dir() / "report.pdf"
    pdf.write_bytes(b"previous report")
    write_chapter(notebooks / "01_fine.ipynb", "print('still fine')", params=params)
    write_chapter(notebooks / "02_broken.ipynb", "print('fine')", "1 / 0", params=params)
    with pytest.raises(runner.NotebookFailed) as err:
        runner.run_notebooks("mnist-sample", "smoke", progress=False)
    message = str(err.value)
    assert "02_broken.ipynb" in message and "ZeroDivisionError" in message and "cell 4" in message
    kept = config.reports_dir() / "executed.partial" / "02_broken.ipynb"
    assert kept.exists() and str(kept) in message
    assert json.loads((config.reports_dir() / "run.json").read_text())["complete"] is False
    with pytest.raises(runner.NotebookFailed, match="previous report was left in place"):
        report.build_report()  # `python -m mnistlab report` after the failure
    assert pdf.read_bytes() == b"previous report" and Path(previous["html"]).read_bytes() == html


def test_a_run_whose_first_chapter_fails_is_incomplete(tmp_path, monkeypatch):
    """run.json is marked incomplete before the first chapter runs, so a report is never built from
    the previous run's executed notebooks when this run's first chapter failed."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    params = "dataset = 'auto'\nprofile = 'quick'\nseed = 0\nn_jobs = 1"
    write_chapter(notebooks / "01_first.ipynb", "print('fine')", params=params)
    monkeypatch.setattr(config, "notebooks_dir", lambda: notebooks)
    runner.run_notebooks("mnist-sample", "smoke", progress=False)
    assert json.loads((config.reports_dir() / "run.json").read_text())["complete"] is True
    write_chapter(notebooks / "01_first.ipynb", "1 / 0", params=params)
    with pytest.raises(runner.NotebookFailed):
        runner.run_notebooks("mnist-sample", "smoke", progress=False)
    assert json.loads((config.reports_dir() / "run.json").read_text())["complete"] is False
    with pytest.raises(runner.NotebookFailed):
        report.build_report(pdf=False)


@pytest.fixture
def previous_report(tmp_path, monkeypatch):
    """A complete run of one tiny chapter, and a report built from an earlier one."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_chapter(notebooks / "01_tiny.ipynb", "print(dataset)")
    monkeypatch.setattr(config, "notebooks_dir", lambda: notebooks)
    runner.run_notebooks("auto", "smoke", seed=3, progress=False)
    reports = config.reports_dir()
    config.metrics_dir()  # the report reads it (and would create it)
    (reports / "report.pdf").write_bytes(b"%PDF previous")
    (reports / "report.html").write_text("<html>previous</html>")
    return reports


def files(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.skipif(shutil.which("pandoc") is None, reason="pandoc missing (make setup installs it)")
def test_failing_xelatex_keeps_the_previous_report(previous_report, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    xelatex = bin_dir / "xelatex"
    xelatex.write_text("#!/bin/sh\necho '! LaTeX Error: something broke.'\nexit 1\n")
    xelatex.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    before = files(previous_report)
    with pytest.raises(Exception, match="(?i)latex"):
        report.build_report()
    assert (previous_report / "report.pdf").read_bytes() == b"%PDF previous"
    assert (previous_report / "report.html").read_text() == "<html>previous</html>"
    assert files(previous_report) == before  # no half-written or temporary file left


def fail_midway(monkeypatch, method):
    """Make Path.<method> write half of its data, then fail (a full disk, a killed process)."""
    original = getattr(Path, method)

    def half_then_fail(self, data, *args, **kwargs):
        original(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, method, half_then_fail)


def test_report_written_halfway_keeps_the_previous_one(previous_report, monkeypatch):
    before = files(previous_report)
    fail_midway(monkeypatch, "write_bytes")
    with pytest.raises(OSError, match="No space left"):
        report.build_report(pdf=False)
    assert (previous_report / "report.html").read_text() == "<html>previous</html>"
    assert files(previous_report) == before


def test_json_written_halfway_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics" / "01_a.json"
    evaluation.write_json_atomic(target, {"accuracy": 0.9})
    fail_midway(monkeypatch, "write_text")
    with pytest.raises(OSError, match="No space left"):
        evaluation.write_json_atomic(target, {"accuracy": 0.5, "results": list(range(100))})
    assert json.loads(target.read_text()) == {"accuracy": 0.9}
    assert files(target.parent) == ["01_a.json"]
    monkeypatch.undo()
    with pytest.raises(KeyboardInterrupt):  # interrupted between writing and renaming
        with evaluation.atomic_path(target) as tmp:
            tmp.write_text("{}")
            raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"accuracy": 0.9} and files(target.parent) == ["01_a.json"]


def test_run_json_records_the_run(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_chapter(notebooks / "01_tiny.ipynb", "print(dataset)")
    monkeypatch.setattr(config, "notebooks_dir", lambda: notebooks)
    info = runner.run_notebooks("auto", "smoke", seed=3, progress=False)
    assert info["dataset"] == "mnist-sample" and info["requested_dataset"] == "auto"
    saved = json.loads((config.reports_dir() / "run.json").read_text())
    assert saved["notebooks"] == ["01_tiny.ipynb"] and saved["seed"] == 3
    executed = nbformat.read(str(config.reports_dir() / "executed" / "01_tiny.ipynb"), 4)
    assert "mnist-sample" in executed.cells[-1].outputs[0]["text"]
    written = report.build_report(pdf=False)
    assert "01_tiny" in open(written["html"]).read()


def test_git_commit_ignores_the_runs_own_outputs(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "reports").mkdir(parents=True)
    (repo / "src.py").write_text("a = 1\n")
    (repo / "reports" / "run.json").write_text("{}\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(git[:5] + ["init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    monkeypatch.setenv("MNISTLAB_ROOT", str(repo))
    clean = runner.git_commit()
    assert clean and "+changes" not in clean and clean != "unknown"
    (repo / "reports" / "run.json").write_text('{"new": 1}\n')
    assert runner.git_commit() == clean
    (repo / "src.py").write_text("a = 2\n")
    assert runner.git_commit() == clean + " +changes"


def test_pdf_tables_open_quoted_words_with_an_opening_quote():
    """LaTeX prints a straight ' as ’: a table's 'ovo' would read ’ovo’. Apostrophes stay."""
    latex = "always 'not positive' & decision_function_shape='ovo' & the class's 'large (≥ 7)'"
    cell = nbformat.v4.new_code_cell("t", outputs=[nbformat.v4.new_output("display_data", data={"text/latex": latex})])
    pdf = report._for_pdf(new_notebook([cell]))
    shown = pdf.cells[0].outputs[0].data["text/latex"]
    assert shown == "always `not positive' & decision_function_shape=`ovo' & the class's `large (≥ 7)'"
