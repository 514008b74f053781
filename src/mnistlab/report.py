"""Merge the executed chapters with nbformat, render HTML and PDF with nbconvert.

:mod:`mnistlab.runner` writes ``reports/executed/*.ipynb`` and ``reports/run.json``; this
turns them into ``reports/report.html`` (with code) and ``reports/report.pdf`` (without code).
Both files are replaced atomically, and only once everything before them succeeded, so a
failed run leaves the previous report in place.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import nbformat

from . import config
from .evaluation import atomic_path
from .runner import REPORT_TITLE, NotebookFailed, left_out_text, make_command

TEMPLATES = Path(__file__).parent / "templates"
TEX_PACKAGES = "texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc"
_BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)\s*")
_OUTPUT_HEADING = re.compile(r"^#(#+ )", re.M)
_BADGE_LINK = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\(([^)]*)\)")
#: A word or phrase in straight single quotes ('ovo', 'not positive'), not an apostrophe (it's).
_SINGLE_QUOTED = re.compile(r"(?<![\w'])'([^'\s][^'\n]*?)'(?!\w)")
_OBJECT_REPR = re.compile(r"^<[\w.]+(\s.*)?(at 0x[0-9a-f]+|size \d+x\d+ with \d+ Axes)>$", re.S)


class MissingToolError(RuntimeError):
    """xelatex or pandoc is not installed; the message gives the install command."""


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


def shown_commit(commit: str) -> str:
    """A git commit as the title page shows it: "unknown" is stored when a run had no git
    history (a copy on a GPU machine, say)."""
    return "not recorded" if commit == "unknown" else commit


def title_rows(info: dict) -> list[list[str]]:
    """The rows of the title page: what was run, on what data, with which software."""
    v = info.get("versions", {})
    software = ", ".join(
        f"{k} {v[k]}" for k in ("python", "scikit-learn", "tensorflow", "keras", "keras backend") if k in v
    )
    dataset = info["dataset"]
    if info.get("requested_dataset") == "auto":
        dataset += " (chosen by dataset=auto)"
    rows = [
        ["Dataset", dataset],
        ["Source", info["source"]],
        ["Profile", info["profile"]],
        ["Seed", str(info["seed"])],
        ["Date", info["date"]],
        ["Git commit", shown_commit(info["git_commit"])],
    ]
    chapters = info.get("chapters", {})
    reused = {name: c for name, c in chapters.items() if c.get("reused")}
    if reused:
        when = sorted({c["executed"][:10] for c in reused.values()})
        commits = sorted({shown_commit(c["git_commit"]) for c in reused.values()})
        rows.append(
            [
                "Chapters",
                f"{len(chapters) - len(reused)} executed in this run, {len(reused)} reused "
                f"from the execution cache (executed {', '.join(when)}, commit "
                f"{', '.join(commits)}, same inputs)",
            ]
        )
    if info.get("left_out"):
        rows.append(["Left out", left_out_text(info).replace("`", "")])  # no code quotes on the title page
    if reused:
        software += " (of the run that built this report; each chapter names its own device and backend)"
    return rows + [["Software", software]]


def merge_notebooks(paths, info: dict):
    """One notebook from the executed chapters, with the run described in its metadata."""
    merged = nbformat.v4.new_notebook()
    for position, path in enumerate(paths, start=1):
        number = int(path.name[:2]) if path.name[:2].isdigit() else position  # 07_… is chapter 7, also alone
        try:
            chapter = nbformat.read(str(path), as_version=4)
        except FileNotFoundError:
            raise NotebookFailed(
                f"the executed chapter {config.shown_path(path)} is missing, though run.json lists it: "
                f"execute it again with {rerun_command(info, path.name[:2])}; the previous report was left in place."
            ) from None
        except (ValueError, KeyError, AttributeError, nbformat.ValidationError) as err:  # not JSON, not a notebook
            raise NotebookFailed(
                f"the executed chapter {config.shown_path(path)} cannot be read ({type(err).__name__}): "
                f"execute it again with {rerun_command(info, path.name[:2])}; the previous report was left in place."
            ) from None
        if not merged.metadata:
            merged.metadata = copy.deepcopy(chapter.metadata)
        heading = next((c for c in chapter.cells if c.cell_type == "markdown" and c.source.startswith("# ")), None)
        if heading is not None:  # the PDF and the HTML number the chapter by its notebook, not its place here
            heading.metadata["mnistlab_chapter"] = number
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
    """The PDF flavour: no Colab badges (remote images cannot be typeset), no printed text (logs,
    progress; the HTML keeps it), quoted words in tables opened with ‘ (LaTeX prints a straight
    quote as ’), the executive summary as an unnumbered first chapter, and each chapter numbered
    as its notebook (a report of chapters 5 and 7 has no chapter 1)."""
    pdf = copy.deepcopy(merged)
    numbered = [i for i, c in enumerate(pdf.cells) if "mnistlab_chapter" in c.metadata]
    for i in reversed(numbered):
        counter = f"\\setcounter{{chapter}}{{{pdf.cells[i].metadata['mnistlab_chapter'] - 1}}}"
        pdf.cells.insert(i, nbformat.v4.new_raw_cell(counter, metadata={"raw_mimetype": "text/latex"}, id=f"n{i}"))
    for cell in pdf.cells:
        if cell.cell_type == "markdown":
            cell.source = _BADGE.sub("", cell.source)
        else:  # printed text is progress and logs; results are shown as Markdown, tables and figures
            cell["outputs"] = [o for o in cell.get("outputs", []) if o.output_type != "stream"]
            for output in cell["outputs"]:  # a heading shown by a cell sits one level deeper in LaTeX
                if "text/markdown" in output.get("data", {}):
                    output.data["text/markdown"] = _OUTPUT_HEADING.sub(r"\1", output.data["text/markdown"])
                if "text/latex" in output.get("data", {}):  # tables: LaTeX would print 'ovo' as ’ovo’
                    output.data["text/latex"] = _SINGLE_QUOTED.sub(r"`\1'", output.data["text/latex"])
    if summary:
        pdf.cells.insert(0, nbformat.v4.new_markdown_cell(f"# Executive summary {{-}}\n\n{summary}", id="summary"))
    return pdf


def _for_html(merged, summary: str | None = None):
    """The HTML flavour: a title block, a table of contents linking every chapter and section,
    the executive summary, and Colab links as plain links (no remote images: it works offline)."""
    html = copy.deepcopy(merged)
    toc, chapter = [], 0
    for cell in html.cells:
        if cell.cell_type != "markdown":
            continue
        cell.source = _BADGE_LINK.sub(r"[Open this chapter in Colab](\1)", cell.source)
        lines = []
        for line in cell.source.splitlines():
            if line.startswith("# "):
                chapter = cell.metadata.get("mnistlab_chapter", chapter + 1)
                anchor, section = f"chapter-{chapter}", 0
                toc.append(f"{chapter}. [{line[2:].strip()}](#{anchor})")
            elif line.startswith("## ") and chapter:
                section += 1
                anchor = f"chapter-{chapter}-{section}"
                toc.append(f"    - [{line[3:].strip()}](#{anchor})")
            else:
                lines.append(line)
                continue
            lines += [f'<a id="{anchor}"></a>', "", line]
        cell.source = "\n".join(lines)
    rows = "\n".join(f"| {k} | {v} |" for k, v in merged.metadata["mnistlab"]["title_rows"])
    intro = f"# {merged.metadata['title']}\n\n| | |\n|---|---|\n{rows}\n\n**Contents**\n\n" + "\n".join(toc) + "\n"
    if summary:
        intro += f"\n## Executive summary\n\n{summary}"
    html.cells.insert(0, nbformat.v4.new_markdown_cell(intro, id="intro"))  # a fixed id: the same HTML each time
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
            f"`make report` again. The HTML report needs neither."
        )


def rerun_command(run: dict, only: str | None = None) -> str:
    """The command that executes ``run``'s chapters (``run``: its ``run.json``, or just its
    ``dataset`` and ``profile``; the chapters of its ``--only``, if it had one), or only chapter
    ``only``, in its own output folder."""
    return make_command(run, "notebooks", [only] if only else run.get("only", []))


def build_report(pdf: bool = True, dataset_profile: dict | None = None) -> dict:
    """Merge ``reports/executed/`` (in ``run.json``'s order) into report.html and report.pdf.
    ``dataset_profile`` (``{"dataset": …, "profile": …}``) names the run in messages when it has
    no ``run.json`` yet."""
    dataset_profile = dataset_profile or {}
    from nbconvert import HTMLExporter, PDFExporter
    from traitlets.config import Config

    reports = config.reports_dir()
    run_file = reports / "run.json"
    if not run_file.exists():
        raise FileNotFoundError(
            f"{config.shown_path(run_file)} not found: this run was never executed; execute its chapters first "
            f"({rerun_command(dataset_profile)})"
        )
    try:
        info = json.loads(run_file.read_text())
        info["notebooks"]  # noqa: B018  (the chapters it lists)
    except (ValueError, TypeError, KeyError) as err:  # truncated, not JSON, or not a run's record
        raise NotebookFailed(
            f"{config.shown_path(run_file)} cannot be read ({type(err).__name__}): the run that wrote it was cut "
            f"short; execute the chapters again with {rerun_command(dataset_profile)} (finished chapters are "
            "reused); the previous report was left in place."
        ) from None
    if not info.get("complete", True):
        raise NotebookFailed(
            f"the last run stopped before every chapter was up to date ({config.shown_path(run_file)}): "
            f"run {rerun_command(info)} again (finished chapters are reused); the previous report was left in place."
        )
    if info.get("left_out") and config.output_dir() == config.repo_root():
        raise NotebookFailed(
            f"the committed study's report would lack {left_out_text(info)} (the whole course, with "
            f"{make_command(info, 'report')}, leaves none out); the previous report was left in place."
        )
    paths = [reports / "executed" / name for name in info["notebooks"]]
    merged = merge_notebooks(paths, info)
    if pdf:
        check_tex()
    written = {}

    summary = summary_markdown(info)
    html_body, _ = HTMLExporter(
        extra_template_paths=[str(TEMPLATES)], template_file="mnistlab_report.html.j2", embed_images=True
    ).from_notebook_node(_for_html(merged, summary))
    if pdf:
        cfg = Config()
        cfg.TemplateExporter.exclude_input = True
        cfg.TemplateExporter.exclude_input_prompt = True
        cfg.TemplateExporter.exclude_output_prompt = True
        cfg.PDFExporter.raw_mimetypes = ["text/latex"]  # _for_pdf's chapter counters
        exporter = PDFExporter(
            config=cfg, extra_template_paths=[str(TEMPLATES)], template_file="mnistlab_report.tex.j2"
        )
        pdf_bytes, _ = exporter.from_notebook_node(
            _for_pdf(merged, summary), resources={"metadata": {"name": "report", "path": str(reports)}}
        )
        _write_atomic(reports / "report.pdf", pdf_bytes)
        written["pdf"] = str(reports / "report.pdf")
    _write_atomic(reports / "report.html", html_body)
    written["html"] = str(reports / "report.html")
    return written
