#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 found on this machine and install radlabel with all extras.
# Re-running is cheap: an existing .venv is reused and pip only checks what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  local candidates=("${PYTHON:-}" python3.12 python3.13 python3)
  # pyenv installs interpreters that are not on PATH unless selected.
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])' | sort -V); do
      candidates+=("$(pyenv root)/versions/$v/bin/python3")
    done
  fi
  # ...and where pyenv itself is not on PATH (e.g. a CI shell), look in its usual folder.
  for d in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*; do
    [ -x "$d/bin/python3" ] && candidates+=("$d/bin/python3")
  done
  for py in "${candidates[@]}"; do
    [ -n "$py" ] || continue
    command -v "$py" >/dev/null 2>&1 || [ -x "$py" ] || continue
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  PY=$(find_python) || { echo "radlabel needs Python >= 3.12; none found (set PYTHON=/path/to/python3.12)." >&2; exit 2; }
  echo "Creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${EXTRAS:-all,dev}]"
