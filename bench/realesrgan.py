"""sdtui's built-in Real-ESRGAN upscalers against the ncnn runtime on the same weights.

    .venv/bin/python bench/realesrgan.py [--models animevideo,x4plus] [--size 64] [--runs 3]
                                         [--threads 2]

For each model: the one-time conversion of the packaged ncnn weights (what the first use of
"R-ESRGAN 4x+" costs), then the median time of one `upscale_tile` of a size x size image
through sdtui's registered upscaler (torch, fp32, CPU) and of the same image through the
ncnn runtime (PyPI `ncnn`, fp32, CPU, the same thread count), their ratio (sdtui / ncnn,
lower is better) and the largest pixel difference between the two outputs (in 1/255).
Both sides run in this process, one after the other, on the same input.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

MODELS = {
    "animevideo": "R-ESRGAN AnimeVideo",
    "x4plus": "R-ESRGAN 4x+",
    "anime6b": "R-ESRGAN 4x+ Anime6B",
}


def test_image(size: int) -> Image.Image:
    ramp = np.linspace(0, 255, size)
    noise = np.random.default_rng(7).integers(0, 256, (size, size))
    pixels = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), noise], -1)
    return Image.fromarray(pixels.astype(np.uint8))


def ncnn_upscale(stem: str, image: Image.Image, threads: int) -> tuple[np.ndarray, float]:
    import ncnn

    from sdtui.models.realesrgan_convert import packaged_model

    param, weights = packaged_model(stem)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
    net.opt.num_threads = threads
    net.load_param(str(param))
    net.load_model(str(weights))
    pixels = np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255)
    start = time.perf_counter()
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(pixels))
    _, out = extractor.extract("output")
    result = np.array(out).copy()
    return result, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="animevideo,x4plus")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from sdtui_plugins.builtin.model_upscalers import register_folder_upscalers

    from sdtui.paths import DataDirs
    from sdtui.plugins import PluginHost

    torch.set_num_threads(args.threads)
    host = PluginHost(load_entry_points=False)
    image = test_image(args.size)
    print(f"{args.size}x{args.size} px, {args.threads} threads, median of {args.runs} runs")
    print(
        f"{'model':22} {'convert s':>9} {'sdtui s':>8} {'ncnn s':>7} {'ratio':>6} {'max diff':>9}"
    )
    with tempfile.TemporaryDirectory() as root:
        dirs = DataDirs.resolve(Path(root) / "data")
        dirs.create()
        register_folder_upscalers(host, dirs)
        for key in args.models.split(","):
            upscaler = host.upscalers.get(MODELS[key.strip()])
            start = time.perf_counter()
            upscaler.model()  # converts the packaged weights and loads them
            convert_s = time.perf_counter() - start
            ours, theirs = [], []
            for _ in range(args.runs):
                start = time.perf_counter()
                result = upscaler.upscale_tile(image)
                ours.append(time.perf_counter() - start)
                reference, seconds = ncnn_upscale(upscaler.spec.ncnn_stem, image, args.threads)
                theirs.append(seconds)
            expected = np.clip(reference.transpose(1, 2, 0) * 255, 0, 255)
            diff = np.abs(np.asarray(result, dtype=np.float32) - expected).max()
            mine, ncnn_s = statistics.median(ours), statistics.median(theirs)
            print(
                f"{upscaler.name:22} {convert_s:9.2f} {mine:8.3f} {ncnn_s:7.3f} "
                f"{mine / ncnn_s:6.2f} {diff:9.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
