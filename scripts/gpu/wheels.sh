#!/usr/bin/env bash
# Download the wheels the GPU machine lacks (scripts/gpu/wheels.txt) into .whl/ (ignored by git),
# for CPython 3.12 on manylinux x86_64: that machine's Python, whatever Python runs this script.
# `make gpu-kit` runs it. Then a device `run` with carry [".whl", "data/raw/mnist"] can call
# scripts/gpu/run.sh (see README, "GPU").
#
#   bash scripts/gpu/wheels.sh [DEST]      # DEST defaults to .whl (in the repository root)
#
# Needs the package index (here, not on the GPU machine). DEST is emptied first, so it holds
# exactly one version of each package.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
dest="${1:-.whl}"
list="scripts/gpu/wheels.txt"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
    if [[ -x .venv/bin/python ]]; then py=.venv/bin/python; else py=python3; fi
fi

mapfile -t pins < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$')
echo "downloading ${#pins[@]} wheels for CPython 3.12 manylinux x86_64 into $dest/"
rm -rf "$dest"
mkdir -p "$dest"
platforms=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1 \
    manylinux_2_31 manylinux_2_34 manylinux_2_35; do
    platforms+=(--platform "${p}_x86_64")
done
log="$(mktemp)"
if ! "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --abi abi3 --abi none "${platforms[@]}" -d "$dest" "${pins[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "wheels.sh: pip download failed (a pin with no CPython 3.12 manylinux wheel? see above)" >&2
    exit 1
fi
grep -v 'is ignored: it is neither a file nor a directory' "$log" || true  # this machine's pip index notes
rm -f "$log"

# exactly one wheel per pin, each for CPython 3.12 (or pure Python)
"$py" - "$dest" "${pins[@]}" <<'EOF'
import re
import sys
from pathlib import Path

dest, pins = Path(sys.argv[1]), sys.argv[2:]
norm = lambda s: re.sub(r"[-_.]+", "_", s).lower()  # noqa: E731
wheels = sorted(dest.glob("*.whl"))
by_name = {}
for w in wheels:
    name, version, *_, py, abi, plat = w.name[:-4].split("-")
    by_name.setdefault(norm(name), []).append((version, py, abi, plat, w.name))
bad = []
for pin in pins:
    name, version = pin.split("==")
    found = by_name.pop(norm(name), [])
    if len(found) != 1 or found[0][0] != version:
        bad.append(f"{pin}: found {[f[4] for f in found]}")
    elif not (found[0][2] in ("none", "abi3", "cp312") and ("x86_64" in found[0][3] or found[0][3] == "any")):
        bad.append(f"{pin}: {found[0][4]} is not for CPython 3.12 on x86_64")
bad += [f"unexpected wheel {f[4]}" for rest in by_name.values() for f in rest]
if bad:
    sys.exit("wheels.sh: " + "; ".join(bad))
EOF

total=$(du -cb "$dest"/*.whl | tail -1 | cut -f1)
ls -1 "$dest"
printf '%d wheels, %.1f MB in %s/\n' "$(ls "$dest"/*.whl | wc -l)" "$(echo "$total / 1000000" | bc -l)" "$dest"
# what a device call sends: the working tree (tracked and untracked files git does not ignore)
# plus the carried paths, at most 64 MiB in all
tree=$(git ls-files -z -c -o --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carry=("$dest")
[[ -d data/raw/mnist ]] && carry+=(data/raw/mnist) || echo "note: no data/raw/mnist yet (make data): the GPU machine cannot download it"
carried=$(du -cb "${carry[@]}" | tail -1 | cut -f1)
printf 'a device call with carry [%s] sends %.1f MB (working tree %.1f MB + carried %.1f MB; limit 64 MiB)\n' \
    "$(printf '"%s", ' "${carry[@]}" | sed 's/, $//')" "$(echo "($tree + $carried) / 1000000" | bc -l)" \
    "$(echo "$tree / 1000000" | bc -l)" "$(echo "$carried / 1000000" | bc -l)"
