import json
import subprocess

import nbformat
import pytest

from mnistlab import config, report, runner

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


def test_missing_tex_gives_install_command(monkeypatch):
    monkeypatch.setattr(report.shutil, "which", lambda tool: None)
    with pytest.raises(report.MissingToolError, match="apt-get install texlive-xetex"):
        report.check_tex()


def test_report_needs_a_run_first():
    with pytest.raises(FileNotFoundError, match="make notebooks"):
        report.build_report(pdf=False)


def test_failing_notebook_names_cell_and_keeps_previous_report(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_chapter(
        notebooks / "01_broken.ipynb",
        "print('fine')",
        "1 / 0",
        params="dataset = 'auto'\nprofile = 'quick'\nseed = 0\nn_jobs = 1",
    )
    monkeypatch.setattr(config, "notebooks_dir", lambda: notebooks)
    previous = config.reports_dir() / "report.pdf"
    previous.write_bytes(b"previous report")
    with pytest.raises(runner.NotebookFailed) as err:
        runner.run_notebooks("mnist-sample", "smoke", progress=False)
    message = str(err.value)
    assert "01_broken.ipynb" in message and "ZeroDivisionError" in message and "cell" in message
    assert previous.read_bytes() == b"previous report"
    kept = config.reports_dir() / "executed.partial" / "01_broken.ipynb"
    assert kept.exists() and str(kept) in message
    assert not (config.reports_dir() / "run.json").exists()


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
