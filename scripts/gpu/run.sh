#!/usr/bin/env bash
# Runs ON the GPU machine (device kind nvidia-h200: Python 3.12 with JAX, no Keras, no papermill,
# no internet), in the repository root of the copy the device `run` tool sends. Three steps:
#   (a) install the carried wheels (.whl/, made here by `make gpu-kit`) into /tmp/site with
#       --no-deps and check that nothing they need is missing;
#   (b) execute the chosen chapters through the execution cache with KERAS_BACKEND=jax into an
#       output folder on the machine (MNISTLAB_OUTPUT), seeded with this checkout's executed
#       chapters when the run is of the committed study, so unchosen chapters stay up to date
#       and the results chapter reads every chapter's metrics; optionally time the bench's
#       recipes (time to accuracy);
#   (c) pack what this run wrote (executed chapters, metrics, figures, run.json, the bench's
#       JSON, a log) into ONE tarball, $OUT/mnistlab-gpu.tar.gz, for scripts/gpu/unpack.sh here.
# Each step is bounded by --budget (seconds from the start, default 510): a chapter still
# running then is interrupted, and what finished before it is packed all the same.
#
# The device call (carry the wheels and the MNIST cache; 16 cores):
#   run(command="bash scripts/gpu/run.sh --only 05 07", carry=[".whl", "data/raw/mnist"], timeout_s=600)
# (data/raw/mnist: the MNIST cache that `make data` filled; carry takes ignored paths, and data/raw
# itself is not one, only what is in it)
# A session is lent 15 minutes of device time in all, the machine's start (a minute or more)
# included, and none is started with under 4 left: plan on ONE such call, its chapters fitting
# the budget (on an H100 before the compiled JAX loop, chapters 5 and 8 took 6 and 6.5 minutes).
# Emulated on 2 CPU cores (Python 3.12, JAX on the CPU): chapters 05-10 in smoke, 8.5 min.
#
# Options:
#   --only NN [NN ...]   chapters by name prefix (default: none; give chapters, or --bench)
#   --dataset NAME       default mnist        --profile NAME   default full
#   --jobs N             default 16           --force          re-execute chapters up to date
#   --bench              also time the bench's time-to-accuracy recipes (after the chapters)
#   --recipe TEXT        with --bench: only the recipes whose name contains TEXT (repeatable)
#   --bench-max-train N  with --bench: train on the first N training images only (a quick check)
#   --budget SECONDS     stop the chapters and the bench this long after the start (default 510)
#   --no-seed            start from an empty output folder (no executed chapters copied in)
# Environment: OUT (the folder that comes back; default /tmp/mnistlab-gpu-out), PYTHON (default python3),
# MNISTLAB_OUTPUT (default /tmp/mnistlab-gpu), KERAS_BACKEND (default jax),
# XLA_PYTHON_CLIENT_PREALLOCATE (default false: processes that import JAX share the GPU).
set -uo pipefail
start=$SECONDS
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root" || exit 1

only=() dataset=mnist profile=full jobs=16 force="" bench="" recipes=() budget=510 seed_study=1 bench_max_train=0
while (($#)); do
    case "$1" in
    --only)
        shift
        while (($#)) && [[ "$1" != --* ]]; do only+=("$1"); shift; done
        continue
        ;;
    --dataset) dataset="$2"; shift ;;
    --profile) profile="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    --force) force=--force ;;
    --bench) bench=1 ;;
    --recipe) recipes+=("$2"); shift ;;
    --budget) budget="$2"; shift ;;
    --bench-max-train) bench_max_train="$2"; shift ;;
    --no-seed) seed_study="" ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    [0-9]*) only+=("$1") ;;  # bare chapter prefixes: run.sh 05 07
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if ((${#only[@]} == 0)) && [[ -z "$bench" ]]; then
    echo "run.sh: name chapters (--only 05 07) and/or --bench" >&2
    exit 2
fi

OUT="${OUT:-/tmp/mnistlab-gpu-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
export MNISTLAB_OUTPUT="${MNISTLAB_OUTPUT:-/tmp/mnistlab-gpu}"
export MNISTLAB_JAX_CACHE="${MNISTLAB_JAX_CACHE:-/tmp/mnistlab-jax-cache}"
PY="${PYTHON:-python3}"
log="$OUT/run.log"
: >"$log"
exec > >(tee -a "$log") 2>&1

say() { printf '[%4ds] %s\n' "$((SECONDS - start))" "$*"; }
left() { echo $((budget - (SECONDS - start))); }

say "mnistlab GPU run: chapters ${only[*]:-none}, dataset $dataset, profile $profile, jobs $jobs${force:+, forced}${bench:+, bench}; budget ${budget}s"
say "output folder $MNISTLAB_OUTPUT; back here: $OUT/mnistlab-gpu.tar.gz"

# ---------------------------------------------------------------- (a) wheels
site=/tmp/site
if compgen -G ".whl/*.whl" >/dev/null; then
    # lanes.sh starts several of these at once: one installs, the others wait and reuse it
    exec 9>/tmp/mnistlab-site.lock
    flock 9
    if [[ "$(cat "$site/.wheels" 2>/dev/null)" != "$(ls .whl)" ]]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl ||
            { say "pip could not install the wheels in .whl/"; exit 1; }
        ls .whl >"$site/.wheels"
        say "installed $(ls .whl/*.whl | wc -l) wheels into $site"
    else
        say "the wheels in .whl/ are already installed in $site"
    fi
    flock -u 9
else
    say "no .whl/ here: was it in carry? (make gpu-kit makes it; carry [\".whl\", \"data/raw/mnist\"])"
    mkdir -p "$site"
fi
export PYTHONPATH="$site:$root/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" scripts/gpu/check_deps.py "$site" || { say "missing packages: add them to scripts/gpu/wheels.txt"; exit 1; }
"$PY" - <<'EOF' || { say "the kit does not import: see above"; exit 1; }
import platform
from importlib import metadata

import jax
import keras
import papermill  # noqa: F401
from jupyter_client.kernelspec import KernelSpecManager

versions = ", ".join(
    f"{n} {metadata.version(n)}" for n in ("numpy", "jax", "jaxlib", "keras", "papermill", "ipykernel", "scikit-learn")
)
print(f"Python {platform.python_version()}: {versions}; Keras backend {keras.backend.backend()}")
print(f"JAX devices: {jax.devices()}; kernels: {sorted(KernelSpecManager().get_all_specs())}")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# ---------------------------------------------------------------- (b) chapters
if [[ "$dataset" != mnist-sample ]] && ! compgen -G "data/raw/*/*.gz" >/dev/null; then
    say "warning: no data in data/raw/: carry it ([\".whl\", \"data/raw/mnist\"]); there is no internet to download it"
fi
mkdir -p "$MNISTLAB_OUTPUT/reports" "$MNISTLAB_OUTPUT/figures"
study=$("$PY" -c 'import json,sys; i=json.load(open("reports/run.json")); print(i["dataset"], i["profile"])' 2>/dev/null)
if [[ -n "$seed_study" && "$study" == "$dataset $profile" && -d reports/executed ]]; then
    cp -r reports/executed reports/metrics "$MNISTLAB_OUTPUT/reports/"
    say "seeded $MNISTLAB_OUTPUT/reports with this checkout's executed chapters ($study): only stale chapters run"
fi
stamp="$MNISTLAB_OUTPUT/.gpu-run-start"
touch "$stamp"
sleep 1  # what is newer than the stamp is this run's: that is what gets packed
status=0
if ((${#only[@]})); then
    say "python -m mnistlab run --dataset $dataset --profile $profile --jobs $jobs --only ${only[*]} $force"
    timeout --signal=INT --kill-after=30 "$(left)" \
        "$PY" -m mnistlab run --dataset "$dataset" --profile "$profile" --jobs "$jobs" --only "${only[@]}" $force
    status=$?
    ((status == 124)) && say "stopped: the budget of ${budget}s ran out (chapters finished before that are packed)"
    "$PY" - "$MNISTLAB_OUTPUT/reports/run.json" <<'EOF'
import json
import sys

try:
    info = json.load(open(sys.argv[1]))
except OSError:
    sys.exit("no run.json: no chapter finished")
for name, c in info["chapters"].items():
    shown = "reused (up to date)" if c["reused"] else "%8.1f s" % c["seconds"]
    print(f"  {name:<32} {shown}")
print(f"  {'executed here':<32} {sum(c['seconds'] for c in info['chapters'].values() if not c['reused']):8.1f} s"
      f"{'' if info['complete'] else ' (run incomplete)'}")
EOF
fi

# ---------------------------------------------------------------- (b') bench
if [[ -n "$bench" ]] && (($(left) > 30)); then
    say "time to accuracy on $dataset: ${recipes[*]:-every recipe} (budget $(left)s)"
    timeout --signal=INT --kill-after=30 "$(left)" "$PY" - "$dataset" "$bench_max_train" "${recipes[@]}" <<'EOF'
import datetime
import sys

from mnistlab import bench, config, networks
from mnistlab.evaluation import write_json_atomic
from mnistlab.results import bench_block
from mnistlab.runner import git_commit, versions

dataset, max_train, wanted = sys.argv[1], int(sys.argv[2]) or None, sys.argv[3:]
everything = bench.default_recipes(networks.setup_device()["gpu"])  # GPU_RECIPES on the GPU
recipes = {k: v for k, v in everything.items() if not wanted or any(w in k for w in wanted)}
if not recipes:
    sys.exit(f"no recipe matches {wanted}: {list(everything)}")
tta = bench.time_to_accuracy(recipes, dataset, max_train=max_train)
# shaped like reports/bench.json, so results.bench_block renders it (unpack.sh prints it here)
record = {
    "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    "git_commit": git_commit(),
    "versions": versions(),
    "time_to_accuracy": tta,
}
path = write_json_atomic(config.reports_dir() / "time_to_accuracy.json", record)
print(bench_block(record))
print(f"wrote {path}")
EOF
    rc=$?
    ((rc == 124)) && say "bench stopped: the budget ran out"
    ((rc != 0 && status == 0)) && status=$rc
elif [[ -n "$bench" ]]; then
    say "bench skipped: under 30 s of the budget left"
fi

# ---------------------------------------------------------------- (c) pack
say "packing"
{
    echo "dataset=$dataset profile=$profile jobs=$jobs chapters=${only[*]:-} bench=${bench:-0} status=$status"
    echo "KERAS_BACKEND=$KERAS_BACKEND XLA_PYTHON_CLIENT_PREALLOCATE=$XLA_PYTHON_CLIENT_PREALLOCATE"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    "$PY" -m pip list --path "$site" 2>/dev/null | tail -n +3
} >"$MNISTLAB_OUTPUT/reports/gpu-run.txt"
cp "$log" "$MNISTLAB_OUTPUT/reports/gpu-run.log"
(
    cd "$MNISTLAB_OUTPUT" &&
        find reports figures -type f -newer .gpu-run-start ! -name .run.lock -print0 |
        tar czf "$OUT/mnistlab-gpu.tar.gz" --null -T -
) || say "packing failed"
say "$OUT/mnistlab-gpu.tar.gz: $(du -h "$OUT/mnistlab-gpu.tar.gz" | cut -f1), $(tar tzf "$OUT/mnistlab-gpu.tar.gz" | wc -l) files"
tar tzf "$OUT/mnistlab-gpu.tar.gz" | grep -v '^figures/' | sed 's/^/  /'
say "done (status $status); here: bash scripts/gpu/unpack.sh <files_at>/mnistlab-gpu.tar.gz"
exit "$status"
