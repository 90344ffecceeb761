#!/usr/bin/env bash
# Sets everything up (first run only) and starts sdtui. Arguments go to `sdtui`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/setup.sh"
exec "${SDTUI_VENV:-$root/.venv}/bin/sdtui" "$@"
