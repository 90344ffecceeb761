#!/usr/bin/env bash
# Sets everything up (first run only), lints, and runs the tests. Arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
scripts/setup.sh dev
venv="${SDTUI_VENV:-$root/.venv}"

# The terminal smoke tests drive the app inside tmux.
if ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null
  else
    echo "warning: tmux is not installed; the terminal smoke tests will be skipped" >&2
  fi
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest "$@"
