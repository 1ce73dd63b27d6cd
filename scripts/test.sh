#!/usr/bin/env bash
# The README's test command: install into .venv (created if missing) and run the offline test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/python -m pytest "$@"
