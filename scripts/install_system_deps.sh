#!/usr/bin/env bash
# Install the Debian packages mnistlab needs, when they are missing:
#   TeX + pandoc (PDF report), poppler-utils (pdftotext, used by the tests),
#   dataset-fashion-mnist (offline Fashion-MNIST).
# As root with apt-get: installs them. Otherwise: prints the command to run and fails.
set -euo pipefail
PACKAGES=(texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc poppler-utils dataset-fashion-mnist)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if ! command -v dpkg-query >/dev/null; then
    for tool in xelatex pandoc pdftotext; do
        command -v "$tool" >/dev/null || { echo "error: $tool not found. This is not a Debian system: install TeX Live (xelatex), pandoc and poppler (pdftotext) with your package manager." >&2; exit 1; }
    done
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do installed "$pkg" || missing+=("$pkg"); done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages: ${missing[*]} (TeX is about 600 MB; this happens once)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    echo "Installed: ${missing[*]}"
else
    echo "error: missing Debian packages: ${missing[*]}" >&2
    echo "Run:  sudo apt-get install -y ${missing[*]}" >&2
    echo "then run make again." >&2
    exit 1
fi
