"""instruct-pix2pix ("edit") checkpoints: their image conditioning and A1111's three-branch
classifier-free guidance with the "Image CFG Scale".

An instruct-pix2pix UNet (SD1 with 8 input channels; A1111 loads it with
`cond_stage_key: edit`) sees the noisy latents and, as 4 more channels, the VAE encoding of
the image to edit: the distribution's mode, *not* multiplied by the VAE's scaling factor
(A1111 1.7+ `edit_image_conditioning`: `encode_first_stage(image).mode()`, which is how the
model was trained; A1111 1.6 scaled it, its bug #13136).

Guidance (A1111's `combine_denoised_for_edit_model`), three predictions per image:

    cond     = D(x; prompt, image)
    img_cond = D(x; negative prompt, image)
    uncond   = D(x; negative prompt, zeros)
    denoised = uncond + cfg * (cond - img_cond) + image_cfg * (img_cond - uncond)

At Image CFG Scale 1 this is ordinary CFG with the image given to both branches, and A1111
runs its ordinary two-branch guidance then (which also allows AND); so does sdtui
(`uses_edit_guidance`). With any other value AND is refused, as A1111 refuses it.

txt2img cannot run an edit model: A1111 hands it a txt2img inpainting conditioning (5
channels, for an 8-channel UNet) and fails; sdtui refuses with `EDIT_NEEDS_AN_IMAGE`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

EDIT_NEEDS_AN_IMAGE = (
    "instruct-pix2pix checkpoints edit an image: use img2img (they cannot run txt2img, "
    "nor a hires fix pass; A1111's txt2img fails on them too)"
)
AND_NOT_SUPPORTED = (
    "AND is not supported with instruct-pix2pix checkpoints unless the Image CFG Scale is 1 "
    "(as in A1111)"
)

Extra = Callable[[torch.Tensor, torch.Tensor], dict[str, Any]]


@torch.no_grad()
def edit_conditioning(
    vae: torch.nn.Module, pixels: torch.Tensor, latent_size: tuple[int, int]
) -> torch.Tensor:
    """The image conditioning of an edit model for [B, 3, H, W] pixels in [-1, 1]: the VAE
    distribution's mode, unscaled, [B, 4, h, w] float. With the latent upscale resize mode
    the image keeps its own size; its encoding is then resized to `latent_size` (bilinear,
    as for inpainting models; A1111 fails there)."""
    parameter = next(vae.parameters())
    latents = vae.encode(pixels.to(parameter.device, parameter.dtype)).latent_dist.mode()
    latents = latents.float()
    if tuple(latents.shape[2:]) != tuple(latent_size):
        latents = torch.nn.functional.interpolate(latents, size=latent_size, mode="bilinear")
    return latents


def uses_edit_guidance(image_cfg_scale: float | None) -> bool:
    """A1111's `is_edit_model`: an edit model runs (`image_cfg_scale` is None otherwise)
    and the Image CFG Scale is not 1."""
    return image_cfg_scale is not None and image_cfg_scale != 1.0


def combine_edit(
    out_cond: torch.Tensor,
    out_img_cond: torch.Tensor,
    out_uncond: torch.Tensor,
    cfg_scale: float,
    image_cfg_scale: float,
) -> torch.Tensor:
    """uncond + cfg * (cond - img_cond) + image_cfg * (img_cond - uncond)."""
    return (
        out_uncond
        + cfg_scale * (out_cond - out_img_cond)
        + image_cfg_scale * (out_img_cond - out_uncond)
    )


def _batch_inputs(batches: Sequence[Any]) -> dict[str, Any]:
    """The denoiser's text inputs for several conditioning batches, one after another."""
    inputs = {"context": torch.cat([batch.context for batch in batches])}
    if getattr(batches[0], "pooled", None) is not None:
        inputs["pooled"] = torch.cat([batch.pooled for batch in batches])
    return inputs


def _blank_image(inputs: dict[str, Any], start: int) -> dict[str, Any]:
    """`inputs` with the image conditioning of rows `start:` zeroed (the uncond branch)."""
    image = inputs.get("image_conditioning")
    if image is None:
        raise ValueError("an instruct-pix2pix model runs without its image conditioning")
    image = image.clone()
    image[start:] = 0
    return {**inputs, "image_conditioning": image}


def edit_denoised(
    denoiser: Callable[..., torch.Tensor],
    extra: Extra,
    x: torch.Tensor,
    sigma: torch.Tensor,
    groups: Sequence[Sequence[tuple[int, float]]],
    cond: Any,
    uncond: Any,
    cfg_scale: float,
    image_cfg_scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(denoised, the fully unconditional prediction) of one model call with A1111's edit
    guidance. `denoiser(x, sigma, context=..., image_conditioning=..., ...)`; `extra(images,
    is_uncond)` gives each row's other inputs, the image conditioning among them; `groups`,
    `cond` and `uncond` as for `CFGDenoiser` (one prompt per image: no AND)."""
    if any(len(group) != 1 for group in groups):
        raise ValueError(AND_NOT_SUPPORTED)
    count = len(x)
    images = torch.arange(count).repeat(3)
    is_uncond = torch.arange(3 * count) >= count
    x_in, sigma_in = torch.cat([x, x, x]), torch.cat([sigma, sigma, sigma])
    if cond.context.shape[1] == uncond.context.shape[1]:
        inputs = {**_batch_inputs([cond, uncond, uncond]), **extra(images, is_uncond)}
        out = denoiser(x_in, sigma_in, **_blank_image(inputs, 2 * count))
    else:  # different token lengths: the prompts' batch, then the negative prompts'
        first = {**_batch_inputs([cond]), **extra(images[:count], is_uncond[:count])}
        second = {**_batch_inputs([uncond, uncond]), **extra(images[count:], is_uncond[count:])}
        out = torch.cat(
            [
                denoiser(x_in[:count], sigma_in[:count], **first),
                denoiser(x_in[count:], sigma_in[count:], **_blank_image(second, count)),
            ]
        )
    out_cond, out_img_cond, out_uncond = out.chunk(3)
    denoised = combine_edit(out_cond, out_img_cond, out_uncond, cfg_scale, image_cfg_scale)
    return denoised, out_uncond
