"""img2img and inpainting: the init images' latents, noised to the denoising strength and
sampled back, as A1111's StableDiffusionProcessingImg2Img.

    images = img2img(model, resolve(params), EngineOptions(samplers, schedules), [init], mask)

The step rule is A1111's: at strength d a schedule of `steps` is built and its last int(d *
steps) + 1 steps run (timestep samplers: int(d * steps); with "img2img_fix_steps", steps /
d are planned and exactly `steps` run); the latents start as init + noise * the first sigma
of those (timestep samplers: the sigma one timestep above their first, as A1111 noises
them; `sdtui.engine.upscale.noised_latents`), the noise scaled by the noise multiplier.
Strength 0 returns the input's VAE round trip (sdtui skips sampling; A1111 still runs one
step at the schedule's smallest sigma); strength 1 runs the whole schedule from init +
noise * the largest sigma, where little of the image is left. The init latents are the VAE
distribution's mean (A1111's "Full" encoder samples it).

With a mask (`sdtui.engine.img2img_inputs`): "latent noise" puts the first batch's seed
noise under the mask, "latent nothing" zeros; every model call's prediction keeps the init
latents outside the mask (A1111's CFGDenoiser: after the prediction for k-diffusion
samplers, on the input for timestep samplers), and so do the final latents. 9-channel
inpainting models see the masked image and the mask (weighted by "Conditional mask
weight"). The decoded image gets the input's pixels pasted back over everything the mask
does not cover, so those pixels are exactly the input's. Soft inpainting
(`sdtui.engine.soft_inpainting`) keeps the mask's grey levels, blends the init latents in
by them at every call, skips the final blend, and pastes the input back where the latents
changed little instead. instruct-pix2pix (8-channel) models see the input's latents and
run A1111's three-branch guidance with the "Image CFG Scale" (`sdtui.engine.edit_model`).
Batches, seeds, LoRA, the refiner, previews, interrupt and skip work as in txt2img
(`sdtui.engine.batches`).

"Extra noise" (A1111's img2img_extra_noise) adds the seed's noise x that much more to the
starting latents. "Color correction" (img2img_color_correction) matches each decoded image's
colours to its input's (`sdtui.engine.color_correction`), after face restoration and before
the overlay, in A1111's order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from sdtui.core.discrete import DiscreteSchedule
from sdtui.core.noise import ImageRNG, image_seeds
from sdtui.engine.batches import GeneratedImage, check_other_models, run_batches
from sdtui.engine.color_correction import color_corrections
from sdtui.engine.edit_model import edit_conditioning
from sdtui.engine.images import encode_images, to_tensor
from sdtui.engine.img2img_inputs import (
    Img2ImgInputs,
    inpainting_conditioning,
    latent_mask,
    prepare_inputs,
)
from sdtui.engine.masking import (
    LATENT_RESIZE,
    apply_overlay,
    mask_composite,
    overlay_mask,
    uncrop,
)
from sdtui.engine.networks import lora_hashes_extra, pass_networks
from sdtui.engine.options import EngineOptions
from sdtui.engine.passes import LATENT_FACTOR, PassRun, denoise_pass, pass_rng
from sdtui.engine.sampling import plan_sigmas, second_order_calls
from sdtui.engine.soft_inpainting import (
    SoftBlend,
    SoftInpainting,
    overlay_bases,
    soft_latent_mask,
    soft_overlays,
    unrounded_mask,
)
from sdtui.engine.txt2img import first_pass_prompts
from sdtui.engine.upscale import (
    img2img_noise_level,
    img2img_sigmas,
    img2img_steps,
    noised_latents,
)
from sdtui.params.schema import RESIZE_MODES, GenerationParams


class LatentMaskDenoiser:
    """The guided denoiser with the init latents kept where `repaint` is 0: blended into
    the prediction (k-diffusion samplers), or into the input, scaled to the step's noise
    level, with the sampler's own eps kept (timestep samplers, which A1111 blends before
    the model in the variance-preserving scale). `blend(original, current, sigma)` replaces
    the linear blend (soft inpainting's `SoftBlend`)."""

    def __init__(
        self, cfg: Any, init: torch.Tensor, repaint: torch.Tensor, before: bool, blend: Any = None
    ):
        self.cfg, self.init, self.repaint, self.before = cfg, init, repaint, before
        self.blend = blend

    def _blend(self, original: torch.Tensor, current: torch.Tensor, sigma: Any) -> torch.Tensor:
        if self.blend is not None:
            return self.blend(original, current, sigma)
        return current * self.repaint + original * (1 - self.repaint)

    @property
    def last_uncond_denoised(self) -> Any:
        return getattr(self.cfg, "last_uncond_denoised", None)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if not self.before:
            return self._blend(self.init, self.cfg(x, sigma), sigma)
        level = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        level = level.reshape(-1, 1, 1, 1) if level.ndim else level
        blended = self._blend(self.init * (1 + level**2) ** 0.5, x, sigma)
        return self.cfg(blended, sigma) + (x - blended)


@dataclasses.dataclass
class _Prepared:
    init: torch.Tensor  # [batch, 4, h, w]
    repaint: torch.Tensor | None  # [1, 1, h, w]: 1 where the latents are repainted
    pixels: torch.Tensor  # [batch, 3, H, W] in [-1, 1]: what an inpainting model sees


def _init_latents(
    vae: torch.nn.Module, inputs: Img2ImgInputs, params: GenerationParams, batch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.stack([to_tensor(image) for image in inputs.images])
    latents = encode_images(vae, pixels).float()
    if RESIZE_MODES.index(params.resize_mode) == LATENT_RESIZE:
        size = (params.height // LATENT_FACTOR, params.width // LATENT_FACTOR)
        latents = torch.nn.functional.interpolate(latents, size=size, mode="bilinear")
    if len(inputs.images) == 1:
        pixels, latents = pixels.expand(batch, -1, -1, -1), latents.expand(batch, -1, -1, -1)
    return latents.contiguous(), pixels


def _masked_content(
    init: torch.Tensor, repaint: torch.Tensor, params: GenerationParams
) -> torch.Tensor:
    """ "latent noise": the first batch's seed noise under the mask (A1111 makes it once
    for the run); "latent nothing": zeros there."""
    if params.inpainting_fill == "latent noise":
        seeds, _ = image_seeds(params.seed, params.variation_seed, len(init), 0.0)
        noise = ImageRNG(init.shape[1:], seeds, source=params.rng or "CPU").first()
        noise = noise.to(init.device, torch.float32)
        return init * (1 - repaint) + noise * repaint
    if params.inpainting_fill == "latent nothing":
        return init * (1 - repaint)
    return init


def img2img(
    model: Any,
    params: GenerationParams,
    options: EngineOptions,
    init_images: Sequence[Image.Image],
    mask: Image.Image | None = None,
    *,
    color_references: Sequence[Image.Image] | None = None,
) -> list[GeneratedImage]:
    """`batch_count x batch_size` images from `init_images` (one, or one per batch item)
    and an optional inpainting `mask` (white = repaint). `options` as for txt2img; its
    `img2img_upscaler` enlarges the inputs (A1111's "Upscaler for img2img"; None: Lanczos),
    working in `upscaler_tile` tiles, and `img2img_background` replaces transparency.
    `color_references`: what colour correction matches (default: the prepared inputs;
    Loopback passes its first input)."""
    if params.seed < 0 or params.variation_seed < 0:
        raise ValueError("img2img needs resolved seeds (sdtui.params.validate.resolve)")
    sampler = options.samplers.get(params.sampler)
    params = dataclasses.replace(params, sampler=sampler.name, enable_hires=False)
    check_other_models(params, options.other_models)
    soft = SoftInpainting.from_params(params)  # A1111's soft inpainting: the mask unrounded
    mask = unrounded_mask(mask) if soft is not None and mask is not None else mask
    resize_upscaler = options.img2img_upscaler
    inputs = prepare_inputs(
        params, init_images, mask, upscaler=resize_upscaler, check=options.check,
        background=options.img2img_background, tile=options.upscaler_tile,
        overlap=options.upscaler_tile_overlap,
    )  # fmt: skip
    if len(inputs.images) > 1:
        if len(inputs.images) > params.batch_size:
            raise ValueError(
                f"{len(inputs.images)} init images for a batch size of {params.batch_size}"
            )
        params = dataclasses.replace(params, batch_size=len(inputs.images))
    strength = params.denoising_strength
    total, t_enc = img2img_steps(params.steps, strength, bool(params.img2img_fix_steps))
    plan = plan_sigmas(
        sampler,
        params.schedule,
        total if strength > 0 else params.steps,
        DiscreteSchedule.stable_diffusion(),
        options.schedules,
        sigma_min=params.sigma_min or 0.0,
        sigma_max=params.sigma_max or 0.0,
        rho=params.rho or 0.0,
        sdxl=model.family.is_sdxl,
    )
    sigmas = img2img_sigmas(sampler, plan.sigmas, total, t_enc) if strength > 0 else None
    level = img2img_noise_level(plan.sigmas, total, t_enc) if strength > 0 else 0.0
    calls = second_order_calls(sampler, params.steps)
    first_networks, _ = pass_networks(params, options.networks)
    prepared: list[_Prepared] = []
    soft_bases: list[Image.Image] = []  # soft inpainting: the inputs, unmasked
    batch_overlays: list[Image.Image] = []  # soft inpainting: this batch's overlays

    def prepare(run: PassRun) -> _Prepared:
        """The init latents, encoded once by the run's own model (tiling as it runs)."""
        if not prepared:
            init, pixels = _init_latents(run.active.model.vae, inputs, params, params.batch_size)
            repaint = None
            if inputs.mask is not None:
                make_mask = latent_mask if soft is None else soft_latent_mask
                repaint = make_mask(inputs.mask, *init.shape[2:]).to(init.device)
                init = _masked_content(init, repaint, params)
            prepared.append(_Prepared(init, repaint, pixels))
        return prepared[0]

    def sample(run: PassRun, seeds: list[int], subseeds: list[int]) -> torch.Tensor:
        state = prepare(run)
        if sigmas is None or len(sigmas) < 2:
            return state.init.clone()  # nothing to denoise: the input's latents
        rng = pass_rng(run, seeds, subseeds, params.width, params.height)
        noise = rng.first().to(state.init.device, torch.float32)
        multiplier = params.initial_noise_multiplier
        noise = noise * (1.0 if multiplier is None else multiplier)
        extra = params.img2img_extra_noise or 0.0
        x = noised_latents(state.init, noise, level, float(sigmas[0]), extra)
        wrap = None
        if state.repaint is not None:
            repaint = state.repaint

            def wrap(cfg: Any, used: Any) -> Any:
                before = bool(getattr(used, "timestep_sampler", False))
                blend = SoftBlend(soft, repaint, before) if soft is not None else None
                return LatentMaskDenoiser(cfg, state.init, repaint, before, blend)

        latents = denoise_pass(
            run, sampler, sigmas, x, first_pass_prompts(params, len(seeds), calls),
            (params.width, params.height), seeds, rng, True,
            conditioning=_conditioning(state, inputs, params), wrap=wrap,
        )  # fmt: skip
        if state.repaint is not None and soft is None:
            latents = latents * state.repaint + state.init * (1 - state.repaint)
        elif state.repaint is not None and soft is not None and inputs.overlays:
            # soft inpainting: no final blend; the overlays follow how much the latents changed
            if not soft_bases:
                soft_bases.extend(overlay_bases(
                    params, init_images, inputs.paste_to, resize_upscaler,
                    options.img2img_background, check=options.check, tile=options.upscaler_tile,
                    overlap=options.upscaler_tile_overlap,
                ))  # fmt: skip
            batch_overlays[:] = soft_overlays(
                soft, state.repaint, state.init, latents, soft_bases, params.width,
                params.height, inputs.paste_to,
            )  # fmt: skip
        return latents

    corrections = None
    if params.img2img_color_correction:
        corrections = color_corrections(color_references or inputs.images)

    tiling = {"tile": options.upscaler_tile, "overlap": options.upscaler_tile_overlap}

    def overlay_for(offset: int) -> Image.Image:
        overlay = inputs.overlays[offset % len(inputs.overlays)]  # type: ignore[index]
        return batch_overlays[offset] if offset < len(batch_overlays) else overlay

    def overlaid(image: Image.Image, offset: int) -> Image.Image:
        if not inputs.overlays:
            return image
        return apply_overlay(image, overlay_for(offset), inputs.paste_to, resize_upscaler, **tiling)

    def finish(image: Image.Image, offset: int, keep: Any) -> Image.Image:
        if corrections:
            if options.copy_suffix("color correction") is not None:
                keep("color correction", overlaid(image, offset))  # A1111: overlay, no CC
            image = corrections[offset % len(corrections)].apply(image)
        if inputs.overlays:  # A1111's save_mask / save_mask_composite, kept after the image
            mask = overlay_mask(overlay_for(offset))
            if options.copy_suffix("mask") is not None:
                keep("mask", mask.convert("RGB"))
            if options.copy_suffix("mask composite") is not None:
                size = mask.size
                denoised = uncrop(image, size, inputs.paste_to, resize_upscaler, **tiling)
                keep("mask composite", mask_composite(denoised, mask))
        return overlaid(image, offset)

    facts = {
        "img2img": True,
        "masked": mask is not None,
        "mask_dropped": inputs.dropped,
        "inpainting_conditioning": bool(model.family.inpainting),
        "edit_model": bool(model.family.edit),
        "init_image_hash": options.init_image_hash,
    }
    return run_batches(
        model, params, options, sampler, plan, sample,
        networks=first_networks, extra=lora_hashes_extra(first_networks), finish=finish,
        facts=facts,
    )  # fmt: skip


def _conditioning(state: _Prepared, inputs: Img2ImgInputs, params: GenerationParams) -> Any:
    """An inpainting model's conditioning from the prepared images and the mask (an
    instruct-pix2pix model's: the images' unscaled latents)."""
    weight = 1.0 if params.inpainting_mask_weight is None else params.inpainting_mask_weight
    size = (int(state.init.shape[2]), int(state.init.shape[3]))
    rounded = not params.soft_inpainting  # soft inpainting: the model sees the grey levels too

    def make(model: Any, images: int, height: int, width: int) -> torch.Tensor:
        pixels = state.pixels[:images]
        if model.family.edit:
            return edit_conditioning(model.vae, pixels, size)
        return inpainting_conditioning(model.vae, pixels, inputs.mask, weight, size, rounded)

    return make
