"""Execute the chapters with papermill, merge them with nbformat, render HTML and PDF with nbconvert.

A run writes ``reports/executed/*.ipynb`` and ``reports/run.json``; the report step turns
those into ``reports/report.html`` (with code) and ``reports/report.pdf`` (without code).
Both files are replaced atomically, and only once everything before them succeeded, so a
failed run leaves the previous report in place.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import platform
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import nbformat

from . import config
from .evaluation import atomic_path, write_json_atomic

REPORT_TITLE = "Handwritten-digit classification: a reproducible study"
TEMPLATES = Path(__file__).parent / "templates"
TEX_PACKAGES = "texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc"
VERSIONED = ("numpy", "scikit-learn", "tensorflow", "keras", "pandas", "matplotlib")
_BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)\s*")
_OBJECT_REPR = re.compile(r"^<[\w.]+(\s.*)?(at 0x[0-9a-f]+|size \d+x\d+ with \d+ Axes)>$", re.S)


class NotebookFailed(RuntimeError):
    """A chapter raised an error; the message names the notebook and the cell."""


class MissingToolError(RuntimeError):
    """xelatex or pandoc is not installed; the message gives the install command."""


def notebook_paths(only=None) -> list[Path]:
    """The chapters in order (``NN_name.ipynb``), optionally only those whose name starts with ``only``."""
    paths = sorted(config.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in only)]
        if not paths:
            raise config.UnknownNameError(f"no notebook matches {only}")
    return paths


def git_commit() -> str:
    """Short commit of the checkout, with ``+changes`` when its tracked files differ from it
    (outside ``reports/`` and ``figures/``, which a run itself rewrites)."""
    root = config.repo_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)reports", ":(exclude)figures"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return commit + (" +changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@contextmanager
def environment(**values):
    """Set environment variables for the duration of a with-block (children see them too)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_notebooks(dataset: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED,
                  jobs: int = 2, only=None, progress: bool = True) -> dict:
    """Execute the chapters in order with papermill and write ``reports/run.json``.

    ``dataset='auto'`` is resolved once here, so every chapter uses the same data.
    Raises :class:`NotebookFailed` naming the notebook and cell when one fails.
    """
    import papermill as pm

    from .data import DATASETS, load_dataset

    config.check_name("dataset", dataset, [d for d in DATASETS if d != "triplet-mnist"])
    config.get_profile(profile)
    paths = notebook_paths(only)
    commit = git_commit()  # before the run rewrites anything
    data = load_dataset(dataset, profile, seed)
    # Execute into a staging folder; it replaces reports/executed/ only when every chapter ran,
    # so a failed run never mixes new and old chapters under the previous run.json.
    executed = config.reports_dir() / "executed.partial"
    shutil.rmtree(executed, ignore_errors=True)
    executed.mkdir(parents=True)
    resolved = data.name if dataset == "auto" else dataset  # every chapter gets the same data
    params = {"dataset": resolved, "profile": profile, "seed": seed, "n_jobs": jobs}
    timings = {}
    env = {"MNISTLAB_OUTPUT": config.output_dir(), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONWARNINGS": "ignore", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    with environment(**env):
        for path in paths:
            target = executed / path.name
            print(f"== {path.name} ({data.name}, {profile})", flush=True)
            start = time.perf_counter()
            try:
                pm.execute_notebook(str(path), str(target), parameters=params, kernel_name="python3",
                                    progress_bar=progress, cwd=str(config.output_dir()))
            except pm.PapermillExecutionError as err:
                raise NotebookFailed(
                    f"notebook {path.name} failed in cell {err.cell_index} (execution count "
                    f"{err.exec_count}): {err.ename}: {err.evalue}\nThe partly executed notebook is "
                    f"kept at {target}; the previous report was left in place.") from None
            timings[path.name] = round(time.perf_counter() - start, 2)
    final = config.reports_dir() / "executed"
    shutil.rmtree(final, ignore_errors=True)
    executed.rename(final)
    info = {"title": REPORT_TITLE, "dataset": data.name, "requested_dataset": dataset,
            "source": data.source, "profile": profile, "seed": seed, "jobs": jobs,
            "notebooks": [p.name for p in paths], "seconds": timings,
            "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "git_commit": commit,
            "versions": versions()}
    write_json_atomic(config.reports_dir() / "run.json", info)
    return info


# --------------------------------------------------------------------------- merge

def _clean_outputs(cell) -> None:
    """Drop what must never reach the report: stderr streams and bare object reprs."""
    kept = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stderr":
            continue
        if out.output_type in ("execute_result", "display_data"):
            data = out.get("data", {})
            if set(data) == {"text/plain"} and _OBJECT_REPR.match(data["text/plain"].strip()):
                continue
        kept.append(out)
    cell["outputs"] = kept


def title_rows(info: dict) -> list[list[str]]:
    """The rows of the title page: what was run, on what data, with which software."""
    v = info.get("versions", {})
    software = ", ".join(f"{k} {v[k]}" for k in ("python", "scikit-learn", "tensorflow", "keras") if k in v)
    dataset = info["dataset"]
    if info.get("requested_dataset") == "auto":
        dataset += " (chosen by dataset=auto)"
    return [["Dataset", dataset], ["Source", info["source"]], ["Profile", info["profile"]],
            ["Seed", str(info["seed"])], ["Date", info["date"]],
            ["Git commit", info["git_commit"]], ["Software", software]]


def merge_notebooks(paths, info: dict):
    """One notebook from the executed chapters, with the run described in its metadata."""
    merged = nbformat.v4.new_notebook()
    for number, path in enumerate(paths, start=1):
        chapter = nbformat.read(str(path), as_version=4)
        if not merged.metadata:
            merged.metadata = copy.deepcopy(chapter.metadata)
        for index, cell in enumerate(chapter.cells):
            cell["id"] = f"c{number:02d}-{index:03d}"  # unique across chapters
            if cell.cell_type == "code":
                _clean_outputs(cell)
            merged.cells.append(cell)
    merged.metadata.pop("papermill", None)
    merged.metadata["title"] = info.get("title", REPORT_TITLE)
    merged.metadata["authors"] = [{"name": "mnistlab"}]
    merged.metadata["date"] = info["date"]
    merged.metadata["mnistlab"] = {"title_rows": title_rows(info)}
    return merged


def _for_pdf(merged, summary: str | None = None):
    """The PDF flavour: no Colab badges (remote images cannot be typeset), and the executive
    summary as an unnumbered first chapter."""
    pdf = copy.deepcopy(merged)
    for cell in pdf.cells:
        if cell.cell_type == "markdown":
            cell.source = _BADGE.sub("", cell.source)
    if summary:
        pdf.cells.insert(0, nbformat.v4.new_markdown_cell(f"# Executive summary {{-}}\n\n{summary}"))
    return pdf


def _for_html(merged, summary: str | None = None):
    html = copy.deepcopy(merged)
    rows = "\n".join(f"| {k} | {v} |" for k, v in merged.metadata["mnistlab"]["title_rows"])
    intro = f"# {merged.metadata['title']}\n\n| | |\n|---|---|\n{rows}\n"
    if summary:
        intro += f"\n## Executive summary\n\n{summary}"
    html.cells.insert(0, nbformat.v4.new_markdown_cell(intro))
    return html


def summary_markdown(info: dict) -> str | None:
    """The executive summary from this run's metrics files (None when there are none)."""
    from .results import executive_summary, load_metrics

    metrics = load_metrics()
    metrics = {name: m for name, m in metrics.items() if f"{name}.ipynb" in info["notebooks"]}
    return executive_summary(metrics, info) if metrics else None


def _write_atomic(path: Path, data: bytes | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def check_tex() -> None:
    missing = [tool for tool in ("xelatex", "pandoc") if shutil.which(tool) is None]
    if missing:
        raise MissingToolError(
            f"{' and '.join(missing)} not found: the PDF report needs TeX and pandoc. Install them "
            f"with `sudo apt-get install {TEX_PACKAGES}` (or run `make setup` as root), then run "
            f"`make report` again. The HTML report needs neither.")


def build_report(pdf: bool = True) -> dict:
    """Merge ``reports/executed/`` (in ``run.json``'s order) into report.html and report.pdf."""
    from nbconvert import HTMLExporter, PDFExporter
    from traitlets.config import Config

    reports = config.reports_dir()
    run_file = reports / "run.json"
    if not run_file.exists():
        raise FileNotFoundError(f"{run_file} not found: execute the notebooks first (`make notebooks`)")
    info = json.loads(run_file.read_text())
    paths = [reports / "executed" / name for name in info["notebooks"]]
    merged = merge_notebooks(paths, info)
    if pdf:
        check_tex()
    written = {}

    summary = summary_markdown(info)
    html_body, _ = HTMLExporter().from_notebook_node(_for_html(merged, summary))
    if pdf:
        cfg = Config()
        cfg.TemplateExporter.exclude_input = True
        cfg.TemplateExporter.exclude_input_prompt = True
        cfg.TemplateExporter.exclude_output_prompt = True
        exporter = PDFExporter(config=cfg, extra_template_paths=[str(TEMPLATES)],
                               template_file="mnistlab_report.tex.j2")
        pdf_bytes, _ = exporter.from_notebook_node(
            _for_pdf(merged, summary), resources={"metadata": {"name": "report", "path": str(reports)}})
        _write_atomic(reports / "report.pdf", pdf_bytes)
        written["pdf"] = str(reports / "report.pdf")
    _write_atomic(reports / "report.html", html_body)
    written["html"] = str(reports / "report.html")
    return written
