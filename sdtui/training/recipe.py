"""The whole recipe: VAE, latent cache, text encoder (optional), UNet + text encoder, export.

    plan = TrainingPlan(seed=0)
    run_training(plan, Path("/work/train-default"), stage="all",
                 export=Path("/work/train-default/export/sdtui-shapes.safetensors"))

Each stage resumes from its last save in `work_dir` (which should live outside the
repository: saves hold optimiser states, ~100 MB); a finished stage is skipped. The default
step counts fit about half an hour on two CPU cores (see tools/train_default_model.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

import torch

from sdtui.training.default_model import ModelSize, export_checkpoint, set_scaling_factor
from sdtui.training.latent_cache import CACHE_FILE, latent_cache
from sdtui.training.shapes_dataset import HELD_OUT_PAIRS
from sdtui.training.text_stage import TextOptions, load_trained_text_encoder, train_text_encoder
from sdtui.training.train_state import LossLog
from sdtui.training.unet_stage import UNetOptions, load_trained_unet, train_unet
from sdtui.training.vae_stage import VAEOptions, load_trained_vae, train_vae

Stage = Literal["vae", "text", "unet", "all", "export"]
LOSS_LOG = "losses.jsonl"


@dataclass(frozen=True)
class TrainingPlan:
    seed: int = 0
    size: ModelSize = field(default_factory=ModelSize)
    vae: VAEOptions = field(default_factory=VAEOptions)
    text: TextOptions = field(default_factory=TextOptions)
    unet: UNetOptions = field(default_factory=UNetOptions)
    latents: int = 8000  # training images encoded for the UNet stage
    threads: int = 2


def model_info(plan: TrainingPlan, vae_step: int, unet_step: int) -> dict[str, object]:
    """What the export's `sdtui.training` metadata says about how it was made."""
    return {
        "name": "sdtui-shapes",
        "dataset": "sdtui.training.shapes_dataset",
        "held_out_pairs": sorted(" ".join(pair) for pair in HELD_OUT_PAIRS),
        "seed": plan.seed,
        "vae_steps": vae_step,
        "unet_steps": unet_step,
        "text_steps": plan.text.steps,
        "text_lr_scale": plan.unet.text_lr_scale,
        "vae_batch": plan.vae.batch_size,
        "unet_batch": plan.unet.batch_size,
        "pyramid_noise": plan.unet.pyramid_noise,
        "pyramid_noise_from": plan.unet.pyramid_noise_from,
        "high_noise_weight": plan.unet.high_noise_weight,
        "high_t_share": plan.unet.high_t_share,
        "high_t_from": plan.unet.high_t_from,
        "high_t_blind": plan.unet.high_t_blind,
        "position_caption_share": plan.unet.position_caption_share,
        "latents": plan.latents,
        "trainer": "tools/train_default_model.py",
    }


def run_training(
    plan: TrainingPlan,
    work_dir: Path,
    stage: Stage = "all",
    export: Path | None = None,
    stream: TextIO | None = sys.stdout,
    stop_after: int | None = None,
) -> Path | None:
    """Run `stage` ("vae", "text", "unet", "all", or "export" alone); with `export`, write the
    checkpoint once both stages are complete. `stop_after` ends each stage at that step
    (as an interruption would). Returns the exported path, if any."""
    threads = torch.get_num_threads()
    torch.set_num_threads(plan.threads)
    try:
        return _run(plan, work_dir, stage, export, stream, stop_after)
    finally:
        torch.set_num_threads(threads)


def _run(
    plan: TrainingPlan,
    work_dir: Path,
    stage: Stage,
    export: Path | None,
    stream: TextIO | None,
    stop_after: int | None,
) -> Path | None:
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / LOSS_LOG
    vae_log = LossLog(log_path, "vae", stream=stream)
    unet_log = LossLog(log_path, "unet", stream=stream)
    if stage in ("vae", "all"):
        _, done = train_vae(work_dir, plan.size, plan.seed, plan.vae, vae_log, stop_after)
        if not done:
            return None
    if stage in ("text", "all") and plan.text.steps:
        text_log = LossLog(log_path, "text", stream=stream)
        _, done = train_text_encoder(
            work_dir, plan.size, plan.seed, plan.text, text_log, stop_after
        )
        if not done:
            return None
    unet_done = False
    if stage in ("unet", "all"):
        vae, vae_step = load_trained_vae(work_dir, plan.size, plan.seed)
        if vae_step < plan.vae.steps:
            raise SystemExit(f"the VAE stage stopped at step {vae_step}/{plan.vae.steps}")
        cache = latent_cache(
            work_dir, vae, vae_step, plan.seed, plan.latents, plan.size.image_size, unet_log
        )
        *_, unet_done = train_unet(
            work_dir,
            plan.size,
            plan.seed,
            plan.unet,
            cache,
            unet_log,
            stop_after,
            pretrained_text(plan, work_dir),
        )
    if export is None or (stage != "export" and not unet_done):
        return None
    return export_trained(plan, work_dir, export, unet_log)


def pretrained_text(plan: TrainingPlan, work_dir: Path) -> tuple[torch.nn.Module, int] | None:
    """The text stage's finished encoder, when the plan has a text stage."""
    if not plan.text.steps:
        if plan.unet.text_lr_scale == 0:
            raise SystemExit(
                "a frozen text encoder (text_lr_scale 0) must come from the text stage: "
                "give it steps, or let the UNet stage train the encoder"
            )
        return None
    text_encoder, step = load_trained_text_encoder(work_dir, plan.size, plan.seed)
    if step < plan.text.steps:
        raise SystemExit(f"the text stage stopped at step {step}/{plan.text.steps}")
    return text_encoder, step


def export_trained(plan: TrainingPlan, work_dir: Path, path: Path, log: LossLog) -> Path:
    """Export the last saves of both stages (the UNet's and text encoder's averages)."""
    vae, vae_step = load_trained_vae(work_dir, plan.size, plan.seed)
    unet, text_encoder, unet_step = load_trained_unet(work_dir, plan.size, plan.seed)
    cache = torch.load(work_dir / CACHE_FILE, map_location="cpu", weights_only=False)
    set_scaling_factor(vae, cache["scaling_factor"])
    written = export_checkpoint(
        path,
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        size=plan.size,
        info=model_info(plan, vae_step, unet_step),
    )
    log.say(f"exported {written} and {written.with_suffix('.yaml')}")
    return written
