#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine: the
# Debian packages listed in scripts/apt.d/*.txt, then this project with its
# test extras. Safe to run again; it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t wanted < <(cat scripts/apt.d/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e ".[test]"
