"""One sampling pass of a txt2img or img2img run: guidance around the active model, the
refiner's switch in the middle of it, and the sampler with progress, previews and interrupts.

`PassRun` is what every pass of a run shares: the active model (`ActiveModel`), the request,
the engine options (registries, job context, other checkpoints, ...), and whether the
refiner has taken over. `denoise_pass` samples a pass from its starting latents over its
sigmas; `encode` gives the pass's conditioning with whichever model's prompt encoder is
active, so the refiner can encode the prompts again when it takes over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sdtui.core.denoisers import DiscreteDenoiser
from sdtui.core.discrete import DiscreteSchedule
from sdtui.core.noise import ImageRNG
from sdtui.engine.conditioning import PromptEncoder, cond_at, multicond_at
from sdtui.engine.edit_model import EDIT_NEEDS_AN_IMAGE
from sdtui.engine.images import encode_images
from sdtui.engine.model_switch import ActiveModel, Checkpoint, named_checkpoint
from sdtui.engine.options import EngineOptions
from sdtui.engine.preview import preview_image
from sdtui.engine.refiner import DEFAULT_HIRES_REFINER_PASS, RefinerCFGDenoiser
from sdtui.engine.sampling import CFGDenoiser
from sdtui.engine.unet import UNetModel, sdxl_time_ids
from sdtui.params.schema import GenerationParams

LATENT_CHANNELS = 4
LATENT_FACTOR = 8

# (prompt conditioning, negative conditioning) of a pass, encoded with a model's encoder
Encode = Callable[[PromptEncoder], tuple[Any, Any]]
# an inpainting model's image conditioning: (model, images, pixel height, pixel width) ->
# [images, 1 + latent channels, height / 8, width / 8], the mask before the image latents
# (an instruct-pix2pix model's: the image's latents only, `sdtui.engine.edit_model`)
ImageConditioning = Callable[[Any, int, int, int], torch.Tensor]
# wraps the guided denoiser before sampling: wrap(cfg, sampler) (img2img's latent mask)
WrapDenoiser = Callable[[Any, Any], Any]


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


@dataclass
class PassRun:
    """What every pass of one generation run shares."""

    active: ActiveModel
    params: GenerationParams
    options: EngineOptions
    refined: bool = False  # the refiner took over in some pass (A1111 says so from then on)
    # this batch's in-between images by position: (image, suffix), e.g. before hires fix
    intermediates: dict[int, list[tuple[Any, str]]] = field(default_factory=dict)

    def keep(self, stage: str, images: Sequence[Any]) -> None:
        """Hold `images` (this batch's, in order) as the copies before `stage`, when the
        options ask for them (A1111's save_images_before_*)."""
        suffix = self.options.copy_suffix(stage)
        if suffix is not None:
            for offset, image in enumerate(images):
                self.intermediates.setdefault(offset, []).append((image, suffix))

    @property
    def hires_checkpoint(self) -> Checkpoint | None:
        """The checkpoint of the hires pass, when the request names one."""
        named = self.params.enable_hires and named_checkpoint(self.params.hires_checkpoint)
        return self.options.other_models.hires if named else None

    @property
    def refiner(self) -> Checkpoint | None:
        """The refiner, when the request names one."""
        named = named_checkpoint(self.params.refiner_checkpoint)
        return self.options.other_models.refiner if named else None

    def image_params(self) -> GenerationParams:
        """The request as it ran: the other checkpoints by A1111's short titles, and the
        refiner only once it has taken over (A1111 writes it when it switches)."""
        hires = self.hires_checkpoint
        refiner = self.refiner if self.refined else None
        return dataclasses.replace(
            self.params,
            hires_checkpoint=hires.title if hires is not None else None,
            refiner_checkpoint=refiner.title if refiner is not None else None,
        )

    def extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = dict(self.active.ti_infotext())
        hires = self.refined and self.params.enable_hires
        refiner_pass = self.options.hires_refiner_pass
        if hires and refiner_pass != DEFAULT_HIRES_REFINER_PASS:
            extra["Hires refiner"] = refiner_pass
        return extra


def pass_rng(
    run: PassRun, seeds: list[int], subseeds: list[int], width: int, height: int
) -> ImageRNG:
    params = run.params
    return ImageRNG(
        (LATENT_CHANNELS, height // LATENT_FACTOR, width // LATENT_FACTOR),
        seeds,
        subseeds=subseeds,
        subseed_strength=params.variation_strength,
        seed_resize_from=(params.seed_resize_from_width, params.seed_resize_from_height),
        source=params.rng or "CPU",
        ensd=params.ensd or 0,
        device=getattr(run.active.model, "device", "cpu"),  # the sampler runs where the UNet is
    )


def _guidance(
    run: PassRun,
    encode: Encode,
    size: tuple[int, int],
    x: torch.Tensor,
    images: int,
    conditioning: ImageConditioning | None = None,
) -> tuple[DiscreteDenoiser, Any, Callable[[torch.Tensor, torch.Tensor], dict[str, Any]]]:
    """The active model's denoiser, prompt conditioning and per-row extra inputs."""
    model = run.active.model
    cond, uncond = encode(run.active.encoder)
    width, height = size
    image_conditioning = None
    if model.family.edit and conditioning is None:
        raise ValueError(EDIT_NEEDS_AN_IMAGE)
    if model.family.inpainting or model.family.edit:
        pixel_height, pixel_width = x.shape[2] * LATENT_FACTOR, x.shape[3] * LATENT_FACTOR
        make = conditioning or _inpainting_conditioning
        image_conditioning = make(model, images, pixel_height, pixel_width)
    refiner = model.family.architecture == "sdxl-refiner"

    def extra_inputs(rows: torch.Tensor, is_uncond: torch.Tensor) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        if model.family.is_sdxl:
            inputs["time_ids"] = sdxl_time_ids(
                width,
                height,
                is_uncond,
                refiner=refiner,
                crop=run.options.sdxl_crop,
                scores=run.options.refiner_aesthetic,
            )
        if image_conditioning is not None:
            inputs["image_conditioning"] = image_conditioning[rows]
        return inputs

    denoiser = DiscreteDenoiser(
        UNetModel(model.unet),
        DiscreteSchedule.stable_diffusion(),
        model.family.prediction_type or "epsilon",
    )
    return denoiser, lambda step: (*multicond_at(cond, step), cond_at(uncond, step)), extra_inputs


def _image_cfg_scale(run: PassRun) -> float | None:
    """A1111's Image CFG Scale, for an instruct-pix2pix model only (None otherwise)."""
    return run.params.image_cfg_scale if run.active.model.family.edit else None


def denoise_pass(
    run: PassRun,
    sampler: Any,
    sigmas: torch.Tensor,
    x: torch.Tensor,
    encode: Encode,
    size: tuple[int, int],
    seeds: list[int],
    rng: ImageRNG,
    refine: bool,
    *,
    conditioning: ImageConditioning | None = None,
    wrap: WrapDenoiser | None = None,
) -> torch.Tensor:
    """Sample one pass on the active model; `refine`: the refiner may take over.
    `conditioning`: an inpainting model's image conditioning (default: txt2img's, the whole
    image masked); `wrap`: changes the guided denoiser the sampler calls (img2img's mask)."""
    params, context, active = run.params, run.options.context, run.active
    denoiser, conditions, extra_inputs = _guidance(run, encode, size, x, len(seeds), conditioning)
    scale = params.cfg_scale * getattr(sampler, "cfg_scale_multiplier", 1.0)
    refiner = run.refiner if refine else None
    if refiner is not None:

        def to_refiner(cfg: RefinerCFGDenoiser) -> None:
            if active.switch(refiner.load):
                cfg.denoiser, cfg.conditions, cfg.extra_inputs = _guidance(
                    run, encode, size, x, len(seeds), conditioning
                )
                cfg.image_cfg_scale = _image_cfg_scale(run)
                run.refined = True

        cfg: CFGDenoiser = RefinerCFGDenoiser(
            denoiser, conditions, scale, extra_inputs,
            switch_at=params.refiner_switch_at,
            schedule=DiscreteSchedule.stable_diffusion(),
            on_switch=to_refiner,
        )  # fmt: skip
    else:
        cfg = CFGDenoiser(denoiser, conditions, scale, extra_inputs)
    cfg.image_cfg_scale = _image_cfg_scale(run)

    def callback(info: Any) -> None:
        if context is not None:
            context.check()
            context.progress(info.step + 1, info.total)
            every = run.options.preview_every
            if every > 0 and (info.step + 1) % every == 0 and info.step + 1 < info.total:
                method = run.options.preview_method
                context.preview(preview_image(info.denoised, active.model, method))

    options = _sampler_options(sampler, params, seeds)
    if not getattr(sampler, "brownian_noise", False):
        options["noise_sampler"] = rng.noise_sampler
    model = wrap(cfg, sampler) if wrap is not None else cfg
    with torch.no_grad():
        latents = sampler.sample(model, x, sigmas, callback=callback, **options)
    last = float(sigmas[-1])
    if last > 0:  # a timestep sampler stops at a timestep above 0: A1111 decodes its VP x
        latents = latents / (1 + last**2) ** 0.5
    return latents
