#!/usr/bin/env bash
# Sets up sdtui's virtual environment; idempotent (a second run with nothing changed
# returns at once). Installs only from package registries, through the committed lock file
# requirements/constraints.txt, so an upstream release cannot change what gets installed.
#
#   scripts/setup.sh        the app
#   scripts/setup.sh dev    the app plus test tools
#
# SDTUI_VENV picks the environment's folder (default: .venv in the repository);
# SDTUI_PYTHON the interpreter that creates it (default: python3.11, else python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SDTUI_VENV:-$root/.venv}"
extras="${1:-}"
constraints="$root/requirements/constraints.txt"

stamp="$venv/.sdtui-setup"
inputs="$(cat "$root/pyproject.toml" "$root/setup.py" "$constraints" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ -x "$venv/bin/sdtui" ]; then
  # an install with the test tools also serves the plain app
  if grep -qxF -- "$inputs $extras" "$stamp" || { [ -z "$extras" ] && grep -qxF -- "$inputs dev" "$stamp"; }; then
    exit 0
  fi
fi

python="${SDTUI_PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
if [ -z "$python" ] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "sdtui needs Python 3.10 or newer (set SDTUI_PYTHON to one)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating the virtual environment in $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$constraints")

# torch and torchvision first, as the matched pair the lock file names, and the build tools
# (the editable install builds without isolation so its tools come from the lock file too).
"${pip[@]}" torch torchvision setuptools wheel
if [ "$extras" = "dev" ]; then target=".[dev]"; else target="."; fi
(cd "$root" && "${pip[@]}" --no-build-isolation -e "$target")

echo "$inputs $extras" > "$stamp"
