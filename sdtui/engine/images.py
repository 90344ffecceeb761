"""Latents <-> pixels, and A1111's image grids."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image


def vae_scaling(vae: torch.nn.Module) -> tuple[float, float]:
    """(scaling_factor, shift_factor) of a diffusers AutoencoderKL."""
    config = vae.config
    return float(config.scaling_factor), float(getattr(config, "shift_factor", None) or 0.0)


@torch.no_grad()
def decode_latents(vae: torch.nn.Module, latents: torch.Tensor) -> list[Image.Image]:
    """Decode one latent at a time (peak memory of a single image), to RGB images."""
    return [to_image(_decode_one(vae, latent)[0]) for latent in latents]


@torch.no_grad()
def decode_pixels(vae: torch.nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """The VAE's output for `latents`, [B, 3, H, W] float on the CPU, unclamped (about
    [-1, 1]: A1111's decode_first_stage), one latent at a time."""
    return torch.cat([_decode_one(vae, latent).cpu() for latent in latents])


def _decode_one(vae: torch.nn.Module, latent: torch.Tensor) -> torch.Tensor:
    scale, shift = vae_scaling(vae)
    parameter = next(vae.parameters())
    latent = latent[None].to(parameter.device, parameter.dtype) / scale + shift
    pixels = vae.decode(latent).sample.float()
    if not torch.isfinite(pixels).all() and parameter.dtype != torch.float32:
        pixels = vae.float().decode(latent.float()).sample  # fp16 VAE overflow: retry
        vae.to(parameter.dtype)
    return pixels


def to_image(pixels: torch.Tensor) -> Image.Image:
    """A [3, H, W] tensor in [-1, 1] as an 8-bit RGB image."""
    array = ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), "RGB")


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB image as a [3, H, W] tensor in [-1, 1]."""
    import numpy as np

    array = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32).copy())
    return array.permute(2, 0, 1) / 127.5 - 1


@torch.no_grad()
def encode_images(vae: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> scaled latents (the distribution's mean, as A1111's
    "Full" encoder for image conditioning)."""
    scale, shift = vae_scaling(vae)
    parameter = next(vae.parameters())
    latents = vae.encode(pixels.to(parameter.device, parameter.dtype)).latent_dist.mode()
    return (latents - shift) * scale


def grid_rows(count: int, batch_size: int, rows: int = -1) -> int:
    """A1111's rows: `n_rows` > 0 as given, 0 = batch size, -1 = round(sqrt(count))."""
    if rows > 0:
        return min(rows, count)
    if rows == 0:
        return min(batch_size, count)
    return max(1, min(round(math.sqrt(count)), count))


def image_grid(images: Sequence[Image.Image], batch_size: int, rows: int = -1) -> Image.Image:
    rows = grid_rows(len(images), batch_size, rows)
    columns = math.ceil(len(images) / rows)
    width, height = images[0].size
    grid = Image.new("RGB", (columns * width, rows * height), "black")
    for index, image in enumerate(images):
        grid.paste(image, box=(index % columns * width, index // columns * height))
    return grid
