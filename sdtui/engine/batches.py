"""The batch loop txt2img and img2img share: seeds, the active model, and each image's
infotext.

    options = EngineOptions(samplers=host.samplers, schedules=host.schedules, context=job)
    results = run_batches(model, params, options, sampler, plan, sample, networks=first)

`run_batches` draws A1111's seeds for the whole run (seed + i; the same seed with
subseed + i when a variation strength is set), then for each of `batch_count` batches puts
the run's own model back with the first pass's LoRA networks (A1111 starts every batch on
its own model), asks `sample(run, seeds, subseeds)` for the batch's latents, decodes them,
lets `finish(image, offset)` change each image (img2img pastes the unmasked pixels back)
and describes it (`GeneratedImage` with its infotext). Skip (the job context's `skippable`)
abandons the current batch; the next one runs. The model's weights and padding are restored
when the run ends, also after an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from sdtui.core.noise import image_seeds
from sdtui.engine.conditioning import emphasis_infotext
from sdtui.engine.images import decode_latents
from sdtui.engine.model_switch import ActiveModel, OtherModels, named_checkpoint
from sdtui.engine.options import AFTER_IMAGE_COPIES, EngineOptions
from sdtui.engine.passes import PassRun
from sdtui.models.embedding_db import EmbeddingSet, text_encoder_widths
from sdtui.models.networks import AppliedNetwork
from sdtui.params.codec import RunFacts, infotext_from_params
from sdtui.params.schema import GenerationParams

# the latents of one batch from its seeds: sample(run, seeds, subseeds)
SampleBatch = Callable[[PassRun, list[int], list[int]], torch.Tensor]
# a copy kept before a stage (A1111's save_images_before_*): keep(stage, image)
KeepCopy = Callable[[str, Image.Image], None]
# a decoded image, changed before it is described: finish(image, offset in the batch, keep)
FinishImage = Callable[[Image.Image, int, KeepCopy], Image.Image]


@dataclass
class GeneratedImage:
    image: Image.Image
    params: GenerationParams  # with this image's seed
    infotext: str
    index: int  # position in the whole run (batch n, item i -> n * batch_size + i)


def check_other_models(params: GenerationParams, other: OtherModels) -> None:
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


def skippable(context: Any) -> Any:
    """The job context's skip guard (ends the block quietly on Skip), if it has one."""
    guard = getattr(context, "skippable", None)
    return guard() if guard is not None else contextlib.nullcontext()


def run_batches(
    model: Any,
    params: GenerationParams,
    options: EngineOptions,
    sampler: Any,
    plan: Any,
    sample: SampleBatch,
    *,
    networks: Sequence[AppliedNetwork] = (),
    extra: Mapping[str, Any] | None = None,
    finish: FinishImage | None = None,
    facts: Mapping[str, Any] | None = None,
) -> list[GeneratedImage]:
    """`batch_count` batches of `batch_size` images. `networks`: the LoRA networks every
    batch starts with; `extra`: infotext keys of the run; `facts`: more `RunFacts` fields."""
    total = params.batch_count * params.batch_size
    seeds, subseeds = image_seeds(
        params.seed, params.variation_seed, total, params.variation_strength
    )
    other = options.other_models
    active = ActiveModel(
        model,
        tiling=bool(params.tiling),
        encoder_options={
            "emphasis": params.emphasis or "Original",
            "clip_skip": params.clip_skip or 1,
            "comma_backtrack": options.comma_backtrack,
        },
        embeddings_for=_embeddings_for(model, options.embeddings, other),
    )
    run = PassRun(active, params, options)
    reload = other.reload or (lambda: model)
    results: list[GeneratedImage] = []
    try:
        for batch in range(params.batch_count):
            images = None
            run.intermediates.clear()
            with skippable(options.context):  # Skip abandons this batch; the next one runs
                span = slice(batch * params.batch_size, (batch + 1) * params.batch_size)
                active.switch(reload, networks)  # A1111: every batch on its own model
                latents = sample(run, seeds[span], subseeds[span])
                images = decode_latents(active.model.vae, latents)
            for offset, image in enumerate(images or ()):
                index = batch * params.batch_size + offset
                before = list(run.intermediates.get(offset, ()))  # copies saved beside it
                after: list[tuple[Image.Image, str]] = []

                def keep(
                    stage: str, copy: Image.Image, before: list = before, after: list = after
                ) -> None:
                    suffix = options.copy_suffix(stage)
                    if suffix is not None:
                        (after if stage in AFTER_IMAGE_COPIES else before).append((copy, suffix))

                if params.restore_faces:
                    keep("face restoration", image)
                    image = restore_faces(image, options)
                if finish is not None:
                    image = finish(image, offset, keep)
                result = describe(
                    image, run.image_params(), sampler, plan, seeds[index], subseeds[index],
                    options, extra={**(extra or {}), **run.extra()}, facts=facts,
                )  # fmt: skip
                result.index = index
                results.append(result)
                _hand_over(options, result, before)
                if options.on_image is not None:
                    options.on_image(result)
                _hand_over(options, result, after)
    finally:
        active.release()  # the model's weights and padding as loaded, even after an error
    return results


def _hand_over(
    options: EngineOptions, result: GeneratedImage, copies: list[tuple[Image.Image, str]]
) -> None:
    """Give `on_intermediate` each kept copy of `result`'s image, with its infotext."""
    if options.on_intermediate is not None:
        for copy, suffix in copies:
            options.on_intermediate(dataclasses.replace(result, image=copy), suffix)


def restore_faces(image: Image.Image, options: EngineOptions) -> Image.Image:
    """A1111's "Restore faces" on one decoded image (the same size back)."""
    if options.face_restorer is None:
        raise ValueError("Restore faces is on, but no face restorer was given to the run")
    if options.context is not None and hasattr(options.context, "check"):
        options.context.check()
    restored = options.face_restorer(image)
    if restored.size != image.size:
        raise ValueError(
            f"the face restorer returned a {restored.width}x{restored.height} image for a "
            f"{image.width}x{image.height} one"
        )
    return restored.convert(image.mode) if restored.mode != image.mode else restored


def describe(
    image: Image.Image,
    params: GenerationParams,
    sampler: Any,
    plan: Any,
    seed: int,
    subseed: int,
    options: EngineOptions,
    *,
    extra: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
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
    model = options.model_facts
    run = RunFacts(
        seed=seed,
        variation_seed=subseed,
        schedule_label=plan.schedule_label,
        model_name=model.name,
        model_hash=model.short_hash,
        vae_name=model.vae_name,
        vae_hash=model.vae_hash,
        uses_ensd=bool(getattr(sampler, "uses_ensd", False)) and bool(eta),
        uses_eta=stochastic and not ddim_family,
        uses_eta_ddim=ddim_family,
        extra=extra,
        version=options.version,
        face_restoration=options.face_restoration_model if params.restore_faces else None,
        **(facts or {}),
    )
    return GeneratedImage(image, image_params, infotext_from_params(image_params, run), 0)
