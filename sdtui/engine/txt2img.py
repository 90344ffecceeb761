"""txt2img: one denoising loop from resolved parameters to images and their infotexts.

    images = txt2img(model, resolve(params), samplers=host.samplers, schedules=host.schedules)

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

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from sdtui.core.discrete import DiscreteSchedule
from sdtui.core.extra_networks import strip_extra_networks
from sdtui.core.noise import image_seeds
from sdtui.core.prompt_parser import strip_comments
from sdtui.engine.conditioning import PromptEncoder, emphasis_infotext
from sdtui.engine.images import decode_latents, encode_images, to_tensor
from sdtui.engine.model_switch import ActiveModel, OtherModels, named_checkpoint
from sdtui.engine.networks import lora_hashes_extra, pass_networks
from sdtui.engine.passes import LATENT_FACTOR, PassRun, denoise_pass, pass_rng
from sdtui.engine.refiner import DEFAULT_HIRES_REFINER_PASS, refiner_in_pass
from sdtui.engine.sampling import plan_sigmas, second_order_calls
from sdtui.engine.upscale import (
    LATENT_MODES,
    hires_target,
    img2img_steps,
    resize_to,
    truncate,
    upscale_latents,
)
from sdtui.models.embedding_db import EmbeddingSet, text_encoder_widths
from sdtui.models.networks import AppliedNetwork, LoraNetwork
from sdtui.params.codec import RunFacts, infotext_from_params
from sdtui.params.schema import GenerationParams

_NO_OTHER_MODELS = OtherModels()


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


def _check_other_models(params: GenerationParams, other: OtherModels) -> None:
    hires = named_checkpoint(params.hires_checkpoint) if params.enable_hires else None
    if hires and other.hires is None:
        raise ValueError(f"the hires checkpoint {hires!r} needs a loader (OtherModels.hires)")
    refiner = named_checkpoint(params.refiner_checkpoint)
    if refiner and other.refiner is None:
        raise ValueError(f"the refiner {refiner!r} needs a loader (OtherModels.refiner)")


def _embeddings_for(
    model: Any, embeddings: EmbeddingSet | None, other: OtherModels
) -> Callable[[Any], EmbeddingSet | None]:
    widths = text_encoder_widths(model)

    def lookup(candidate: Any) -> EmbeddingSet | None:
        if candidate is model or (other.embeddings_for is None and embeddings is not None):
            fits = candidate is model or text_encoder_widths(candidate) == widths
            return embeddings if fits else None
        return other.embeddings_for(candidate) if other.embeddings_for else None

    return lookup


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
    other_models: OtherModels = _NO_OTHER_MODELS,
    hires_refiner_pass: str = DEFAULT_HIRES_REFINER_PASS,
    sdxl_crop: tuple[int, int] = (0, 0),
) -> list[GeneratedImage]:
    """Generate `batch_count x batch_size` images with a loaded model (seeds resolved).
    `embeddings`: the textual-inversion embeddings prompts may name (`TI hashes` in the
    infotext lists those used). `networks`: the LoRA networks the prompts' `<lora:...>` tags
    name, applied around each pass and removed afterwards (`Lora hashes` in the infotext).
    `preview_every`: send the context a cheap preview image every that many steps (0: none).
    `other_models`: loaders for the hires checkpoint and the refiner the params name.
    `hires_refiner_pass`: A1111's "Hires fix: which pass to enable refiner for".
    `sdxl_crop`: SDXL's crop conditioning (top, left), A1111's sdxl_crop_top / _left."""
    if params.seed < 0 or params.variation_seed < 0:
        raise ValueError("txt2img needs resolved seeds (sdtui.params.validate.resolve)")
    _check_other_models(params, other_models)
    refiner_in_pass(params.enable_hires, False, hires_refiner_pass)  # a bad value fails here
    sampler = samplers.get(params.sampler)
    params = dataclasses.replace(params, sampler=sampler.name)
    plan = plan_sigmas(
        sampler,
        params.schedule,
        params.steps,
        DiscreteSchedule.stable_diffusion(),
        schedules,
        sigma_min=params.sigma_min or 0.0,
        sigma_max=params.sigma_max or 0.0,
        rho=params.rho or 0.0,
        sdxl=model.family.is_sdxl,
    )
    total = params.batch_count * params.batch_size
    seeds, subseeds = image_seeds(
        params.seed, params.variation_seed, total, params.variation_strength
    )
    calls = second_order_calls(sampler, len(plan.sigmas) - 1)
    first_networks, hires_networks = pass_networks(params, networks)
    active = ActiveModel(
        model,
        tiling=bool(params.tiling),
        encoder_options={
            "emphasis": params.emphasis or "Original",
            "clip_skip": params.clip_skip or 1,
        },
        embeddings_for=_embeddings_for(model, embeddings, other_models),
    )
    run = PassRun(
        active, params, samplers, schedules, upscalers, context, preview_every,
        other_models, hires_refiner_pass, sdxl_crop,
    )  # fmt: skip
    reload = other_models.reload or (lambda: model)
    results: list[GeneratedImage] = []
    images = None
    try:
        for batch in range(params.batch_count):
            with _skippable(context):  # Skip abandons this batch; the next one runs
                span = slice(batch * params.batch_size, (batch + 1) * params.batch_size)
                active.switch(reload, first_networks)  # A1111: every batch on its own model
                latents = _first_pass(run, sampler, plan, calls, seeds[span], subseeds[span])
                if params.enable_hires:
                    latents = _hires_pass(run, latents, seeds[span], subseeds[span], hires_networks)
                images = decode_latents(active.model.vae, latents)
            if images is None:
                continue
            for offset, image in enumerate(images):
                index = batch * params.batch_size + offset
                extra = {**lora_hashes_extra(first_networks, hires_networks), **run.extra()}
                seed, subseed = seeds[index], subseeds[index]
                result = _describe(
                    image, run.image_params(), sampler, plan, seed, subseed, model_facts,
                    version, extra=extra,
                )  # fmt: skip
                result.index = index
                results.append(result)
                if on_image is not None:
                    on_image(result)
            images = None
    finally:
        active.release()  # the model's weights and padding as loaded, even after an error
    return results


def _skippable(context: Any) -> Any:
    """The job context's skip guard (ends the block quietly on Skip), if it has one."""
    skippable = getattr(context, "skippable", None)
    return skippable() if skippable is not None else contextlib.nullcontext()


def _first_pass(
    run: PassRun, sampler: Any, plan: Any, calls: int, seeds: list[int], subseeds: list[int]
) -> torch.Tensor:
    params = run.params
    prompts = [strip_extra_networks(params.prompt)] * len(seeds)
    negatives = [strip_comments(params.negative_prompt)] * len(seeds)

    def encode(encoder: PromptEncoder) -> tuple[Any, Any]:
        cond = encoder.multicond(prompts, calls)
        return cond, encoder.schedule(negatives, calls, is_negative=True)

    rng = pass_rng(run, seeds, subseeds, params.width, params.height)
    x = rng.first().float() * plan.noise_scale
    size = (params.width, params.height)
    refine = refiner_in_pass(params.enable_hires, False, run.hires_refiner_pass)
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
    if params.hires_upscaler in LATENT_MODES:
        latents = upscale_latents(latents, params.hires_upscaler, target.height, target.width)
        active.switch(hires_model, networks)
    else:
        if run.upscalers is None:
            raise ValueError(f"hires upscaler {params.hires_upscaler!r} needs the upscalers")
        upscaler = run.upscalers.get(params.hires_upscaler)
        check = getattr(run.context, "check", None)  # interrupt between upscaler tiles
        images = [
            resize_to(image, target.width, target.height, upscaler, check=check)
            for image in decode_latents(active.model.vae, latents)
        ]
        active.switch(hires_model, networks)
        pixels = torch.stack([to_tensor(i) for i in images])
        latents = encode_images(active.model.vae, pixels).float()
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
        sdxl=active.model.family.is_sdxl,
    )
    if getattr(sampler, "timestep_sampler", False):
        sigmas = plan.sigmas[-(t_enc + 1) :]
    else:
        sigmas = plan.sigmas[total - t_enc - 1 :]
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
    x = latents + rng.first().float() * sigmas[0]
    size = (target.width, target.height)  # A1111 conditions SDXL on the size before cropping
    refine = refiner_in_pass(True, True, run.hires_refiner_pass)
    return denoise_pass(run, sampler, sigmas, x, encode, size, seeds, rng, refine)


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
