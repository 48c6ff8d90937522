#!/usr/bin/env bash
# The one test command (README and CI run exactly this): install, lint, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
python3 -m ruff check .
python3 -m mypy
python3 -m pytest -q "$@"
