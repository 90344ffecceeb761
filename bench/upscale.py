"""Extras upscaling: seconds and peak memory, tiled and untiled, against spandrel's plain call.

    .venv/bin/python bench/upscale.py [--model "R-ESRGAN 4x+"] [--sizes 512,1024,2048]
                                      [--sides tiled,untiled,spandrel] [--threads 2]

For each input size (a square test image) and each side, a fresh process upscales it 4x once
and reports its wall time and peak RSS (`ru_maxrss` of that process, so the sides do not
share a high-water mark):

* tiled: sdtui's Extras path (`sdtui.services.extras.postprocess`), tiles of the
  ESRGAN_tile default (192 px, 8 px overlap);
* untiled: the same with tiling off (the whole image through the model at once);
* spandrel: the reference, the same weights loaded by spandrel and called once on the whole
  image tensor (what an integration without tiling does).

The ratio column is side / spandrel (time and memory). Goal: tiled peak RSS stays nearly
flat as the image grows (only the image buffers grow), where the untiled sides grow with the
model's feature maps. Sizes that would not fit in memory untiled are reported as skipped
(`--max-untiled`, default 1024). Runs on the CPU unless --device says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA_DIR = Path(os.environ.get("SDTUI_BENCH_DATA", "/tmp/sdtui-bench-data"))


def test_image(size: int):
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, size)
    noise = np.random.default_rng(7).integers(0, 256, (size, size))
    pixels = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), noise], -1)
    return Image.fromarray(pixels.astype(np.uint8))


def _upscaler(model: str):
    from sdtui_plugins.builtin.model_upscalers import register_folder_upscalers

    from sdtui.paths import DataDirs
    from sdtui.plugins import PluginHost

    host = PluginHost(load_entry_points=False)
    dirs = DataDirs.resolve(DATA_DIR)
    dirs.create()
    register_folder_upscalers(host, dirs)
    return host, host.upscalers.get(model)


def run_side(side: str, model: str, size: int, threads: int, device: str) -> dict:
    """One measurement, in this (child) process."""
    import torch

    torch.set_num_threads(threads)
    host, upscaler = _upscaler(model)
    upscaler.device = device
    state = upscaler.state_dict()  # converted and cached on the first run
    image = test_image(size)
    start = time.perf_counter()
    if side == "spandrel":
        import numpy as np

        from sdtui.models.upscaler_files import spandrel_load

        descriptor = spandrel_load(state).eval().to(device)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
        start = time.perf_counter()
        with torch.inference_mode():
            output = descriptor(pixels[None].to(device))
        out_size = (output.shape[3], output.shape[2])
    else:
        from sdtui.params.extras_schema import ExtrasParams
        from sdtui.services.extras import ExtrasTools, postprocess

        upscaler.model()  # loaded before the clock, as spandrel's side
        start = time.perf_counter()
        tile = 192 if side == "tiled" else 0
        tools = ExtrasTools(host, tile=tile, overlap=8)
        result = postprocess(image, ExtrasParams(upscaler=model, scale=4.0), tools)
        out_size = result.image.size
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"side": side, "size": size, "seconds": seconds, "peak_mib": peak_mib, "out": out_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="R-ESRGAN 4x+")
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--sides", default="tiled,untiled,spandrel")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-untiled", type=int, default=1024)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, size = args.child.split(":")
        print(json.dumps(run_side(side, args.model, int(size), args.threads, args.device)))
        return
    _upscaler(args.model)[1].state_dict()  # convert once before any timing
    print(f"{args.model}, 4x, {args.threads} thread(s), {args.device}; one run per cell")
    print(
        f"{'input':>6} {'side':>9} {'seconds':>9} {'peak MiB':>9} {'t ratio':>8} {'mem ratio':>9}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        rows = {}
        for side in args.sides.split(","):
            if side != "tiled" and size > args.max_untiled:
                print(f"{size:>6} {side:>9}   skipped (> --max-untiled {args.max_untiled})")
                continue
            command = [sys.executable, __file__, "--child", f"{side}:{size}",
                       "--model", args.model, "--threads", str(args.threads),
                       "--device", args.device]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{size:>6} {side:>9}   failed: {reason}")
                continue
            rows[side] = json.loads(done.stdout.strip().splitlines()[-1])
        reference = rows.get("spandrel")
        for side, row in rows.items():
            ratios = ("", "")
            if reference:
                ratios = (
                    f"{row['seconds'] / reference['seconds']:.2f}",
                    f"{row['peak_mib'] / reference['peak_mib']:.2f}",
                )
            print(f"{size:>6} {side:>9} {row['seconds']:>9.1f} {row['peak_mib']:>9.0f} "
                  f"{ratios[0]:>8} {ratios[1]:>9}")  # fmt: skip


if __name__ == "__main__":
    main()
