"""App start-up: time to the first painted frame and to "model ready".

    .venv/bin/python bench/startup.py [--runs 5] [--checkpoint PATH]

Each run is a fresh Python process (cold imports, as a user starting `sdtui`), running the
app headless in an empty data dir holding one checkpoint (a tiny SD1 model unless
`--checkpoint` names a real one). Measured from process start: the first frame (the
txt2img screen mounted and painted; torch must not be imported yet), the backend ready
(plugins + runtime), and the default model loaded. Goal: first paint < 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import time
t0 = time.perf_counter()
import asyncio, json, os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
from sdtui.app import SdtuiApp
from sdtui.paths import DataDirs
from sdtui.services.backend import Backend

marks = {}


class TimedApp(SdtuiApp):
    def on_ready(self) -> None:  # Textual: the first frame has been displayed
        marks["first_paint_s"] = time.perf_counter() - t0
        marks["torch_at_first_paint"] = "torch" in sys.modules


async def main():
    app = TimedApp(Backend(DataDirs.resolve(sys.argv[1]), device="cpu"))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        while app.backend.status.phase == "starting":
            await asyncio.sleep(0.01)
        marks["backend_ready_s"] = time.perf_counter() - t0
        jobs = app.backend.runtime.jobs
        await asyncio.sleep(0.05)
        while jobs.running is not None or jobs.queued():
            await asyncio.sleep(0.01)
        marks["model_ready_s"] = time.perf_counter() - t0
        marks["status"] = app.backend.status.message
    print(json.dumps(marks))

asyncio.run(main())
"""


def one_run(data_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--checkpoint", type=Path, help="a real checkpoint to load")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        target = data / "models" / "Stable-diffusion"
        target.mkdir(parents=True)
        if args.checkpoint:
            (target / args.checkpoint.name).symlink_to(args.checkpoint.resolve())
        else:
            from tests.tiny_models import write_tiny_checkpoint

            write_tiny_checkpoint(target / "tiny.safetensors", "sd1")
        runs = [one_run(data) for _ in range(args.runs)]
    for key in ("first_paint_s", "backend_ready_s", "model_ready_s"):
        values = [run[key] for run in runs]
        print(
            f"{key:16s} median {statistics.median(values):6.3f} s  (runs: "
            + ", ".join(f"{v:.3f}" for v in values)
            + ")"
        )
    print("torch imported at first paint:", any(run["torch_at_first_paint"] for run in runs))
    first = statistics.median(run["first_paint_s"] for run in runs)
    print(f"first paint / 1 s goal: {first:.2f}")


if __name__ == "__main__":
    main()
