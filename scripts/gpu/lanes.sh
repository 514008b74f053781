#!/usr/bin/env bash
# Runs ON the GPU machine: several scripts/gpu/run.sh at once, one per "lane" (a list of chapters),
# each with its own output folder, all on the one GPU and all the CPU cores (--jobs: every core;
# a lane that waits on the GPU leaves them to one that searches SVCs). A
# chapter rarely keeps the chip busy alone (compiling, canvases and SVCs on the CPU), so lanes fit
# more chapters into one call of under ten minutes. Each lane packs its own tarball:
#
#   run(command="bash scripts/gpu/lanes.sh --budget 540 07 09 08 '05 06'",
#       carry=[".whl", "data/raw/mnist"], timeout_s=600)
#
# and here, lane by lane, then the chapters no lane ran (make notebooks ... ONLY=...):
#   bash scripts/gpu/unpack.sh <files_at>/lane1/mnistlab-gpu.tar.gz --no-refresh   (lane2, lane3 ...)
#
# Options are passed to every run.sh (--budget, --dataset, --profile, --force).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
opts=() lanes=()
while (($#)); do
    case "$1" in
    --budget | --dataset | --profile) opts+=("$1" "$2"); shift ;;
    --force) opts+=("$1") ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --*) echo "lanes.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) lanes+=("$1") ;;
    esac
    shift
done
((${#lanes[@]})) || { echo "lanes.sh: name lanes of chapters, e.g. '05 06' '07'" >&2; exit 2; }
OUT="${OUT:-/tmp/mnistlab-gpu-out}"
jobs=$(nproc)
pids=()
for i in "${!lanes[@]}"; do
    n=$((i + 1))
    mkdir -p "$OUT/lane$n"
    # shellcheck disable=SC2086  # a lane is a list of chapter prefixes
    OUT="$OUT/lane$n" MNISTLAB_OUTPUT="/tmp/mnistlab-gpu-lane$n" \
        bash "$root/scripts/gpu/run.sh" "${opts[@]}" --jobs "$jobs" --only ${lanes[$i]} \
        > >(sed -u "s/^/lane$n | /") 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=$?
done
# each lane's log is in its tarball (reports/gpu-run.log): what comes back is limited to 8 files
rm -f "$OUT"/lane*/run.log
echo "lanes done (status $status): $(cd "$OUT" && ls lane*/mnistlab-gpu.tar.gz 2>/dev/null | tr '\n' ' ')"
exit "$status"
