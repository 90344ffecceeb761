"""Checkpoint loading: sdtui's loader next to diffusers' from_single_file on the same file.

    .venv/bin/python bench/load.py [--runs 3] [--family sd1]

Writes a full-size SD1.5-shaped checkpoint with random fp16 weights (no sdtui metadata, like
a downloaded file) to bench/out/, then loads it into fp32 CPU modules (UNet, VAE, text
encoder) with each loader, each run in its own subprocess so every peak RSS is its own, and
prints the medians. Goals: time ratio (ours / diffusers) <= 1.0 and our peak RSS increment
<= 1.2x the file's tensors in fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
OUT = Path(__file__).resolve().parent / "out"


def rss_bytes() -> int:
    """Current resident set size (Linux /proc; 0 where unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_checkpoint(family_id: str) -> Path:
    import torch
    from safetensors.torch import save_file

    from sdtui.models.architectures import build_component, family_configs, parameters_on_meta
    from sdtui.models.families import get_family
    from sdtui.models.ldm_export import export_ldm_state_dict

    path = OUT / f"random-{family_id}-fp16.safetensors"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    family = get_family(family_id)
    with parameters_on_meta():
        modules = {
            name: build_component(name, config) for name, config in family_configs(family).items()
        }
    shapes = export_ldm_state_dict(family=family, **modules)
    generator = torch.Generator().manual_seed(0)
    tensors = {
        key: (torch.randn(meta.shape, generator=generator) * 0.02).to(torch.float16)
        for key, meta in shapes.items()
    }
    temporary = path.with_suffix(".tmp")
    save_file(tensors, str(temporary), metadata={"format": "pt"})
    temporary.replace(path)
    return path


def load_ours(path: Path) -> None:
    import torch

    from sdtui.models.loader import load_checkpoint

    load_checkpoint(path, dtype=torch.float32)


def load_diffusers(path: Path) -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    from sdtui.models.architectures import diffusers_config_folder, family_configs
    from sdtui.models.families import get_family

    family = get_family("sd1")
    with tempfile.TemporaryDirectory() as folder:
        diffusers_config_folder(family_configs(family), family, Path(folder))
        StableDiffusionPipeline.from_single_file(
            str(path),
            config=folder,
            local_files_only=True,
            torch_dtype=torch.float32,
            tokenizer=None,
            safety_checker=None,
            feature_extractor=None,
        )


def run_side(side: str, path: Path) -> None:
    """One measured load, in this process; prints a JSON line."""
    import diffusers  # noqa: F401  (both sides pay the same imports before timing)
    import torch  # noqa: F401

    import sdtui.models.loader  # noqa: F401

    baseline = rss_bytes()
    start = time.perf_counter()
    (load_ours if side == "ours" else load_diffusers)(path)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak": peak_rss_bytes(), "baseline": baseline}))


def measure(side: str, path: Path, runs: int) -> dict[str, float]:
    results = []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, __file__, "--side", side, "--file", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(output.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in results),
        "peak": statistics.median(r["peak"] for r in results),
        "increment": statistics.median(r["peak"] - r["baseline"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--family", default="sd1")
    parser.add_argument("--side", choices=("ours", "diffusers"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run_side(args.side, args.file)
        return
    path = write_checkpoint(args.family)
    import math

    from sdtui.models.checkpoint_file import read_header

    fp32_bytes = 4 * sum(math.prod(shape) for shape in read_header(path).shapes.values())
    ours = measure("ours", path, args.runs)
    theirs = measure("diffusers", path, args.runs)
    gib = 1024**3
    print(
        f"file: {path.name}, {path.stat().st_size / gib:.2f} GiB fp16, "
        f"tensors in fp32: {fp32_bytes / gib:.2f} GiB; median of {args.runs} runs each"
    )
    print(f"{'':10} {'seconds':>8} {'peak RSS':>10} {'increment':>10}")
    for name, side in (("sdtui", ours), ("diffusers", theirs)):
        print(
            f"{name:10} {side['seconds']:8.2f} {side['peak'] / gib:9.2f}G "
            f"{side['increment'] / gib:9.2f}G"
        )
    print(
        f"time ratio (sdtui / diffusers): {ours['seconds'] / theirs['seconds']:.2f}  (goal <= 1.0)"
    )
    print(f"peak RSS ratio (sdtui / diffusers): {ours['peak'] / theirs['peak']:.2f}")
    print(
        f"sdtui RSS increment / fp32 tensors: {ours['increment'] / fp32_bytes:.2f}  (goal <= 1.2)"
    )


if __name__ == "__main__":
    main()
