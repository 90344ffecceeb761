"""txt2img speed and memory: sdtui's engine next to diffusers' StableDiffusionPipeline.

    .venv/bin/python bench/txt2img.py [--cases 512x512:1:5,768x768:1:2,512x512:2:2]

Same full-size SD1.5-shaped random checkpoint (bench/load.py writes it), Euler with A1111's
Automatic (= diffusers' "linspace" spacing), CFG 7, fp32 on the CPU here (fp16 on CUDA).
Each case is WIDTHxHEIGHT:BATCH:STEPS; each side runs in its own subprocess so each peak
RSS is its own. Prints the median seconds per step, end-to-end seconds and peak RSS, and the
ratios (goals: per-step <= 1.05, peak RSS <= 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from load import peak_rss_bytes, write_checkpoint

PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry"


def device_and_dtype():
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda"), torch.float16
    return torch.device("cpu"), torch.float32


def run_ours(path: Path, width: int, height: int, batch: int, steps: int) -> dict:
    from sdtui.engine.txt2img import EngineOptions, txt2img
    from sdtui.models.loader import load_checkpoint
    from sdtui.params.schema import GenerationParams
    from sdtui.params.validate import resolve
    from sdtui.plugins import PluginHost

    device, dtype = device_and_dtype()
    host = PluginHost(load_entry_points=False)
    start = time.perf_counter()
    model = load_checkpoint(path, dtype=dtype).to(device)
    stamps: list[float] = []

    class Context:
        def check(self) -> None:
            pass

        def progress(self, step: int, total: int, **_: object) -> None:
            stamps.append(time.perf_counter())

    params = resolve(
        GenerationParams(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            sampler="Euler",
            steps=steps,
            width=width,
            height=height,
            batch_size=batch,
            seed=1,
            cfg_scale=7.0,
        )
    )
    begin = time.perf_counter()
    txt2img(model, params, EngineOptions(host.samplers, host.schedules, context=Context()))
    return _timings(begin, stamps, start)


def run_diffusers(path: Path, width: int, height: int, batch: int, steps: int) -> dict:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    from sdtui.models.architectures import diffusers_config_folder, family_configs
    from sdtui.models.families import get_family
    from sdtui.models.tokenizer_hf import write_hf_tokenizer_files

    device, dtype = device_and_dtype()
    family = get_family("sd1")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        diffusers_config_folder(family_configs(family), family, Path(folder))
        write_hf_tokenizer_files(Path(folder) / "tokenizer")
        tokenizer = CLIPTokenizer.from_pretrained(Path(folder) / "tokenizer")
        pipe = StableDiffusionPipeline.from_single_file(
            str(path),
            config=folder,
            local_files_only=True,
            torch_dtype=dtype,
            tokenizer=tokenizer,
            safety_checker=None,
            feature_extractor=None,
        ).to(device)
    pipe.scheduler = EulerDiscreteScheduler.from_config(
        pipe.scheduler.config, timestep_spacing="linspace"
    )
    pipe.set_progress_bar_config(disable=True)
    stamps: list[float] = []

    def on_step(pipeline, step, timestep, kwargs):
        stamps.append(time.perf_counter())
        return kwargs

    begin = time.perf_counter()
    pipe(
        PROMPT,
        negative_prompt=NEGATIVE,
        num_inference_steps=steps,
        width=width,
        height=height,
        num_images_per_prompt=batch,
        guidance_scale=7.0,
        generator=torch.Generator("cpu").manual_seed(1),
        callback_on_step_end=on_step,
    )
    return _timings(begin, stamps, start)


def _timings(begin: float, stamps: list[float], start: float) -> dict:
    steps = [b - a for a, b in zip([begin, *stamps], stamps, strict=False)]
    return {
        "per_step": statistics.median(steps[1:] or steps),  # the first step includes set-up
        "total": time.perf_counter() - start,
        "peak": peak_rss_bytes(),
    }


def run_side(side: str, path: Path, case: str) -> None:
    size, batch, steps = case.split(":")
    width, height = (int(v) for v in size.split("x"))
    runner = run_ours if side == "ours" else run_diffusers
    print(json.dumps(runner(path, width, height, int(batch), int(steps))))


def measure(side: str, path: Path, case: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--side", side, "--file", str(path), "--cases", case],
        capture_output=True,
        text=True,
    )
    if output.returncode != 0:
        raise SystemExit(f"{side} failed on {case}:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="512x512:1:5,768x768:1:2,512x512:2:2")
    parser.add_argument("--side", choices=("ours", "diffusers"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run_side(args.side, args.file, args.cases)
        return
    path = write_checkpoint("sd1")
    device, dtype = device_and_dtype()
    gib = 1024**3
    print(f"{path.name} on {device} in {str(dtype).removeprefix('torch.')}; Euler, CFG 7")
    print(f"{'case':16} {'side':10} {'s/step':>8} {'total s':>8} {'peak RSS':>9}")
    for case in args.cases.split(","):
        ours, theirs = measure("ours", path, case), measure("diffusers", path, case)
        for name, side in (("sdtui", ours), ("diffusers", theirs)):
            print(
                f"{case:16} {name:10} {side['per_step']:8.2f} {side['total']:8.1f} "
                f"{side['peak'] / gib:8.2f}G"
            )
        print(
            f"{case:16} ratios     per step {ours['per_step'] / theirs['per_step']:.2f} "
            f"(goal <= 1.05), peak RSS {ours['peak'] / theirs['peak']:.2f} (goal <= 1.0)"
        )


if __name__ == "__main__":
    main()
