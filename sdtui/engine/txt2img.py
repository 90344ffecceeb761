"""txt2img: one denoising loop from resolved parameters to images and their infotexts.

    images = txt2img(model, resolve(params), samplers=host.samplers, schedules=host.schedules)

Per batch (batch_count times): A1111's seeds (seed + i; the same seed with subseed + i when
a variation strength is set), per-image noise (`ImageRNG`, so an image never depends on its
batch), the prompts' conditioning over the model calls prompt editing counts, classifier-free
guidance, the sampler over A1111's sigmas, and the VAE. Interrupt and skip are checked after
every step through the job context; the infotext of each image says what actually ran.
With hires fix, each batch gets A1111's second pass (latent or pixel upscale, fresh noise
from the same seeds, img2img over the last hires steps). LoRA networks named by the
prompt's `<lora:...>` tags (the hires prompt's for the hires pass) patch the weights for
the run and are removed after it. Not here yet: the SDXL refiner switch; styles are
applied before this call.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from sdtui.core.denoisers import DiscreteDenoiser
from sdtui.core.discrete import DiscreteSchedule
from sdtui.core.extra_networks import strip_extra_networks
from sdtui.core.noise import ImageRNG, image_seeds
from sdtui.core.prompt_parser import strip_comments
from sdtui.engine.conditioning import PromptEncoder, cond_at, emphasis_infotext, multicond_at
from sdtui.engine.images import decode_latents, encode_images, to_tensor
from sdtui.engine.networks import lora_hashes_extra, pass_networks
from sdtui.engine.preview import latent_preview, preview_map
from sdtui.engine.sampling import CFGDenoiser, plan_sigmas, second_order_calls
from sdtui.engine.unet import UNetModel, sdxl_time_ids
from sdtui.engine.upscale import (
    LATENT_MODES,
    hires_target,
    img2img_steps,
    resize_to,
    truncate,
    upscale_latents,
)
from sdtui.models.embedding_db import EmbeddingSet
from sdtui.models.networks import LoraNetwork, network_patch
from sdtui.params.codec import RunFacts, infotext_from_params
from sdtui.params.schema import GenerationParams

LATENT_CHANNELS = 4
LATENT_FACTOR = 8


@dataclass(frozen=True)
class ModelFacts:
    """How the infotext names the model and VAE (A1111's `Model`, `Model hash`, ...)."""

    name: str | None = None
    short_hash: str | None = None
    vae_name: str | None = None
    vae_hash: str | None = None


@dataclass
class GeneratedImage:
    image: Image.Image
    params: GenerationParams  # with this image's seed
    infotext: str
    index: int  # position in the whole run (batch n, item i -> n * batch_size + i)


def _inpainting_conditioning(model: Any, batch: int, height: int, width: int) -> torch.Tensor:
    """A1111's txt2img conditioning for inpainting models: the whole image masked (a mask
    of ones) over a mid-grey picture's latents."""
    grey = torch.zeros(1, 3, height, width)  # 0.5 grey in [-1, 1]
    latents = encode_images(model.vae, grey).float()
    mask = torch.ones(1, 1, *latents.shape[2:])
    return torch.cat([mask, latents], dim=1).expand(batch, -1, -1, -1)


def _sampler_options(sampler: Any, params: GenerationParams, seeds: list[int]) -> dict[str, Any]:
    ddim_family = getattr(sampler, "default_eta", None) == 0
    return {
        "eta": params.eta_ddim if ddim_family else params.eta,
        "s_churn": params.s_churn,
        "s_tmin": params.s_tmin,
        "s_tmax": params.s_tmax,
        "s_noise": params.s_noise,
        "seed": seeds,
    }


def txt2img(
    model: Any,
    params: GenerationParams,
    *,
    samplers: Any,
    schedules: Any,
    upscalers: Any = None,
    context: Any = None,
    model_facts: ModelFacts = ModelFacts(),
    version: str | None = None,
    on_image: Callable[[GeneratedImage], None] | None = None,
    embeddings: EmbeddingSet | None = None,
    networks: Mapping[str, LoraNetwork] | None = None,
    preview_every: int = 0,
) -> list[GeneratedImage]:
    """Generate `batch_count x batch_size` images with a loaded model (seeds resolved).
    `embeddings`: the textual-inversion embeddings prompts may name (`TI hashes` in the
    infotext lists those used). `networks`: the LoRA networks the prompts' `<lora:...>` tags
    name, applied around each pass and removed afterwards (`Lora hashes` in the infotext).
    `preview_every`: send the context a cheap preview image every that many steps (0: none)."""
    if params.seed < 0 or params.variation_seed < 0:
        raise ValueError("txt2img needs resolved seeds (sdtui.params.validate.resolve)")
    unsupported = [
        label
        for label, value in (
            ("a hires checkpoint", params.hires_checkpoint),
            ("the SDXL refiner", params.refiner_checkpoint),
            ("tiling", params.tiling),
        )
        if value
    ]
    if unsupported:
        raise ValueError(f"not supported yet: {', '.join(unsupported)}")
    sampler = samplers.get(params.sampler)
    params = dataclasses.replace(params, sampler=sampler.name)
    discrete = DiscreteSchedule.stable_diffusion()
    plan = plan_sigmas(
        sampler,
        params.schedule,
        params.steps,
        discrete,
        schedules,
        sigma_min=params.sigma_min or 0.0,
        sigma_max=params.sigma_max or 0.0,
        rho=params.rho or 0.0,
        sdxl=model.family.is_sdxl,
    )
    used_embeddings = embeddings.tracked() if embeddings is not None else None
    encoder = PromptEncoder.from_model(
        model,
        emphasis=params.emphasis or "Original",
        clip_skip=params.clip_skip or 1,
        embeddings=used_embeddings,
    )
    total = params.batch_count * params.batch_size
    seeds, subseeds = image_seeds(
        params.seed, params.variation_seed, total, params.variation_strength
    )
    calls = second_order_calls(sampler, len(plan.sigmas) - 1)
    run = _Run(model, params, encoder, samplers, schedules, upscalers, context, preview_every)
    results: list[GeneratedImage] = []
    first_networks, hires_networks = pass_networks(params, networks)
    images = None
    patch = network_patch(model)
    try:
        for batch in range(params.batch_count):
            with _skippable(context):  # Skip abandons this batch; the next one runs
                span = slice(batch * params.batch_size, (batch + 1) * params.batch_size)
                patch.apply(first_networks)
                latents = _first_pass(run, sampler, plan, calls, seeds[span], subseeds[span])
                if params.enable_hires:
                    patch.apply(hires_networks)
                    latents = _hires_pass(run, latents, seeds[span], subseeds[span])
                images = decode_latents(model.vae, latents)
            if images is None:
                continue
            for offset, image in enumerate(images):
                index = batch * params.batch_size + offset
                extra = lora_hashes_extra(first_networks, hires_networks)
                if used_embeddings is not None:
                    extra.update(used_embeddings.infotext())
                seed, subseed = seeds[index], subseeds[index]
                result = _describe(
                    image, params, sampler, plan, seed, subseed, model_facts, version, extra=extra
                )
                result.index = index
                results.append(result)
                if on_image is not None:
                    on_image(result)
            images = None
    finally:
        patch.remove()  # the cached model's weights as loaded, even after an error
    return results


def _skippable(context: Any) -> Any:
    """The job context's skip guard (ends the block quietly on Skip), if it has one."""
    skippable = getattr(context, "skippable", None)
    return skippable() if skippable is not None else contextlib.nullcontext()


@dataclass
class _Run:
    """What every pass of one txt2img call shares."""

    model: Any
    params: GenerationParams
    encoder: PromptEncoder
    samplers: Any
    schedules: Any
    upscalers: Any
    context: Any
    preview_every: int = 0


def _rng(run: _Run, seeds: list[int], subseeds: list[int], width: int, height: int) -> ImageRNG:
    params = run.params
    return ImageRNG(
        (LATENT_CHANNELS, height // LATENT_FACTOR, width // LATENT_FACTOR),
        seeds,
        subseeds=subseeds,
        subseed_strength=params.variation_strength,
        seed_resize_from=(params.seed_resize_from_width, params.seed_resize_from_height),
        source=params.rng or "CPU",
        ensd=params.ensd or 0,
    )


def _first_pass(
    run: _Run, sampler: Any, plan: Any, calls: int, seeds: list[int], subseeds: list[int]
) -> torch.Tensor:
    params = run.params
    cond = run.encoder.multicond([strip_extra_networks(params.prompt)] * len(seeds), calls)
    uncond = run.encoder.schedule(
        [strip_comments(params.negative_prompt)] * len(seeds), calls, is_negative=True
    )
    rng = _rng(run, seeds, subseeds, params.width, params.height)
    x = rng.first().float() * plan.noise_scale
    return _denoise(
        run, sampler, plan.sigmas, x, (cond, uncond), (params.width, params.height), seeds, rng
    )


def _hires_pass(
    run: _Run, latents: torch.Tensor, seeds: list[int], subseeds: list[int]
) -> torch.Tensor:
    """A1111's second pass: upscale (latent or pixels), fresh noise at the new size from the
    same seeds, and img2img over the last `hires steps` of a steps / strength schedule."""
    params, model = run.params, run.model
    target = hires_target(
        params.width,
        params.height,
        params.hires_scale,
        params.hires_resize_width,
        params.hires_resize_height,
    )
    if params.hires_upscaler in LATENT_MODES:
        latents = upscale_latents(latents, params.hires_upscaler, target.height, target.width)
    else:
        if run.upscalers is None:
            raise ValueError(f"hires upscaler {params.hires_upscaler!r} needs the upscalers")
        upscaler = run.upscalers.get(params.hires_upscaler)
        images = [
            resize_to(image, target.width, target.height, upscaler)
            for image in decode_latents(model.vae, latents)
        ]
        latents = encode_images(model.vae, torch.stack([to_tensor(i) for i in images])).float()
    latents = truncate(latents, target)
    height, width = latents.shape[2] * LATENT_FACTOR, latents.shape[3] * LATENT_FACTOR
    sampler = run.samplers.get(params.hires_sampler or params.sampler)
    steps = params.hires_steps or params.steps
    total, t_enc = img2img_steps(steps, params.denoising_strength)
    plan = plan_sigmas(
        sampler,
        params.hires_schedule or params.schedule,
        total,
        DiscreteSchedule.stable_diffusion(),
        run.schedules,
        sigma_min=params.sigma_min or 0.0,
        sigma_max=params.sigma_max or 0.0,
        rho=params.rho or 0.0,
        sdxl=model.family.is_sdxl,
    )
    if getattr(sampler, "timestep_sampler", False):
        sigmas = plan.sigmas[-(t_enc + 1) :]
    else:
        sigmas = plan.sigmas[total - t_enc - 1 :]
    calls = second_order_calls(sampler, steps)
    prompt = strip_extra_networks(params.hires_prompt or params.prompt)
    negative = strip_comments(params.hires_negative_prompt or params.negative_prompt)
    cond = run.encoder.multicond([prompt] * len(seeds), params.steps, hires_steps=calls)
    uncond = run.encoder.schedule(
        [negative] * len(seeds), params.steps, hires_steps=calls, is_negative=True
    )
    rng = _rng(run, seeds, subseeds, width, height)
    x = latents + rng.first().float() * sigmas[0]
    return _denoise(run, sampler, sigmas, x, (cond, uncond), (width, height), seeds, rng)


def _denoise(
    run: _Run,
    sampler: Any,
    sigmas: torch.Tensor,
    x: torch.Tensor,
    conditioning: tuple[Any, Any],
    size: tuple[int, int],
    seeds: list[int],
    rng: ImageRNG,
) -> torch.Tensor:
    model, params, context = run.model, run.params, run.context
    cond, uncond = conditioning
    width, height = size
    image_conditioning = None
    if model.family.inpainting:
        image_conditioning = _inpainting_conditioning(model, len(seeds), height, width)

    def extra_inputs(images: torch.Tensor, is_uncond: torch.Tensor) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        if model.family.is_sdxl:
            refiner = model.family.architecture == "sdxl-refiner"
            inputs["time_ids"] = sdxl_time_ids(width, height, is_uncond, refiner=refiner)
        if image_conditioning is not None:
            inputs["image_conditioning"] = image_conditioning[images]
        return inputs

    denoiser = DiscreteDenoiser(
        UNetModel(model.unet),
        DiscreteSchedule.stable_diffusion(),
        model.family.prediction_type or "epsilon",
    )
    cfg = CFGDenoiser(
        denoiser,
        lambda step: (*multicond_at(cond, step), cond_at(uncond, step)),
        params.cfg_scale * getattr(sampler, "cfg_scale_multiplier", 1.0),
        extra_inputs,
    )

    def callback(info: Any) -> None:
        if context is not None:
            context.check()
            context.progress(info.step + 1, info.total)
            every = run.preview_every
            if every > 0 and (info.step + 1) % every == 0 and info.step + 1 < info.total:
                context.preview(latent_preview(info.denoised, preview_map(model)))

    options = _sampler_options(sampler, params, seeds)
    if not getattr(sampler, "brownian_noise", False):
        options["noise_sampler"] = rng.noise_sampler
    with torch.no_grad():
        return sampler.sample(cfg, x, sigmas, callback=callback, **options)


def _describe(
    image: Image.Image,
    params: GenerationParams,
    sampler: Any,
    plan: Any,
    seed: int,
    subseed: int,
    facts: ModelFacts,
    version: str | None,
    *,
    extra: Mapping[str, Any] | None = None,
) -> GeneratedImage:
    image_params = dataclasses.replace(params, seed=seed, variation_seed=subseed)
    stochastic = bool(getattr(sampler, "stochastic", False))
    ddim_family = getattr(sampler, "default_eta", None) == 0
    eta = params.eta_ddim if ddim_family else params.eta
    extra = {
        **plan.extra,
        **emphasis_infotext([params.prompt, params.negative_prompt], params.emphasis or "Original"),
        **(extra or {}),
    }
    run = RunFacts(
        seed=seed,
        variation_seed=subseed,
        schedule_label=plan.schedule_label,
        model_name=facts.name,
        model_hash=facts.short_hash,
        vae_name=facts.vae_name,
        vae_hash=facts.vae_hash,
        uses_ensd=bool(getattr(sampler, "uses_ensd", False)) and bool(eta),
        uses_eta=stochastic and not ddim_family,
        uses_eta_ddim=ddim_family,
        extra=extra,
        version=version,
    )
    return GeneratedImage(image, image_params, infotext_from_params(image_params, run), 0)
