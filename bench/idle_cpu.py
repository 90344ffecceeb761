"""What the app costs while nobody touches it: process CPU time over a quiet window.

    .venv/bin/python bench/idle_cpu.py [--seconds 10] [--runs 3] [--env NAME=VALUE ...]

Starts `sdtui` in a real terminal (a private tmux server, 160x50, half-block graphics) on
an empty data dir holding a tiny SD1 checkpoint, waits until the checkpoint is loaded and
the app has settled (`--settle`, 15 s: past the text cursor's blink timeout), then reads
the process's CPU time (user + system, every thread, from /proc) before and after
`--seconds` of doing nothing. The tmux server's CPU time over the same window is printed
too: what the app writes, the terminal has to parse.

`--env NAME=VALUE` runs the app with a variable set, e.g. `--env PYTHONPATH=/tmp/old-tree`
to measure another version of sdtui under the same conditions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Tmux:
    def __init__(self, work: Path) -> None:
        self.env = {**os.environ, "TMUX_TMPDIR": str(work)}  # never the user's server

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", *args], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout

    def wait_for(self, condition: object, what: str, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}:\n{self('capture-pane', '-p')}")
            time.sleep(0.2)


def one_run(
    data: Path, work: Path, seconds: float, settle: float, extra_env: dict[str, str]
) -> dict:
    tmux = Tmux(work)
    env = " ".join(f"{name}={value}" for name, value in extra_env.items())
    command = (
        f"HF_HUB_OFFLINE=1 SDTUI_GRAPHICS=halfblock {env} exec {ROOT}/.venv/bin/sdtui "
        f"--data-dir {data} --device cpu"
    )
    tmux("new-session", "-d", "-s", "idle", "-x", "160", "-y", "50", command)
    try:
        pid = int(tmux("display", "-p", "-t", "idle", "#{pane_pid}").strip())
        server = int(tmux("display", "-p", "#{pid}").strip())
        screen = lambda: tmux("capture-pane", "-p", "-t", "idle")  # noqa: E731
        tmux.wait_for(lambda: " tiny " in screen(), "the checkpoint in the status bar")
        tmux.wait_for(lambda: "loading" not in screen(), "the model load to finish")
        time.sleep(settle)  # the last repaints, the worker's warm-up, the garbage collector
        app_before, server_before = cpu_seconds(pid), cpu_seconds(server)
        time.sleep(seconds)
        app_cpu = cpu_seconds(pid) - app_before
        server_cpu = cpu_seconds(server) - server_before
    finally:
        tmux("kill-server")
    return {"app": app_cpu / seconds, "tmux": server_cpu / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the app")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("needs tmux")
    extra_env = dict(item.split("=", 1) for item in args.env)
    sys.path.insert(0, str(ROOT))
    from tests.tiny_models import write_tiny_checkpoint

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data / "models" / "Stable-diffusion").mkdir(parents=True)
        write_tiny_checkpoint(data / "models" / "Stable-diffusion" / "tiny.safetensors", "sd1")
        for index in range(args.runs):
            work = Path(tmp) / f"tmux-{index}"
            work.mkdir()
            runs.append(one_run(data, work, args.seconds, args.settle, extra_env))
    for key, label in (("app", "sdtui"), ("tmux", "tmux server")):
        values = [100 * run[key] for run in runs]
        print(
            f"{label:12s} idle CPU median {statistics.median(values):5.2f} % of a core  (runs: "
            + ", ".join(f"{v:.2f}" for v in values)
            + f"; {args.seconds:g} s each)"
        )


if __name__ == "__main__":
    main()
