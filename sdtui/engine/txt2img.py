"""txt2img: one denoising loop from resolved parameters to images and their infotexts.

    options = EngineOptions(samplers=host.samplers, schedules=host.schedules)
    images = txt2img(model, resolve(params), options)

Per batch (batch_count times): A1111's seeds (seed + i; the same seed with subseed + i when
a variation strength is set), per-image noise (`ImageRNG`, so an image never depends on its
batch), the prompts' conditioning over the model calls prompt editing counts, classifier-free
guidance, the sampler over A1111's sigmas, and the VAE. Interrupt and skip are checked after
every step through the job context; the infotext of each image says what actually ran.
With hires fix, each batch gets A1111's second pass (latent or pixel upscale, fresh noise
from the same seeds, img2img over the last hires steps), on the hires checkpoint when one is
named. The refiner takes over a pass once the noise level passes "Refiner switch at"
(`sdtui.engine.refiner`). Tiling makes every convolution pad circularly for the run. LoRA
networks named by the prompt's `<lora:...>` tags (the hires prompt's for the hires pass)
patch the weights of whichever model runs and are removed after it. Other checkpoints are
loaded through `OtherModels` (`sdtui.engine.model_switch`); as in A1111, every batch starts
on the run's own model again. Styles are applied before this call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from sdtui.core.discrete import DiscreteSchedule
from sdtui.core.extra_networks import strip_extra_networks
from sdtui.core.prompt_parser import strip_comments
from sdtui.engine.batches import GeneratedImage, check_other_models, run_batches
from sdtui.engine.conditioning import PromptEncoder
from sdtui.engine.images import decode_latents, decode_pixels, encode_images, to_tensor
from sdtui.engine.img2img_inputs import inpainting_conditioning
from sdtui.engine.networks import lora_hashes_extra, pass_networks
from sdtui.engine.options import EngineOptions, ModelFacts
from sdtui.engine.passes import (
    LATENT_FACTOR,
    ImageConditioning,
    PassRun,
    denoise_pass,
    pass_rng,
)
from sdtui.engine.refiner import refiner_in_pass
from sdtui.engine.sampling import plan_sigmas, second_order_calls
from sdtui.engine.upscale import (
    LATENT_MODES,
    hires_target,
    img2img_noise_level,
    img2img_sigmas,
    img2img_steps,
    noised_latents,
    resize_to,
    truncate,
    upscale_latents,
)
from sdtui.models.networks import AppliedNetwork
from sdtui.params.schema import GenerationParams

__all__ = ["EngineOptions", "GeneratedImage", "ModelFacts", "first_pass_prompts", "txt2img"]


def txt2img(model: Any, params: GenerationParams, options: EngineOptions) -> list[GeneratedImage]:
    """Generate `batch_count x batch_size` images with a loaded model (seeds resolved);
    `options`: the registries, job context, callbacks, networks, other checkpoints and
    settings of the run (`sdtui.engine.options`)."""
    if params.seed < 0 or params.variation_seed < 0:
        raise ValueError("txt2img needs resolved seeds (sdtui.params.validate.resolve)")
    check_other_models(params, options.other_models)
    refiner_in_pass(params.enable_hires, False, options.hires_refiner_pass)  # a bad value fails
    sampler = options.samplers.get(params.sampler)
    params = dataclasses.replace(params, sampler=sampler.name)
    plan = plan_sigmas(
        sampler,
        params.schedule,
        params.steps,
        DiscreteSchedule.stable_diffusion(),
        options.schedules,
        sigma_min=params.sigma_min or 0.0,
        sigma_max=params.sigma_max or 0.0,
        rho=params.rho or 0.0,
        sdxl=model.family.is_sdxl,
    )
    calls = second_order_calls(sampler, len(plan.sigmas) - 1)
    first_networks, hires_networks = pass_networks(params, options.networks)

    def sample(run: PassRun, seeds: list[int], subseeds: list[int]) -> torch.Tensor:
        latents = _first_pass(run, sampler, plan, calls, seeds, subseeds)
        if params.enable_hires:
            latents = _hires_pass(run, latents, seeds, subseeds, hires_networks)
        return latents

    facts = {"inpainting_conditioning": bool(model.family.inpainting)}  # A1111's infotext
    return run_batches(
        model, params, options, sampler, plan, sample,
        networks=first_networks, extra=lora_hashes_extra(first_networks, hires_networks),
        facts=facts,
    )  # fmt: skip


def first_pass_prompts(
    params: GenerationParams, images: int, calls: int
) -> Callable[[PromptEncoder], tuple[Any, Any]]:
    """The first pass's conditioning for `images` images, planned over `calls` model calls
    (A1111's prompt editing steps), with whichever model's prompt encoder is active."""
    prompts = [strip_extra_networks(params.prompt)] * images
    negatives = [strip_comments(params.negative_prompt)] * images

    def encode(encoder: PromptEncoder) -> tuple[Any, Any]:
        cond = encoder.multicond(prompts, calls)
        return cond, encoder.schedule(negatives, calls, is_negative=True)

    return encode


def _first_pass(
    run: PassRun, sampler: Any, plan: Any, calls: int, seeds: list[int], subseeds: list[int]
) -> torch.Tensor:
    params = run.params
    encode = first_pass_prompts(params, len(seeds), calls)
    rng = pass_rng(run, seeds, subseeds, params.width, params.height)
    x = rng.first().float() * plan.noise_scale
    size = (params.width, params.height)
    refine = refiner_in_pass(params.enable_hires, False, run.options.hires_refiner_pass)
    return denoise_pass(run, sampler, plan.sigmas, x, encode, size, seeds, rng, refine)


def _hires_pass(
    run: PassRun,
    latents: torch.Tensor,
    seeds: list[int],
    subseeds: list[int],
    networks: list[AppliedNetwork],
) -> torch.Tensor:
    """A1111's second pass: upscale (latent or pixels), fresh noise at the new size from the
    same seeds, and img2img over the last `hires steps` of a steps / strength schedule. A
    hires checkpoint takes over after the first pass's images are decoded (pixel upscale)."""
    params, active = run.params, run.active
    hires = run.hires_checkpoint
    hires_model = hires.load if hires is not None else (lambda: active.model)
    target = hires_target(
        params.width,
        params.height,
        params.hires_scale,
        params.hires_resize_width,
        params.hires_resize_height,
    )
    source = None  # what an inpainting model's hires conditioning starts from (see below)
    first = None  # the first pass's pictures, decoded only when something needs them
    if run.options.copy_suffix("highres fix") is not None:
        first = decode_latents(active.model.vae, latents)
        run.keep("highres fix", first)  # A1111's save_images_before_highres_fix
    if params.hires_upscaler in LATENT_MODES:
        latents = upscale_latents(latents, params.hires_upscaler, target.height, target.width)
        active.switch(hires_model, networks)
        if _conditions_on_the_image(active.model, params):
            source = decode_pixels(active.model.vae, latents)
    else:
        options = run.options
        if options.upscalers is None:
            raise ValueError(f"hires upscaler {params.hires_upscaler!r} needs the upscalers")
        upscaler = options.upscalers.get(params.hires_upscaler)
        tile, overlap = options.upscaler_tile, options.upscaler_tile_overlap
        images = [
            resize_to(image, *target[:2], upscaler, tile=tile, overlap=overlap, check=options.check)
            for image in first or decode_latents(active.model.vae, latents)
        ]
        active.switch(hires_model, networks)
        pixels = torch.stack([to_tensor(i) for i in images])
        latents = encode_images(active.model.vae, pixels).float()
        source = (pixels + 1) / 2  # A1111 1.10 hands these over in [0, 1], not [-1, 1]
    latents = truncate(latents, target)
    height, width = latents.shape[2] * LATENT_FACTOR, latents.shape[3] * LATENT_FACTOR
    sampler = run.options.samplers.get(params.hires_sampler or params.sampler)
    steps = params.hires_steps or params.steps
    total, t_enc = img2img_steps(steps, params.denoising_strength)
    plan = plan_sigmas(
        sampler,
        params.hires_schedule or params.schedule,
        total,
        DiscreteSchedule.stable_diffusion(),
        run.options.schedules,
        sigma_min=params.sigma_min or 0.0,
        sigma_max=params.sigma_max or 0.0,
        rho=params.rho or 0.0,
        sdxl=active.model.family.is_sdxl,
    )
    sigmas = img2img_sigmas(sampler, plan.sigmas, total, t_enc)
    level = img2img_noise_level(plan.sigmas, total, t_enc)
    calls = second_order_calls(sampler, steps)
    prompts = [strip_extra_networks(params.hires_prompt or params.prompt)] * len(seeds)
    negatives = [strip_comments(params.hires_negative_prompt or params.negative_prompt)]

    def encode(encoder: PromptEncoder) -> tuple[Any, Any]:
        cond = encoder.multicond(prompts, params.steps, hires_steps=calls)
        uncond = encoder.schedule(
            negatives * len(seeds), params.steps, hires_steps=calls, is_negative=True
        )
        return cond, uncond

    rng = pass_rng(run, seeds, subseeds, width, height)
    extra = params.img2img_extra_noise or 0.0  # A1111 adds it in hires fix's pass too
    x = noised_latents(latents, rng.first().float(), level, float(sigmas[0]), extra)
    size = (target.width, target.height)  # A1111 conditions SDXL on the size before cropping
    refine = refiner_in_pass(True, True, run.options.hires_refiner_pass)
    conditioning = None
    if source is not None and _conditions_on_the_image(active.model, params):
        conditioning = _hires_conditioning(source, params.inpainting_mask_weight)
    return denoise_pass(
        run, sampler, sigmas, x, encode, size, seeds, rng, refine, conditioning=conditioning
    )


def _conditions_on_the_image(model: Any, params: GenerationParams) -> bool:
    """A1111's hires pass on an inpainting model conditions on the upscaled image when the
    "Conditional mask weight" is below 1 (at 1 the image is blanked out: txt2img's grey)."""
    weight = params.inpainting_mask_weight
    return bool(model.family.inpainting) and weight is not None and weight < 1.0


def _hires_conditioning(source: torch.Tensor, weight: float | None) -> ImageConditioning:
    """The hires pass's inpainting conditioning: the whole image masked, its pixels kept by
    1 - weight (A1111's img2img_image_conditioning without a mask). `source`: the decoded
    upscaled latents in [-1, 1] (latent upscale), or the upscaled images in [0, 1] (pixel
    upscale: A1111 1.10 passes them unconverted)."""

    def make(model: Any, images: int, height: int, width: int) -> torch.Tensor:
        latent_size = (height // LATENT_FACTOR, width // LATENT_FACTOR)
        return inpainting_conditioning(model.vae, source, None, float(weight or 0.0), latent_size)

    return make
