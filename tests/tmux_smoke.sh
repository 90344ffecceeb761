#!/usr/bin/env bash
# Starts `sdtui` in a real terminal (tmux), types a prompt, generates with keys only and
# checks the PNG on disk, as a person would. Run by tests/test_tmux_smoke.py.
#   tests/tmux_smoke.sh [SDTUI_COMMAND]     (default: .venv/bin/sdtui)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sdtui="${1:-$root/.venv/bin/sdtui}"
python="${SDTUI_PYTHON:-$root/.venv/bin/python}"
work="$(mktemp -d)"
session="sdtui-smoke-$$"
export TMUX_TMPDIR="$work"  # a private tmux server, never the user's
cleanup() { tmux kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

fail() {
  echo "tmux smoke: $1" >&2
  echo "--- screen ---" >&2
  tmux capture-pane -p -t "$session" >&2 2>/dev/null || true
  exit 1
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds="$1" what="$2"
  shift 2
  for _ in $(seq $((seconds * 5))); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  fail "timed out after ${seconds}s waiting for $what"
}

screen_has() { tmux capture-pane -p -t "$session" | grep -q -- "$1"; }
png_written() { [ -n "$(find "$work/data/outputs/txt2img-images" -name '*.png' 2>/dev/null)" ]; }

cd "$root"
mkdir -p "$work/data/models/Stable-diffusion"
"$python" -c "
import sys
from tests.tiny_models import write_tiny_checkpoint
write_tiny_checkpoint(sys.argv[1], 'sd1')
" "$work/data/models/Stable-diffusion/tiny.safetensors"

tmux new-session -d -s "$session" -x 160 -y 50 \
  "HF_HUB_OFFLINE=1 SDTUI_GRAPHICS=halfblock $sdtui --data-dir $work/data --device cpu; \
   echo sdtui-exited-\$?; sleep 30"
wait_for 60 "the txt2img screen" screen_has "1 txt2img"
wait_for 180 "the checkpoint in the status bar" screen_has " tiny "
keys() { tmux send-keys -t "$session" "$@"; sleep 0.5; }
# like a person: look at the screen after each step before typing on
wait_for 180 "the model load to finish" sh -c "! tmux capture-pane -p -t $session | grep -q loading"
keys -l "a red circle"
wait_for 20 "the prompt typed in" screen_has " a red circle"
# Tab from the prompt: negative prompt, checkpoint, VAE, sampler, schedule, then steps.
# A field selects its text when focused; on a slow machine that can land after the first
# keys, so like a person we look at the field and type again if it does not show the value.
set_field() {  # set_field LABEL VALUE
  for _ in 1 2 3 4 5; do
    keys C-u
    keys -l "$2"
    for _ in $(seq 40); do
      if screen_has "$1  *$2 "; then return 0; fi
      sleep 0.25
    done
  done
  fail "could not type $2 into $1"
}
keys Tab Tab Tab Tab Tab Tab
set_field "Sampling steps" 2
keys Tab Tab  # past CFG to the width
set_field Width 64
keys Tab
set_field Height 64
keys F5
wait_for 240 "a PNG in outputs/txt2img-images" png_written
wait_for 30 "the run to finish" screen_has "done · 1 image"
png="$(find "$work/data/outputs/txt2img-images" -name '*.png' | head -1)"
"$python" - "$png" <<'PY'
import sys
from sdtui.params.image_metadata import read_image_metadata
infotext = read_image_metadata(sys.argv[1]).infotext or ""
assert infotext.startswith("a red circle\nSteps: 2, Sampler: DPM++ 2M"), infotext
assert "Size: 64x64" in infotext, infotext
print("tmux smoke: wrote", sys.argv[1])
PY
# Alt+2 / Alt+4 / Alt+1 switch tabs even from inside the prompt (terminals send ESC 4 for Alt+4)
keys M-2
wait_for 60 "the img2img tab" screen_has "Inpaint sketch"
keys M-4
wait_for 60 "the PNG Info tab" screen_has "path of an image"
keys M-1
wait_for 60 "back on txt2img" screen_has "Sampling steps"
tmux send-keys -t "$session" C-q
wait_for 30 "sdtui to exit" screen_has "sdtui-exited-0"
echo "tmux smoke: ok"
