#!/usr/bin/env bash
# Here, after a GPU run: unpack the tarball scripts/gpu/run.sh packed there into this checkout's
# reports/ and figures/ (or --target DIR), record the times in reports/bench.json and refresh
# reports/run.json when every chapter is up to date. See scripts/gpu/unpack.py for the details.
#
#   bash scripts/gpu/unpack.sh /work/.device/.../mnistlab-gpu.tar.gz [--target DIR] [--name h200-full]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$py" ]] || py=python3
exec "$py" "$root/scripts/gpu/unpack.py" "$@"
