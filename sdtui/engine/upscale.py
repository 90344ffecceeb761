"""Upscaling for hires fix: A1111's six latent modes, pixel upscalers, and target sizes."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from PIL import Image

from sdtui.engine.upscalers import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    Check,
    Progress,
    run_upscaler,
)
from sdtui.params.latent_modes import LATENT_MODES


def upscale_latents(latents: torch.Tensor, mode: str, height: int, width: int) -> torch.Tensor:
    """Resize latents to (height // 8, width // 8) with one of A1111's latent modes."""
    interpolation, antialias = LATENT_MODES[mode]
    size = (height // 8, width // 8)
    return torch.nn.functional.interpolate(
        latents.float(), size=size, mode=interpolation, antialias=antialias
    ).to(latents.dtype)


def resize_to(
    image: Image.Image,
    width: int,
    height: int,
    upscaler: Any | None,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    check: Check | None = None,
    progress: Progress | None = None,
) -> Image.Image:
    """A1111's "Just resize" with an upscaler: upscale by the larger factor when enlarging,
    then Lanczos to the exact size ("None" or no upscaler: Lanczos only). A tiled upscaler
    works in `tile` px tiles with `overlap` (A1111's ESRGAN_tile settings), calling `check`
    and `progress` per tile (see `run_upscaler`)."""
    if upscaler is not None and getattr(upscaler, "name", "None") != "None":
        scale = max(width / image.width, height / image.height)
        if scale > 1.0:
            image = run_upscaler(
                upscaler, image, scale, tile=tile, overlap=overlap, progress=progress, check=check
            )
    if image.size != (width, height):
        image = image.resize((width, height), resample=Image.Resampling.LANCZOS)
    return image


class HiresTarget(NamedTuple):
    width: int  # the size the second pass upscales to
    height: int
    truncate_x: int  # latent columns / rows cut after upscaling (resize to another aspect)
    truncate_y: int


def hires_target(
    width: int, height: int, scale: float, resize_width: int, resize_height: int
) -> HiresTarget:
    """A1111's calculate_target_resolution: "Upscale by" unless a resize size is given; a
    resize to another aspect ratio upscales to cover it and crops the latents."""
    if resize_width == 0 and resize_height == 0:
        return HiresTarget(int(width * scale), int(height * scale), 0, 0)
    if resize_height == 0:
        return HiresTarget(resize_width, resize_width * height // width, 0, 0)
    if resize_width == 0:
        return HiresTarget(resize_height * width // height, resize_height, 0, 0)
    if width / height < resize_width / resize_height:
        to_x, to_y = resize_width, resize_width * height // width
    else:
        to_x, to_y = resize_height * width // height, resize_height
    return HiresTarget(to_x, to_y, (to_x - resize_width) // 8, (to_y - resize_height) // 8)


def truncate(latents: torch.Tensor, target: HiresTarget) -> torch.Tensor:
    tx, ty = target.truncate_x, target.truncate_y
    height, width = latents.shape[2], latents.shape[3]
    return latents[:, :, ty // 2 : height - (ty + 1) // 2, tx // 2 : width - (tx + 1) // 2]


def img2img_steps(steps: int, denoising_strength: float, fix_steps: bool = True) -> tuple[int, int]:
    """A1111's setup_img2img_steps (returns the schedule's length and t_enc). With explicit
    steps (hires fix) or "img2img_fix_steps": build a schedule of steps / strength and run
    its last `steps`; otherwise (img2img) a schedule of `steps` of which about
    strength x steps run."""
    strength = min(denoising_strength, 0.999)
    if fix_steps:
        return (int(steps / strength) if denoising_strength > 0 else 0), steps - 1
    return steps, int(strength * steps)


def img2img_sigmas(sampler: Any, sigmas: torch.Tensor, total: int, t_enc: int) -> torch.Tensor:
    """The tail of a `total`-step schedule an img2img pass runs: t_enc + 1 steps from
    sigmas[total - t_enc - 1] (A1111's k-diffusion samplers), or the last t_enc steps of a
    timestep sampler's schedule (DDIM, PLMS, UniPC: A1111's timesteps[:t_enc], then
    UniPC's timestep 0; DDIM and PLMS stop at timestep 1, t_enc - 1 model calls)."""
    if getattr(sampler, "timestep_sampler", False):
        # the last t_enc timesteps (and timestep 0's sigma where the schedule ends there)
        ends_at_zero = len(sigmas) > total
        return sigmas[-(t_enc + 1) :] if ends_at_zero else sigmas[-t_enc:]
    return sigmas[total - t_enc - 1 :]


def img2img_noise_level(sigmas: torch.Tensor, total: int, t_enc: int) -> float:
    """The sigma A1111 noises the init latents to: sigmas[total - t_enc - 1] of the
    `total`-step schedule, for every sampler. A k-diffusion sampler starts there; a timestep
    sampler starts one timestep lower, at timesteps[t_enc - 1], yet A1111 noises the
    latents to timesteps[t_enc] (`sd_samplers_timesteps.sample_img2img`), which is this
    sigma (the schedule lists the timesteps from the top, then sigma_min)."""
    return float(sigmas[total - t_enc - 1])


def noised_latents(
    latents: torch.Tensor, noise: torch.Tensor, level: float, first: float, extra: float = 0.0
) -> torch.Tensor:
    """The sampler's starting x: `latents` + `noise` x `level`, as the sampler sees it at
    its first sigma `first`. When the two differ (A1111's timestep samplers) the model is
    given the variance-preserving latents of noise level `level`, sqrt(a) x latents +
    sqrt(1 - a) x noise, at the timestep of `first`: x is scaled so that x / sqrt(1 +
    first^2), the model's input, is exactly that. `extra` (A1111's img2img_extra_noise)
    adds `noise` x `extra` more: to x for k-diffusion samplers, sqrt(a) x that to the
    variance-preserving latents for timestep samplers, the same in either scale."""
    x = latents + noise * level
    if extra:
        x = x + noise * extra
    if level != first:
        x = x * ((1 + first**2) / (1 + level**2)) ** 0.5
    return x
