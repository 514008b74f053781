"""Faults a user meets, each answered with one sentence (what happened, what to do), a non-zero
exit and no traceback; where a run writes (its own folder unless it is the committed study) and
its lock; the data ``source`` line; the kernels' transport warning."""

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest
from conftest import REPO
from test_download import idx_bytes, synthetic_checksums, write_idx_dir  # noqa: F401  (a fixture)

from mnistlab import __main__ as cli
from mnistlab import config, data, runner


def cli_run(capsys, *args):
    """``python -m mnistlab ARGS`` in this process: (exit code, stdout, stderr)."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    """The error line, checked to be one line, one sentence, parentheses closed, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in err
    assert line.count("(") == line.count(")"), line
    assert ". " not in line.rstrip("."), line  # one sentence
    return line


# --------------------------------------------------------------------------- output folders


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository root of our own (no notebooks) whose committed study is MNIST, full."""
    root = tmp_path / "repo"
    (root / "reports").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "reports" / "run.json").write_text(json.dumps({"dataset": "mnist", "profile": "full"}))
    monkeypatch.setenv("MNISTLAB_ROOT", str(root))
    monkeypatch.delenv("MNISTLAB_OUTPUT")
    monkeypatch.setattr(config, "sample_dir", lambda: REPO / "data" / "sample")
    return root


def test_only_the_committed_study_writes_the_repository(repo, monkeypatch):
    assert config.run_output_dir("mnist", "full") == repo
    assert config.run_output_dir("auto", "quick") == repo / "runs" / "auto-quick"
    assert config.run_output_dir("mnist", "quick") == repo / "runs" / "mnist-quick"
    assert config.run_output_dir("auto", "full") == repo / "runs" / "auto-full"  # auto may be the sample
    monkeypatch.setenv("MNISTLAB_OUTPUT", str(repo / "elsewhere"))
    assert config.run_output_dir("mnist", "full") == repo / "elsewhere"  # MNISTLAB_OUTPUT wins
    assert config.run_output_dir("auto", "quick") == repo / "elsewhere"


def test_the_study_is_read_from_run_json(repo):
    (repo / "reports" / "run.json").write_text(json.dumps({"dataset": "fashion", "profile": "quick"}))
    assert config.study() == ("fashion", "quick")
    assert config.run_output_dir("fashion", "quick") == repo
    assert config.run_output_dir("mnist", "full") == repo / "runs" / "mnist-full"
    (repo / "reports" / "run.json").unlink()
    assert config.study() == config.STUDY == ("mnist", "full")


def test_the_committed_run_json_wins_over_one_a_run_rewrote(repo):
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "reports/run.json"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "study"], cwd=repo, check=True)
    (repo / "reports" / "run.json").write_text(json.dumps({"dataset": "mnist-sample", "profile": "quick"}))
    assert config.study() == ("mnist", "full")
    assert config.run_output_dir("mnist-sample", "quick") == repo / "runs" / "mnist-sample-quick"


def test_run_status_and_report_name_the_same_folder_and_leave_the_study_alone(repo, capsys, monkeypatch):
    study = (repo / "reports" / "run.json").read_text()
    args = ("--dataset", "mnist-sample", "--profile", "smoke")
    code, status_out, _ = cli_run(capsys, "status", *args)
    assert code == 0 and "output folder: runs/mnist-sample-smoke/ (this run's own folder" in status_out
    code, run_out, _ = cli_run(capsys, "run", *args)
    assert code == 0
    lines = run_out.strip().splitlines()
    assert lines[0].startswith("== output folder: runs/mnist-sample-smoke/")  # said at the start
    assert "runs/mnist-sample-smoke/reports/" in lines[-1]  # and at the end
    assert json.loads((repo / "runs" / "mnist-sample-smoke" / "reports" / "run.json").read_text())["complete"]

    from mnistlab import report

    rendered = []

    def build_report(pdf=True, dataset_profile=None):
        rendered.append(config.reports_dir())
        return {"html": config.reports_dir() / "report.html"}

    monkeypatch.setattr(report, "build_report", build_report)
    code, report_out, _ = cli_run(capsys, "report", *args)
    assert code == 0 and rendered == [repo / "runs" / "mnist-sample-smoke" / "reports"]
    assert "report of the run in runs/mnist-sample-smoke/" in report_out
    assert "wrote runs/mnist-sample-smoke/reports/report.html" in report_out
    assert (repo / "reports" / "run.json").read_text() == study  # the study untouched
    assert sorted(p.name for p in (repo / "reports").iterdir()) == ["run.json"]
    assert not (repo / "figures").exists()
    assert "MNISTLAB_OUTPUT" not in os.environ  # the run's folder does not leak into later calls

    code, out, _ = cli_run(capsys, "status", "--dataset", "mnist", "--profile", "full")
    assert "output folder: the repository's reports/ and figures/ (the committed study)" in out


def test_make_report_renders_the_run_it_made():
    dry = subprocess.run(
        ["make", "-n", "report", "DATASET=mnist-sample", "PROFILE=smoke"], capture_output=True, text=True, cwd=REPO
    ).stdout
    assert "-m mnistlab run --dataset mnist-sample --profile smoke" in dry
    assert "-m mnistlab report --dataset mnist-sample --profile smoke" in dry


def test_runs_folder_is_ignored_by_git():
    for path in ("runs/auto-quick/reports/run.json", "runs/x/figures/a.png", "reports/.run.lock"):
        result = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert result.returncode == 0, path


# --------------------------------------------------------------------------- the run lock


def test_a_second_run_on_one_folder_fails_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "notebooks_dir", lambda: tmp_path)  # no chapters: nothing slow if the lock fails
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom mnistlab import runner\n"
            "with runner.run_lock():\n    print('locked', flush=True)\n    sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.perf_counter()
        code, _, err = cli_run(capsys, "run", "--dataset", "mnist-sample", "--profile", "smoke")
        assert time.perf_counter() - start < 10
        line = one_sentence(err)
        assert code == 1
        assert f"another run (pid {holder.pid}) is using {config.output_dir()}/ right now" in line
        assert "MNISTLAB_OUTPUT=DIR" in line
        code, _, err = cli_run(capsys, "report", "--dataset", "mnist-sample", "--profile", "smoke")
        assert code == 1 and "another run" in one_sentence(err)
    finally:
        holder.communicate("")
    assert not (config.output_dir() / "reports" / "executed.partial").exists()
    with runner.run_lock():  # released when the holder ended
        pass


# --------------------------------------------------------------------------- faults


def test_truncated_sample_names_the_gzip_error_and_git_checkout(tmp_path, monkeypatch, capsys):
    for name in data.SAMPLE_FILES:
        shutil.copy(config.sample_dir() / name, tmp_path / name)
    images = tmp_path / data.SAMPLE_FILES[0]
    images.write_bytes(images.read_bytes()[:-1000])
    monkeypatch.setattr(config, "sample_dir", lambda: tmp_path)
    code, _, err = cli_run(capsys, "data", "--dataset", "mnist-sample", "--profile", "smoke")
    line = one_sentence(err)
    assert code == 1
    assert "is corrupted or truncated (Compressed file ended before the end-of-stream marker was reached)" in line
    assert "restore it with `git checkout -- data/sample/`" in line and "do not delete it" in line


def test_dataset_names_offered_are_the_names_accepted(capsys):
    offered = ", ".join(config.COURSE_DATASETS)
    assert "triplet-mnist" not in config.COURSE_DATASETS
    for command in ("run", "status", "report", "data", "bench"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        assert f"--dataset DATASET one of: {offered} (default: auto)" in help_text
    make_help = subprocess.run(["make", "-s"], capture_output=True, text=True, cwd=REPO).stdout
    assert f"[DATASET={'|'.join(config.COURSE_DATASETS)}]" in make_help
    for command in ("run", "status", "data"):
        code, _, err = cli_run(capsys, command, "--dataset", "triplet-mnist")
        assert code == 2
        assert one_sentence(err) == f"error: unknown dataset 'triplet-mnist'; choose one of: {offered}"
    for name in config.COURSE_DATASETS:
        runner._check_names(name, "smoke")  # everything offered is accepted by run and status


def test_unwritable_reports_folder_is_one_sentence(monkeypatch, capsys):
    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(runner, "_open_lock", refuse)
    for command in ("run", "report"):
        code, _, err = cli_run(capsys, command, "--dataset", "mnist-sample", "--profile", "smoke")
        line = one_sentence(err)
        assert code == 1
        assert f"cannot write to {config.output_dir()}/reports/ (Permission denied)" in line
        assert "MNISTLAB_OUTPUT=DIR" in line


def test_a_refused_move_names_its_target_not_the_staging_copy(monkeypatch, capsys):
    """A chapter's metrics are moved from the staging folder into reports/metrics/: when the move
    is refused, the folder to fix is the target's, which the message names."""
    staged, target = "reports/executed.partial/metrics/01.json", "reports/metrics/01.json"

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted", staged, None, target)

    monkeypatch.setattr(runner, "run_notebooks", refuse)
    code, _, err = cli_run(capsys, "run", "--dataset", "mnist-sample", "--profile", "smoke")
    line = one_sentence(err)
    assert code == 1 and f"Operation not permitted ({target})" in line and staged not in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_reports_folder_is_one_sentence(capsys):
    reports = config.reports_dir()
    reports.chmod(0o555)
    try:
        code, _, err = cli_run(capsys, "run", "--dataset", "mnist-sample", "--profile", "smoke")
    finally:
        reports.chmod(0o755)
    assert code == 1 and "(Permission denied)" in one_sentence(err)


def test_output_folder_that_is_a_file_is_one_sentence(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MNISTLAB_OUTPUT", str(tmp_path / "a-file"))
    code, _, err = cli_run(capsys, "run", "--dataset", "mnist-sample", "--profile", "smoke")
    assert code == 1 and "cannot write to" in one_sentence(err)


def test_data_cache_that_is_a_file(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "not-a-folder"
    cache.write_text("")
    monkeypatch.setenv("MNISTLAB_DATA", str(cache))
    code, _, err = cli_run(capsys, "data", "--dataset", "mnist", "--profile", "smoke")
    line = one_sentence(err)
    assert code == 1 and f"{cache} is a file, not a folder: point MNISTLAB_DATA at a folder" in line
    code, out, _ = cli_run(capsys, "data", "--dataset", "auto", "--profile", "smoke")  # falls back, loudly
    assert code == 0
    assert "*** dataset='auto' chose 'mnist-sample'" in out and "is a file, not a folder" in out
    assert "mnist-sample: 600 training" in out
    source = write_idx_dir(tmp_path / "mine")
    code, _, err = cli_run(capsys, "data", "--import", str(source))
    assert code == 1 and "is a file, not a folder" in one_sentence(err)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_cached_files_follow_the_umask(tmp_path, synthetic_checksums, umask):  # noqa: F811
    old = os.umask(umask)
    try:
        data.import_files(write_idx_dir(tmp_path / "mine"))
    finally:
        os.umask(old)
    for path in data.cache_dir("mnist").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


def test_downloaded_files_are_readable_by_others(http_server):
    root, url = http_server
    payload = gzip.compress(b"payload")
    (root / "f.gz").write_bytes(payload)
    old = os.umask(0o022)
    try:
        dest = data.download(url + "f.gz", data.cache_dir("mnist") / "f.gz", hashlib.sha256(b"payload").hexdigest())
    finally:
        os.umask(old)
    assert dest.stat().st_mode & 0o777 == 0o644


def test_import_copies_through_the_one_atomic_helper(tmp_path, synthetic_checksums, monkeypatch):  # noqa: F811
    used = []
    real = data.atomic_path

    def spy(path):
        used.append(path.name)
        return real(path)

    monkeypatch.setattr(data, "atomic_path", spy)
    data.import_files(write_idx_dir(tmp_path / "mine"))
    assert sorted(used) == sorted(f"{stem}.gz" for stem in data.IDX_FILES)


def test_import_folder_missing_or_a_file(tmp_path, capsys):
    code, _, err = cli_run(capsys, "data", "--import", str(tmp_path / "nowhere"))
    assert code == 1 and f"{tmp_path / 'nowhere'} does not exist" in one_sentence(err)
    (tmp_path / "file").write_text("")
    code, _, err = cli_run(capsys, "data", "--import", str(tmp_path / "file"))
    assert code == 1 and "is a file, not a folder" in one_sentence(err)


def test_only_with_an_unknown_prefix_names_the_chapters(capsys):
    prefixes = ", ".join(p.name[:2] for p in runner.notebook_paths())
    code, out, err = cli_run(capsys, "run", "--dataset", "mnist-sample", "--only", "99")
    line = one_sentence(err)
    assert code == 2 and "[" not in line
    assert line.startswith(f"error: no chapter starts with '99'; the chapters are {prefixes}")
    assert out == ""  # refused before anything was said or written
    assert not config.output_dir().exists()


def test_only_needs_two_digit_chapters(capsys):
    code, out, err = cli_run(capsys, "run", "--dataset", "mnist-sample", "--only", "1")
    assert code == 2 and "give chapters by their two-digit number, 01, 02" in one_sentence(err) and out == ""
    with pytest.raises(SystemExit) as stopped:  # a bare --only is refused, not taken as "every chapter"
        cli.main(["run", "--dataset", "mnist-sample", "--only"])
    assert stopped.value.code == 2 and "expected at least one argument" in capsys.readouterr().err


def test_report_of_a_run_never_made_names_its_command(capsys):
    code, _, err = cli_run(capsys, "report", "--dataset", "fashion", "--profile", "smoke", "--no-pdf")
    line = one_sentence(err)
    assert code == 1 and "never executed" in line and "`make notebooks DATASET=fashion PROFILE=smoke`" in line


def test_report_with_an_unreadable_chapter_is_one_sentence_and_keeps_the_report(capsys):
    reports = config.output_dir() / "reports"
    (reports / "executed").mkdir(parents=True)
    run = {"dataset": "mnist-sample", "profile": "smoke", "complete": True, "notebooks": ["01_data_exploration.ipynb"]}
    (reports / "run.json").write_text(json.dumps(run))
    (reports / "report.html").write_text("the previous report")
    for broken in ('{\n "cells": [', "{}"):  # cut short; JSON but no notebook
        (reports / "executed" / "01_data_exploration.ipynb").write_text(broken)
        code, _, err = cli_run(capsys, "report", "--dataset", "mnist-sample", "--profile", "smoke", "--no-pdf")
        line = one_sentence(err)
        assert code == 1 and "01_data_exploration.ipynb cannot be read" in line
        assert "`make notebooks DATASET=mnist-sample PROFILE=smoke ONLY=01`" in line
        assert (reports / "report.html").read_text() == "the previous report"


def test_ctrl_c_and_a_closed_pipe_are_not_tracebacks(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_notebooks", interrupted)
    code, _, err = cli_run(capsys, "run", "--dataset", "mnist-sample", "--profile", "smoke")
    assert code == 130 and "Traceback" not in err
    assert err.strip().startswith("stopped:") and "run the same command again" in err

    def closed(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(runner, "status", closed)
    code, _, err = cli_run(capsys, "status", "--dataset", "mnist-sample", "--profile", "smoke")
    assert code == 1 and err == ""  # `status | head -1`: nothing to say to a reader that went away


# --------------------------------------------------------------------------- the source line

ABSOLUTE = re.compile(r"(?:^|[\s(])/\w")


def test_source_names_no_folder_of_this_machine(tmp_path, synthetic_checksums, monkeypatch):  # noqa: F811
    source = write_idx_dir(tmp_path / "my" / "files")
    data.import_files(source)
    origins = json.loads((data.cache_dir("mnist") / data.ORIGINS).read_text())
    assert all(str(source) in origin for origin in origins.values())  # the cache keeps the provenance
    line = data.load_dataset("mnist", "full").source
    assert "imported from a local folder" in line and "in the cache $MNISTLAB_DATA/mnist," in line
    assert not ABSOLUTE.search(line) and str(tmp_path) not in line
    assert not ABSOLUTE.search(data.load_dataset("mnist-sample", "smoke").source)
    monkeypatch.setattr(config, "repo_root", lambda: tmp_path)  # now the cache is inside the repository
    line = data.load_dataset("mnist", "full").source
    assert "in the cache cache/mnist," in line and not ABSOLUTE.search(line)


# --------------------------------------------------------------------------- the kernels


def test_kernels_do_not_warn_about_unencrypted_tcp(tmp_path, monkeypatch, capfd):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("print('x is', x)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(notebooks / "01_tiny.ipynb"))
    monkeypatch.setattr(config, "notebooks_dir", lambda: notebooks)
    runner.run_notebooks("mnist-sample", "smoke", progress=False)
    captured = capfd.readouterr()
    executed = nbformat.read(str(config.reports_dir() / "executed" / "01_tiny.ipynb"), 4)
    streams = [o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert "x is 1\n" in streams
    for text in (*streams, captured.out, captured.err):
        assert "without encryption" not in text
