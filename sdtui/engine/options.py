"""What a txt2img or img2img call is given besides the model, the request and its images.

    options = EngineOptions(samplers=host.samplers, schedules=host.schedules, context=job)
    images = txt2img(model, params, options)
    images = img2img(model, params, options, [init], mask)

The registries, the job context, how the infotext names the model, the callbacks, the
networks and embeddings the prompts may name, the other checkpoints, and A1111's settings
that change how a run goes (the hires refiner pass, SDXL's crop, the upscalers' tiling, the
img2img upscaler and background). One frozen object, so a service builds it once per job
and scripts pass it on unchanged (`dataclasses.replace` for a change).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdtui.engine.masking import BACKGROUND
from sdtui.engine.model_switch import OtherModels
from sdtui.engine.prompt_chunks import DEFAULT_COMMA_BACKTRACK
from sdtui.engine.refiner import DEFAULT_HIRES_REFINER_PASS
from sdtui.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE

if TYPE_CHECKING:
    from sdtui.engine.batches import GeneratedImage
    from sdtui.models.embedding_db import EmbeddingSet
    from sdtui.models.networks import LoraNetwork


# The extra copies A1111 can save beside an image, by the engine's stage names, with their
# file suffixes; the masks' are saved after the image, the others before it.
COPY_SUFFIXES = {
    "highres fix": "-before-highres-fix",
    "face restoration": "-before-face-restoration",
    "color correction": "-before-color-correction",
    "mask": "-mask",
    "mask composite": "-mask-composite",
}
AFTER_IMAGE_COPIES = frozenset({"mask", "mask composite"})


@dataclass(frozen=True)
class ModelFacts:
    """How the infotext names the model and VAE (A1111's `Model`, `Model hash`, ...)."""

    name: str | None = None
    short_hash: str | None = None
    vae_name: str | None = None
    vae_hash: str | None = None


@dataclass(frozen=True)
class EngineOptions:
    """Everything but the model, the request and the mode's images.

    `upscalers`: the registry hires fix's pixel upscalers come from. `context`: the job
    context (progress, previews, interrupt, skip). `on_image`: called with each image as
    soon as it is described. `embeddings`: the textual-inversion embeddings prompts may name
    (`TI hashes`). `networks`: the LoRA networks the prompts' `<lora:...>` tags name
    (`Lora hashes`). `preview_every`: a preview every that many steps (0: none), drawn by
    `preview_method` (A1111's show_progress_type: "Full" decodes with the VAE, the others
    draw sdtui's cheap fitted map).
    `other_models`: loaders for the hires checkpoint and the refiner the request names.
    `hires_refiner_pass`: A1111's "Hires fix: which pass to enable refiner for".
    `sdxl_crop`: SDXL's crop conditioning (top, left), A1111's sdxl_crop_top / _left.
    `refiner_aesthetic`: the SDXL refiner's aesthetic scores (negative prompt, prompt),
    A1111's sdxl_refiner_low_aesthetic_score / _high_aesthetic_score.
    `comma_backtrack`: A1111's comma_padding_backtrack, how far back a 75-token chunk may
    end at a comma (0: never).
    `upscaler_tile` / `upscaler_tile_overlap`: A1111's ESRGAN_tile / ESRGAN_tile_overlap,
    the tiles every tiled upscaler of the run works in (0: no tiling).
    `img2img_upscaler`: enlarges img2img's inputs (A1111's "Upscaler for img2img"; None:
    Lanczos). `img2img_background`: what transparency in img2img's inputs becomes.
    `face_restorer`: what "Restore faces" (`params.restore_faces`) runs on every decoded
    image, before img2img's overlay (A1111's order); `face_restoration_model` names it in
    the infotext ("Face restoration: CodeFormer"). `init_image_hash`: the md5 of the init
    image the job saved (A1111's save_init_img), written as "Init image hash".
    `keep_copies` / `on_intermediate`: the extra files A1111 saves beside an image, by
    stage (`COPY_SUFFIXES`): save_images_before_highres_fix / _face_restoration /
    _color_correction, handed over before the image's own `on_image`, and save_mask /
    save_mask_composite (img2img with a mask), handed over after it."""

    samplers: Any
    schedules: Any
    upscalers: Any = None
    context: Any = None
    model_facts: ModelFacts = ModelFacts()
    version: str | None = None
    on_image: Callable[[GeneratedImage], None] | None = None
    embeddings: EmbeddingSet | None = None
    networks: Mapping[str, LoraNetwork] | None = None
    preview_every: int = 0
    preview_method: str = "Approx cheap"
    other_models: OtherModels = field(default_factory=OtherModels)
    hires_refiner_pass: str = DEFAULT_HIRES_REFINER_PASS
    sdxl_crop: tuple[int, int] = (0, 0)
    refiner_aesthetic: tuple[float, float] = (2.5, 6.0)  # (negative prompt, prompt)
    comma_backtrack: int = DEFAULT_COMMA_BACKTRACK
    upscaler_tile: int = DEFAULT_TILE
    upscaler_tile_overlap: int = DEFAULT_OVERLAP
    img2img_upscaler: Any = None
    img2img_background: str = BACKGROUND
    face_restorer: Callable[[Any], Any] | None = None  # PIL image -> restored PIL image
    face_restoration_model: str | None = None  # its name, for the infotext
    init_image_hash: str | None = None  # img2img: the saved init image's md5
    # which of `COPY_SUFFIXES`' stages to hand to `on_intermediate`, each with its image's
    # infotext and its file suffix
    keep_copies: frozenset[str] = frozenset()
    on_intermediate: Callable[[GeneratedImage, str], None] | None = None

    def copy_suffix(self, stage: str) -> str | None:
        """The file suffix of `stage`'s copy ("-before-highres-fix", "-mask") when the run
        keeps one, else None."""
        if stage in self.keep_copies and self.on_intermediate is not None:
            return COPY_SUFFIXES[stage]
        return None

    @property
    def check(self) -> Callable[[], None] | None:
        """The context's interrupt check (called between upscaler tiles), if it has one."""
        return getattr(self.context, "check", None)
