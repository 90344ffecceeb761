"""img2img's inputs as A1111 prepares them (`StableDiffusionProcessingImg2Img.init`): the
init images at the target size, the inpainting mask, the overlays that put the unmasked
pixels back, and the mask's latent and conditioning forms.

    inputs = prepare_inputs(params, [image], mask)
    inputs.images      # what is encoded: resized (or the Only masked crop), masked content
    inputs.overlays    # per image: the input's pixels, transparent where repainted
    inputs.paste_to    # Only masked: (x, y, w, h) of the crop in the input

The mask (white = repaint; alpha or grey, any size: it is stretched to the input's size)
is made binary, inverted for "Inpaint not masked" and blurred. "Whole picture" resizes it
like the image; its overlay is the blurred mask doubled (so the blur's outer half shows the
input). "Only masked" takes the box around the blurred mask plus the padding, grows it to
the target's aspect ratio, and repaints that crop at the full target size; an empty mask
then runs as plain img2img (A1111 does the same). Every masked content but "original" fills
the image before it is encoded (A1111's `fill`; the latent modes then replace the latents).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from sdtui.engine.images import encode_images
from sdtui.engine.masking import (
    BACKGROUND,
    LATENT_RESIZE,
    RESIZE_AND_FILL,
    binary_mask,
    blur_mask,
    crop_region,
    expand_crop_region,
    fill,
    flatten,
    overlay_of,
    resize_image,
)
from sdtui.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE
from sdtui.params.schema import INPAINT_AREAS, MASK_MODES, RESIZE_MODES, GenerationParams

ONLY_MASKED = INPAINT_AREAS[1]
NOT_MASKED = MASK_MODES[1]


@dataclass
class Img2ImgInputs:
    images: list[Image.Image]  # encoded as the init latents
    mask: Image.Image | None = None  # L at width x height: what the latents repaint
    overlays: list[Image.Image] | None = None  # RGBA, one per image
    paste_to: tuple[int, int, int, int] | None = None  # Only masked: x, y, w, h
    dropped: bool = False  # Only masked with an empty mask: plain img2img


@dataclass
class _Mask:
    latent: Image.Image | None
    overlay: Image.Image | None
    crop: tuple[int, int, int, int] | None = None


def _doubled(mask: Image.Image) -> Image.Image:
    values = np.clip(np.asarray(mask, dtype=np.float32) * 2, 0, 255).astype(np.uint8)
    return Image.fromarray(values, "L")


def _prepare_mask(params: GenerationParams, mask: Image.Image, size: tuple[int, int]) -> _Mask:
    width, height = params.width, params.height
    mask = binary_mask(mask)
    if mask.size != size:
        mask = mask.resize(size, resample=Image.Resampling.BILINEAR)  # no ringing
    if params.mask_mode == NOT_MASKED:
        mask = ImageOps.invert(mask)
    mask = blur_mask(mask, params.mask_blur)
    if params.inpaint_area != ONLY_MASKED:
        resized = resize_image(RESIZE_MODES.index(params.resize_mode), mask, width, height)
        return _Mask(resized, _doubled(resized))
    box = crop_region(mask, params.inpaint_full_res_padding)
    if box is None:
        return _Mask(None, None)
    box = expand_crop_region(box, width, height, *mask.size)
    return _Mask(resize_image(RESIZE_AND_FILL, mask.crop(box), width, height), mask, box)


def prepare_inputs(
    params: GenerationParams,
    init_images: Sequence[Image.Image],
    mask: Image.Image | None = None,
    *,
    upscaler: Any = None,
    check: Any = None,
    background: str = BACKGROUND,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Img2ImgInputs:
    """The images to encode, and with a mask, the latent mask and the overlays. `upscaler`:
    enlarges images (A1111's "Upscaler for img2img") in `tile` px tiles with `overlap`;
    `check`: interrupt between its tiles."""
    tiling = {"check": check, "tile": tile, "overlap": overlap}
    if not init_images:
        raise ValueError("img2img needs an init image")
    width, height = params.width, params.height
    mode = RESIZE_MODES.index(params.resize_mode)
    flat = [flatten(image, background) for image in init_images]
    prepared = _Mask(None, None)
    if mask is not None:
        if any(image.size != flat[0].size for image in flat):
            raise ValueError("inpainting several images needs them all the same size")
        prepared = _prepare_mask(params, mask, flat[0].size)
    inputs = Img2ImgInputs(
        [], prepared.latent, dropped=mask is not None and prepared.latent is None
    )
    if prepared.latent is not None:
        inputs.overlays = []
    if prepared.crop is not None:
        left, top, right, bottom = prepared.crop
        inputs.paste_to = (left, top, right - left, bottom - top)
    for image in flat:
        if prepared.crop is None and mode != LATENT_RESIZE:
            image = resize_image(mode, image, width, height, upscaler, **tiling)
        if prepared.latent is not None and prepared.overlay is not None:
            if prepared.crop is None and image.size != (width, height):
                raise ValueError(
                    f"{params.resize_mode} with a mask needs the image at {width}x{height} "
                    f"(it is {image.width}x{image.height}); choose another resize mode"
                )
            inputs.overlays.append(overlay_of(image, prepared.overlay))  # type: ignore[union-attr]
        if prepared.crop is not None:
            image = resize_image(
                RESIZE_AND_FILL, image.crop(prepared.crop), width, height, upscaler, **tiling
            )
        if prepared.latent is not None and params.inpainting_fill != "original":
            image = fill(image, prepared.latent)  # A1111: also under latent noise / nothing
        inputs.images.append(image)
    return inputs


def latent_mask(mask: Image.Image, height: int, width: int) -> torch.Tensor:
    """The repaint mask at latent size, [1, 1, height, width] of 0 / 1 (A1111: a bicubic
    downscale, rounded)."""
    small = mask.convert("L").resize((width, height), resample=Image.Resampling.BICUBIC)
    values = np.around(np.asarray(small, dtype=np.float32) / 255)
    return torch.from_numpy(values)[None, None]


def inpainting_conditioning(
    vae: torch.nn.Module,
    pixels: torch.Tensor,
    mask: Image.Image | None,
    weight: float,
    latent_size: tuple[int, int],
    rounded: bool = True,
) -> torch.Tensor:
    """An inpainting model's image conditioning for [B, 3, H, W] pixels in [-1, 1]: the
    mask (all ones without one; rounded to 0 / 1 unless `rounded` is False, as soft
    inpainting asks) at latent size before the latents of the image with the masked area
    blanked out by `weight` (A1111's "Conditional mask weight")."""
    if mask is None:
        binary = torch.ones(1, 1, *pixels.shape[2:])
    else:
        binary = torch.from_numpy(np.asarray(mask.convert("L"), dtype=np.float32) / 255)
        binary = (torch.round(binary) if rounded else binary)[None, None]
    masked = torch.lerp(pixels, pixels * (1.0 - binary), weight)
    latents = encode_images(vae, masked).float()
    binary = binary.to(latents.device)
    if latents.shape[2:] != latent_size:  # latent upscale: the image kept its own size
        latents = torch.nn.functional.interpolate(latents, size=latent_size, mode="bilinear")
    small = torch.nn.functional.interpolate(binary, size=latent_size)
    return torch.cat([small.expand(len(latents), -1, -1, -1), latents], dim=1)
