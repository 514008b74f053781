"""`make colab-check`: run every notebook as a learner would in Google Colab, in an emulated runtime.

1. A Python 3.13 virtual environment (build/colab-venv) with Colab's versions pinned
   (scripts/colab/runtime.txt) and a stub ``google.colab`` module, so ``IS_COLAB`` is true.
2. For each notebook, in a fresh state (the course package uninstalled, /content/mnistlab
   removed): papermill runs it on that environment's kernel in the smoke profile on the bundled
   sample. Its own setup cell clones the repository, redirected to this checkout's committed HEAD
   with ``MNISTLAB_REPO_URL``, and installs the package with ``%pip``.
3. It passes when every chapter ran and the install cell changed no preinstalled package's
   version (``pip freeze`` before and after: the only new distribution is mnistlab).

Usage: ``python scripts/colab/check.py [--python PATH] [--only 01 05]``. Needs Python 3.13 (found
under pyenv, or pass ``--python``) and network access to the package index for the first build.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = Path(__file__).with_name("runtime.txt")
VENV = ROOT / "build" / "colab-venv"
KERNEL_DIR = ROOT / "build" / "colab-kernel"
KERNEL = "colab-emulated"
CLONE = Path("/content/mnistlab")  # where the notebooks' setup cell clones the course, as in Colab
STUB = '"""Stand-in for Colab\'s google.colab module (make colab-check)."""\n'
STUB_VERSION = "# stub 2: google.colab.output\n"  # change it to rebuild the runtime


def find_python(given: str | None) -> str:
    candidates = [given] if given else sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python")))
    candidates += [shutil.which("python3.13")] if not given else []
    for candidate in filter(None, candidates):
        if Path(candidate).exists():
            return candidate
    sys.exit(
        "error: make colab-check needs Python 3.13 (Colab's version). Install it (pyenv install 3.13, "
        "or your system's python3.13) or pass PYTHON313=/path/to/python3.13."
    )


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], check=True, text=True, **kwargs)


def build_runtime(python: str) -> None:
    """Create the emulated runtime once (again when runtime.txt changes)."""
    stamp = VENV / ".runtime.txt"
    if stamp.exists() and stamp.read_text() == RUNTIME.read_text() + STUB_VERSION:
        return
    shutil.rmtree(VENV, ignore_errors=True)
    print(
        f"building the emulated Colab runtime in {VENV.relative_to(ROOT)} (Python 3.13, {RUNTIME.name}) ...", flush=True
    )
    run(python, "-m", "venv", VENV)
    pip = VENV / "bin" / "pip"
    run(pip, "install", "-q", "-r", RUNTIME)
    site = run(
        VENV / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", capture_output=True
    ).stdout.strip()
    stub = Path(site) / "google" / "colab"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text(STUB)
    (stub / "output.py").write_text('"""Stand-in for google.colab.output (JAX imports it in Colab)."""\n')
    (stub.parent / "__init__.py").touch()
    # Colab's kernel has google.colab imported at start-up: that is what the notebooks test.
    (Path(site) / "google_colab_stub.pth").write_text("import google.colab\n")
    run(
        VENV / "bin" / "python",
        "-m",
        "ipykernel",
        "install",
        "--prefix",
        KERNEL_DIR,
        "--name",
        KERNEL,
        "--display-name",
        "Colab (emulated)",
        stdout=subprocess.DEVNULL,
    )
    stamp.write_text(RUNTIME.read_text() + STUB_VERSION)


def freeze() -> dict[str, str]:
    lines = run(VENV / "bin" / "python", "-m", "pip", "freeze", "--all", capture_output=True).stdout.splitlines()
    found = {}
    for line in lines:
        if "==" in line:
            name, version = line.split("==", 1)
        elif " @ " in line or line.startswith("-e "):
            name, version = line.removeprefix("-e ").split(" @ ")[0].split("#egg=")[-1], "local"
        else:
            continue
        found[name.lower().replace("_", "-")] = version
    return found


def check_notebook(path: Path, out: Path) -> tuple[bool, str]:
    import nbformat
    import papermill as pm

    subprocess.run([VENV / "bin" / "python", "-m", "pip", "uninstall", "-q", "-y", "mnistlab"], capture_output=True)
    shutil.rmtree(CLONE, ignore_errors=True)
    CLONE.parent.mkdir(parents=True, exist_ok=True)
    before = freeze()
    try:
        pm.execute_notebook(
            str(path),
            str(out / path.name),
            kernel_name=KERNEL,
            progress_bar=False,
            parameters={"dataset": "mnist-sample", "profile": "smoke", "seed": 0, "n_jobs": 2},
            cwd=str(CLONE.parent),
        )
    except pm.PapermillExecutionError as err:
        return False, f"failed in cell {err.cell_index}: {err.ename}: {err.evalue}"
    executed = nbformat.read(str(out / path.name), as_version=4)
    setup = next(c for c in executed.cells if c.cell_type == "code")
    for output in setup.get("outputs", []):
        for line in output.get("text", "").splitlines():
            if line.startswith(("Running with", "No GPU", "Training on")):
                print(f"     {path.name}: {line}", flush=True)
    after = freeze()
    changed = [
        f"{name} {version} -> {after.get(name, 'removed')}"
        for name, version in before.items()
        if after.get(name) != version
    ]
    added = sorted(set(after) - set(before) - {"mnistlab"})
    if changed or added or "mnistlab" not in after:
        return False, (
            f"the install cell changed Colab's packages: changed {changed or 'none'}, added "
            f"{added or 'none'}, mnistlab {'installed' if 'mnistlab' in after else 'NOT installed'}"
        )
    return True, "ran; install cell added mnistlab only"


def check_jax_loop(out: Path) -> tuple[bool, str]:
    """The compiled JAX loop with Colab's JAX and Keras, on the CPU: the cases of
    tests/jax_cases.py (members together = alone, same seed same numbers, save and reload)."""
    import json

    result = out / "jax_cases.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [VENV / "bin" / "python", ROOT / "tests" / "jax_cases.py", result], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        return False, "failed: " + (done.stderr.strip().splitlines() or ["no output"])[-1]
    cases = json.loads(result.read_text())
    good = (
        cases["together_vs_alone_max_diff"] < 1e-4 and cases["rerun_max_diff"] == 0 and cases["reload_max_diff"] < 1e-6
    )
    versions = run(
        VENV / "bin" / "python",
        "-c",
        "import jax, keras; print(jax.__version__, keras.__version__)",
        capture_output=True,
    ).stdout.split()
    return good, f"jax {versions[0]}, keras {versions[1]}: " + ", ".join(
        f"{k} {cases[k]:.2g}" for k in ("together_vs_alone_max_diff", "rerun_max_diff", "reload_max_diff")
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=os.environ.get("PYTHON313") or None, help="a Python 3.13 interpreter")
    parser.add_argument("--only", nargs="*", help="notebook name prefixes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    build_runtime(find_python(args.python))
    print(f"runtime ready ({time.perf_counter() - start:.0f} s)", flush=True)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [p for p in notebooks if any(p.name.startswith(o) for o in args.only)]
    head = run("git", "-C", ROOT, "rev-parse", "--short", "HEAD", capture_output=True).stdout.strip()
    print(f"cloning from file://{ROOT} (committed HEAD {head}) in each setup cell", flush=True)
    env = {
        "MNISTLAB_REPO_URL": f"file://{ROOT}",
        "JUPYTER_PATH": str(KERNEL_DIR / "share" / "jupyter"),
        "MNISTLAB_NO_PROGRESS": "1",
        "PYTHONWARNINGS": "ignore",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    os.environ.update(env)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        os.environ["MNISTLAB_OUTPUT"] = tmp
        for path in notebooks:
            t0 = time.perf_counter()
            ok, message = check_notebook(path, Path(tmp))
            failures += not ok
            print(
                f"{'ok  ' if ok else 'FAIL'} {path.name:<32} {time.perf_counter() - t0:6.1f} s  {message}", flush=True
            )
        t0 = time.perf_counter()
        ok, message = check_jax_loop(Path(tmp))
        failures += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {'JAX training loop (CPU)':<32} {time.perf_counter() - t0:6.1f} s  {message}"
        )
    shutil.rmtree(CLONE, ignore_errors=True)
    print(
        f"{len(notebooks) - failures} of {len(notebooks)} notebooks passed in the emulated Colab runtime "
        f"({time.perf_counter() - start:.0f} s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
