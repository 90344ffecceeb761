"""Live previews: A1111's show_progress_type. "Full" decodes the first latent with the
model's VAE; every other choice draws the cheap preview below ("Approx NN" and "TAESD" need
weights A1111 downloads, which sdtui does not have).

Cheap live previews: latents -> RGB by one linear map per latent pixel.

A1111's "Approx cheap" multiplies each latent pixel by a fixed 4x3 matrix that only fits the
original SD VAEs. Here the matrix (and a bias) is fitted to the loaded model's own VAE, once,
on first use: a picture of flat colour patches is encoded, and least squares maps the
latents at each patch's centre to its colour. So the preview is right for any VAE —
fine-tunes, SDXL's, or the small one of sdtui's own default model — and costs one small
encode per model plus a matrix product per preview.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from sdtui.engine.images import decode_latents, encode_images

FULL = "Full"  # the one show_progress_type that is not the cheap preview
PATCH = 32  # pixels per colour patch (4 latent pixels at factor 8)
GRID = 6  # patches per side: 36 colours
_ATTRIBUTE = "_sdtui_preview_map"


def fit_preview_map(vae: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    """[C + 1, 3] weights (last row: bias) with rgb ~= [latent, 1] @ map, rgb in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    colours = torch.rand(GRID * GRID, 3, generator=generator) * 2 - 1
    colours[:8] = torch.tensor(  # the corners of the colour cube, so the fit spans them
        [[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)]
    )
    size = PATCH * GRID
    picture = colours.reshape(GRID, GRID, 3).permute(2, 0, 1)
    picture = picture.repeat_interleave(PATCH, 1).repeat_interleave(PATCH, 2)
    with torch.no_grad():
        latents = encode_images(vae, picture.reshape(1, 3, size, size)).float()[0]
    factor = size // latents.shape[-1]
    step = PATCH // factor  # latent pixels per patch
    inner = slice(step // 4, step - step // 4)  # the centre, away from the neighbours
    rows, targets = [], []
    for index, colour in enumerate(colours):
        row, column = divmod(index, GRID)
        block = latents[:, row * step : (row + 1) * step, column * step : (column + 1) * step]
        samples = block[:, inner, inner].reshape(latents.shape[0], -1).T
        rows.append(samples)
        targets.append(colour.expand(samples.shape[0], 3))
    design = torch.cat(rows)
    design = torch.cat([design, torch.ones(design.shape[0], 1)], dim=1)
    return torch.linalg.lstsq(design, torch.cat(targets)).solution


def preview_map(model: Any) -> torch.Tensor:
    """The fitted map of a loaded model's VAE (fitted on first use, then kept)."""
    fitted = getattr(model, _ATTRIBUTE, None)
    if fitted is None:
        fitted = fit_preview_map(model.vae)
        setattr(model, _ATTRIBUTE, fitted)
    return fitted


def latent_preview(latents: torch.Tensor, mapping: torch.Tensor) -> Image.Image:
    """The first latent of a batch as a small RGB picture (one pixel per latent pixel)."""
    x = latents[0].detach().float().cpu()
    rgb = torch.einsum("chw,cr->hwr", x, mapping[:-1]) + mapping[-1]
    pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(pixels.numpy(), "RGB")


def preview_image(latents: torch.Tensor, model: Any, method: str) -> Image.Image:
    """The preview of the first latent of a batch by `method` (A1111's show_progress_type):
    the VAE's picture for "Full", else the cheap one (one pixel per latent pixel)."""
    if method == FULL:
        return decode_latents(model.vae, latents[:1])[0]
    return latent_preview(latents, preview_map(model))
