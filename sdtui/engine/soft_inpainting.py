"""Soft inpainting, A1111's built-in always-on script (extensions-builtin/soft-inpainting,
1.8+): the mask's grey levels decide how much of the original survives, step by step.

    soft = SoftInpainting.from_params(params)             # None when it is off
    repaint = soft_latent_mask(mask, 8, 8)                 # not rounded to 0 / 1
    blend = SoftBlend(soft, repaint)                       # per model call, instead of the
    blended = blend(init, denoised, sigma)                 #   linear keep-the-init blend
    overlays = soft_overlays(soft, repaint, init, final, bases, 64, 64, None)

With it on, the mask is never rounded: an alpha mask keeps its alpha (`unrounded_mask`) and
the latent mask keeps its bicubic grey levels. Every model call blends the init latents
into the prediction (timestep samplers: into the input) with `latent_blend`, a linear
interpolation whose vectors' lengths are interpolated separately, as power means (the
"transition contrast boost" p), by the mask `repaint ** (sigma ** schedule_bias *
preservation_strength)`: partly masked cells keep more of the original while the noise is
high. A1111 hands timestep samplers (DDIM, PLMS, UniPC) the timestep where the others get
sigma, so there the exponent uses the timestep (0-999) too. The final latents are not
blended at all. Instead of the usual overlay, the input's pixels go back where the result
changed little: the latents' per-cell distance, filtered (a weighted near-maximum, then a
weighted inter-quartile mean over a 5x5 Gaussian window), divided by the "difference
threshold" (scaled by the mask as far as "mask influence" says), turned into opacity by
1 / (1 + d ** contrast) and smootherstep, enlarged to the image (Lanczos), blurred (PIL's
Gaussian, radius 4) and pasted back as the input's alpha (`overlay_of`).
An inpainting (9-channel) model is conditioned on the unrounded mask too (A1111's
mask_round False reaches img2img_image_conditioning).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from sdtui.core.discrete import DiscreteSchedule
from sdtui.engine.masking import (
    BACKGROUND,
    CROP_AND_RESIZE,
    LATENT_RESIZE,
    RESIZE_AND_FILL,
    flatten,
    overlay_of,
    resize_image,
)
from sdtui.params.schema import RESIZE_MODES, GenerationParams

EPSILON = 0.00001  # A1111's guard against zero lengths (and 1.00001 in the mask scalar)
KERNEL_STDDEV, KERNEL_RADIUS = 1.5, 2  # the difference map's filter window
COMPOSITE_BLUR = 4  # PIL GaussianBlur radius of the pixel composite mask


@dataclasses.dataclass(frozen=True)
class SoftInpainting:
    """The six sliders, by A1111's labels (its defaults)."""

    schedule_bias: float = 1.0
    preservation_strength: float = 0.5
    transition_contrast_boost: float = 4.0
    mask_influence: float = 0.0
    difference_threshold: float = 0.5
    difference_contrast: float = 2.0

    @classmethod
    def from_params(cls, params: GenerationParams) -> SoftInpainting | None:
        """The request's settings, or None when soft inpainting is off."""
        if not params.soft_inpainting:
            return None
        return cls(
            params.soft_inpainting_schedule_bias,
            params.soft_inpainting_preservation_strength,
            params.soft_inpainting_transition_contrast_boost,
            params.soft_inpainting_mask_influence,
            params.soft_inpainting_difference_threshold,
            params.soft_inpainting_difference_contrast,
        )


# -- the latents -----------------------------------------------------------------------------


def unrounded_mask(mask: Image.Image) -> Image.Image:
    """A mask whose transparency is its alpha, as is (A1111's create_binary_mask with
    round=False); other masks unchanged."""
    if mask.mode in ("LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        mask = mask.convert("RGBA")
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        return mask.getchannel("A")
    return mask


def soft_latent_mask(mask: Image.Image, height: int, width: int) -> torch.Tensor:
    """The repaint mask at latent size, [1, 1, height, width] in [0, 1]: the bicubic
    downscale, not rounded (A1111 with mask_round off)."""
    small = mask.convert("L").resize((width, height), resample=Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(small, dtype=np.float32) / 255)[None, None]


def modified_mask(
    repaint: torch.Tensor, level: float, bias: float, strength: float
) -> torch.Tensor:
    """A1111's get_modified_nmask: `repaint ** (level ** bias * strength)`, the share of
    the current latents at noise level `level` (sigma; timestep samplers: the timestep)."""
    return torch.pow(repaint, (level**bias) * strength)


def latent_blend(
    original: torch.Tensor, current: torch.Tensor, t: torch.Tensor, boost: float
) -> torch.Tensor:
    """(1 - t) * original + t * current over [B, C, h, w] latents, rescaled per cell so the
    vector's length is the power mean ((1 - t) |original| ** p + t |current| ** p) ** (1 / p)
    of the two lengths, p = `boost` (A1111's latent_blend; lengths in float64). `t`: [B or
    1, C or 1, h, w]."""
    t_cell = t[:, :1]
    mixed = original * (1 - t) + current * t
    length = torch.linalg.vector_norm(mixed, dim=1, keepdim=True).double() + EPSILON
    wanted_a = torch.linalg.vector_norm(original, dim=1, keepdim=True).double() ** boost
    wanted_b = torch.linalg.vector_norm(current, dim=1, keepdim=True).double() ** boost
    wanted = (wanted_a * (1 - t_cell) + wanted_b * t_cell) ** (1 / boost)
    return mixed * (wanted / length).to(mixed.dtype)


@dataclasses.dataclass
class SoftBlend:
    """The per-call blend for `LatentMaskDenoiser`: blend(original, current, sigma)."""

    settings: SoftInpainting
    repaint: torch.Tensor  # [1, 1, h, w], not rounded
    timesteps: bool = False  # the sampler is a timestep one: A1111 gives it the timestep

    def level(self, sigma: Any) -> float:
        level = float(torch.as_tensor(sigma).flatten()[0])  # A1111: sigma[0]
        if self.timesteps:
            schedule = DiscreteSchedule.stable_diffusion()
            level = float(schedule.sigma_to_t(torch.tensor(level), quantize=True))
        return level

    def __call__(self, original: torch.Tensor, current: torch.Tensor, sigma: Any) -> torch.Tensor:
        soft = self.settings
        repaint = self.repaint.to(current.device, current.dtype)
        t = modified_mask(
            repaint, self.level(sigma), soft.schedule_bias, soft.preservation_strength
        )
        return latent_blend(original, current, t, soft.transition_contrast_boost)


# -- the pixel composite ---------------------------------------------------------------------


def gaussian_kernel(stddev: float = KERNEL_STDDEV, radius: int = KERNEL_RADIUS) -> np.ndarray:
    """A (2 radius + 1)^2 Gaussian, 1 at the centre, shifted and rescaled to reach 0 one
    pixel beyond `radius` (A1111's get_gaussian_kernel)."""
    zero = math.exp(-((radius + 1.0) ** 2) / stddev**2)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return np.maximum(0.0, (np.exp(-squared / stddev**2) - zero) / (1 - zero))


def weighted_histogram_filter(
    image: np.ndarray, kernel: np.ndarray, low: float, high: float, min_width: float = 1.0
) -> np.ndarray:
    """Per pixel: the window's values sorted, stacked with their kernel weights (cells off
    the image left out), and the mean over the part of the stack between the fractions
    `low` and `high` of its height (at least `min_width` tall, kept inside the stack),
    each value weighted by its overlap (A1111's weighted_histogram_filter)."""
    size_y, size_x = kernel.shape
    rows, cols = image.shape
    pad = ((size_y // 2, size_y - 1 - size_y // 2), (size_x // 2, size_x - 1 - size_x // 2))
    padded = np.pad(image.astype(np.float64), pad)
    inside = np.pad(np.ones(image.shape), pad)
    windows = [(y, x) for y in range(size_y) for x in range(size_x)]
    values = np.stack([padded[y : y + rows, x : x + cols] for y, x in windows], axis=-1)
    weights = np.stack([inside[y : y + rows, x : x + cols] * kernel[y, x] for y, x in windows], -1)
    order = np.argsort(values, axis=-1, kind="stable")
    values = np.take_along_axis(values, order, axis=-1)
    weights = np.take_along_axis(weights, order, axis=-1)
    tops = np.cumsum(weights, axis=-1)
    bottoms = tops - weights
    total = tops[..., -1]
    start, end = total * low, total * high
    narrow = end - start < min_width
    centre = (start + end) / 2
    start = np.where(narrow, centre - min_width / 2, start)
    end = np.where(narrow, centre + min_width / 2, end)
    over = narrow & (end > total)
    start, end = np.where(over, total - min_width, start), np.where(over, total, end)
    under = narrow & (start < 0)
    start, end = np.where(under, 0.0, start), np.where(under, min_width, end)
    overlap = np.minimum(end[..., None], tops) - np.maximum(start[..., None], bottoms)
    overlap = np.clip(overlap, 0.0, None)
    weight = overlap.sum(axis=-1)
    mean = (values * overlap).sum(axis=-1) / np.where(weight == 0, 1.0, weight)
    return np.where(weight == 0, 0.0, mean).astype(image.dtype)


def smootherstep(x: np.ndarray) -> np.ndarray:
    """6x^5 - 15x^4 + 10x^3 (for x in [0, 1])."""
    return x * x * x * (x * (6 * x - 15) + 10)


def difference_weights(
    settings: SoftInpainting, distance: np.ndarray, repaint: np.ndarray
) -> np.ndarray:
    """How much of the result shows, in [0, 1], from a (filtered) latent distance map and
    the latent repaint mask: 0.5 opacity of the original at distance = threshold x the
    mask scalar (1 without mask influence)."""
    scalar = 1 - np.clip(repaint, 0, 1) ** np.float32(settings.preservation_strength / 2)
    influence = settings.mask_influence
    scalar = np.float32(0.5 * (1 - influence)) + scalar * np.float32(influence)
    scalar = scalar / (np.float32(1 + EPSILON) - scalar)
    half = np.float32(settings.difference_threshold) * scalar
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(half == 0, np.where(distance > 0, np.inf, 0.0), distance / half)
        opacity = 1 / (1 + ratio.astype(np.float32) ** np.float32(settings.difference_contrast))
    return 1 - smootherstep(opacity)


def difference_masks(
    settings: SoftInpainting,
    repaint: torch.Tensor,
    original: torch.Tensor,
    generated: torch.Tensor,
) -> list[np.ndarray]:
    """Per image of the batch: the latent-size uint8 mask of where the result shows (A1111's
    apply_adaptive_masks before it enlarges them). `repaint`: [1, 1, h, w]; the latents
    [B, C, h, w]."""
    mask = repaint[0, 0].float().cpu().numpy()
    distances = torch.linalg.vector_norm(generated.float() - original.float(), dim=1)
    kernel = gaussian_kernel()
    masks = []
    for distance in distances.cpu().numpy():
        distance = weighted_histogram_filter(distance, kernel, 0.9, 1.0)
        distance = weighted_histogram_filter(distance, kernel, 0.25, 0.75)
        weights = difference_weights(settings, distance, mask)
        masks.append((255.0 * weights).astype(np.uint8))
    return masks


def composite_mask(
    small: np.ndarray,
    width: int,
    height: int,
    paste_to: tuple[int, int, int, int] | None = None,
    size: tuple[int, int] | None = None,
) -> Image.Image:
    """A latent-size uint8 mask as the overlay mask (L, 255 = the result): enlarged to
    width x height, blurred, and with `paste_to` (x, y, w, h) scaled into that box of an
    otherwise black image of `size`."""
    mask = resize_image(RESIZE_AND_FILL, Image.fromarray(small, "L"), width, height)
    mask = mask.filter(ImageFilter.GaussianBlur(radius=COMPOSITE_BLUR))
    if paste_to is not None and size is not None:
        x, y, box_width, box_height = paste_to
        base = Image.new("L", size)
        base.paste(resize_image(CROP_AND_RESIZE, mask, box_width, box_height), (x, y))
        mask = base
    return mask


def overlay_bases(
    params: GenerationParams,
    init_images: Sequence[Image.Image],
    paste_to: tuple[int, int, int, int] | None,
    upscaler: Any = None,
    background: str = BACKGROUND,
    **tiling: Any,
) -> list[Image.Image]:
    """The input images as the overlays show them, before any mask (flattened; resized as
    img2img resizes them unless Only masked or latent upscale)."""
    mode = RESIZE_MODES.index(params.resize_mode)
    flat = [flatten(image, background) for image in init_images]
    if paste_to is not None or mode == LATENT_RESIZE:
        return flat
    return [
        resize_image(mode, image, params.width, params.height, upscaler, **tiling) for image in flat
    ]


def soft_overlays(
    settings: SoftInpainting,
    repaint: torch.Tensor,
    original: torch.Tensor,
    generated: torch.Tensor,
    bases: Sequence[Image.Image],
    width: int,
    height: int,
    paste_to: tuple[int, int, int, int] | None = None,
) -> list[Image.Image]:
    """One RGBA overlay per generated image: its base image, opaque where the latents
    changed little, transparent where the result shows."""
    overlays = []
    for index, small in enumerate(difference_masks(settings, repaint, original, generated)):
        base = bases[index % len(bases)]
        mask = composite_mask(small, width, height, paste_to, base.size)
        overlays.append(overlay_of(base, mask))
    return overlays
