"""The real terminal: `tests/tmux_smoke.sh` starts sdtui in tmux and generates with keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("tmux_smoke.sh")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.timeout(600)
def test_tmux_smoke() -> None:
    sdtui = Path(sys.executable).with_name("sdtui")
    result = subprocess.run(
        ["bash", str(SCRIPT), str(sdtui)],
        capture_output=True,
        text=True,
        timeout=580,
        env={**os.environ, "SDTUI_PYTHON": sys.executable, "TERM": "xterm-256color"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tmux smoke: ok" in result.stdout
