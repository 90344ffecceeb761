"""The one parameter schema: every generation parameter, declared once.

Each field of `GenerationParams` carries a `Spec` (label, help, range, step, choices,
infotext key, CLI flag, the setting that supplies its default). The CLI flags, the TUI
forms, the infotext writer and reader, the PNG JSON chunk and validation are all derived
from these declarations, so a parameter is never spelled in several places.

A field whose value is None is unset: "same as the first pass" for hires overrides, or
"take the default from settings" for things like clip skip, eta, RNG source and ENSD.
`sdtui.params.resolve` turns a request into concrete values before generation; what is
written into the PNG is what actually ran.

Plain dataclasses rather than pydantic: the schema is imported by the TUI on its start-up
path, and errors must read like A1111 users expect ("Steps must be between 1 and 150").
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

UNSET_DEFAULT = object()  # Spec.a1111_default when A1111 always writes the key


@dataclass(frozen=True)
class Spec:
    label: str
    help: str
    section: str
    infotext: str | None = None  # A1111's infotext key; None: not carried by infotext
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: str | tuple[str, ...] | None = None  # a registry ("samplers") or fixed values
    setting: str | None = None  # the setting that supplies the default when unset
    a1111_default: Any = UNSET_DEFAULT  # the infotext omits the key at this value
    multiline: bool = False
    # an infotext value that says more than this field: text -> {field name: value}
    # (None: the value converted to the field's type)
    reader: Callable[[str], dict[str, Any]] | None = None


def param(default: Any, spec: Spec) -> Any:
    if isinstance(default, list | dict):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"spec": spec})


SAMPLER = "sampler"
PROMPT = "prompt"
DIMENSIONS = "dimensions"
SEED = "seed"
HIRES = "hires"
REFINER = "refiner"
MODEL = "model"
ADVANCED = "sampler parameters"
IMG2IMG = "img2img"  # img2img only: the txt2img form and `sdtui generate` leave these out
INPAINT = "inpaint"  # img2img with a mask only

RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
MASKED_CONTENT = ("fill", "original", "latent noise", "latent nothing")
INPAINT_AREAS = ("Whole picture", "Only masked")
MASK_MODES = ("Inpaint masked", "Inpaint not masked")


def read_face_restoration(text: str) -> dict[str, Any]:
    """A1111 writes the restorer it ran ("Face restoration: GFPGAN"); older files and sdtui
    without a name write True."""
    name = text.strip()
    if name.casefold() in ("", "false", "0", "no", "none"):
        return {"restore_faces": False}
    if name.casefold() in ("true", "1", "yes"):
        return {"restore_faces": True}
    return {"restore_faces": True, "face_restoration_model": name}


@dataclass(frozen=True)
class GenerationParams:
    """A txt2img request. Defaults follow A1111's txt2img tab."""

    prompt: str = param(
        "", Spec("Prompt", "What to draw, in A1111's prompt syntax.", PROMPT, multiline=True)
    )
    negative_prompt: str = param(
        "", Spec("Negative prompt", "What to avoid.", PROMPT, multiline=True)
    )
    styles: tuple[str, ...] = param(
        (),
        Spec("Styles", "Styles from styles.csv applied to the prompts.", PROMPT, choices="styles"),
    )
    sampler: str = param(
        "DPM++ 2M",
        Spec(
            "Sampling method",
            "The sampler (A1111 names and aliases work).",
            SAMPLER,
            infotext="Sampler",
            choices="samplers",
        ),
    )
    schedule: str = param(
        "Automatic",
        Spec(
            "Schedule type",
            "Sigma schedule; Automatic uses the sampler's preferred one.",
            SAMPLER,
            infotext="Schedule type",
            choices="schedules",
        ),
    )
    steps: int = param(
        20,
        Spec(
            "Sampling steps",
            "Denoising steps.",
            SAMPLER,
            infotext="Steps",
            minimum=1,
            maximum=150,
            step=1,
        ),
    )
    width: int = param(
        512,
        Spec(
            "Width",
            "Image width in pixels (a multiple of 8).",
            DIMENSIONS,
            infotext="Size",
            minimum=64,
            maximum=2048,
            step=8,
        ),
    )
    height: int = param(
        512,
        Spec(
            "Height",
            "Image height in pixels (a multiple of 8).",
            DIMENSIONS,
            infotext="Size",
            minimum=64,
            maximum=2048,
            step=8,
        ),
    )
    batch_count: int = param(
        1,
        Spec(
            "Batch count",
            "How many batches to make, one after another.",
            DIMENSIONS,
            minimum=1,
            maximum=1000,
            step=1,
        ),
    )
    batch_size: int = param(
        1, Spec("Batch size", "Images made at once.", DIMENSIONS, minimum=1, maximum=8, step=1)
    )
    cfg_scale: float = param(
        7.0,
        Spec(
            "CFG Scale",
            "How strongly the image follows the prompt.",
            SAMPLER,
            infotext="CFG scale",
            minimum=1.0,
            maximum=30.0,
            step=0.5,
        ),
    )
    seed: int = param(
        -1,
        Spec(
            "Seed",
            "-1 picks a random seed.",
            SEED,
            infotext="Seed",
            minimum=-1,
            maximum=2**32 - 1,
            step=1,
        ),
    )
    variation_seed: int = param(
        -1,
        Spec(
            "Variation seed",
            "Seed of the noise blended in; -1 picks one.",
            SEED,
            infotext="Variation seed",
            minimum=-1,
            maximum=2**32 - 1,
            step=1,
        ),
    )
    variation_strength: float = param(
        0.0,
        Spec(
            "Variation strength",
            "How much of the variation seed's noise to blend in.",
            SEED,
            infotext="Variation seed strength",
            minimum=0.0,
            maximum=1.0,
            step=0.01,
            a1111_default=0.0,
        ),
    )
    seed_resize_from_width: int = param(
        0,
        Spec(
            "Resize seed from width",
            "Make the noise as if the image were this wide.",
            SEED,
            infotext="Seed resize from",
            minimum=0,
            maximum=2048,
            step=8,
        ),
    )
    seed_resize_from_height: int = param(
        0,
        Spec(
            "Resize seed from height",
            "Make the noise as if the image were this tall.",
            SEED,
            infotext="Seed resize from",
            minimum=0,
            maximum=2048,
            step=8,
        ),
    )
    model: str | None = param(
        None,
        Spec(
            "Checkpoint",
            "Checkpoint name, title or hash; unset: the active one.",
            MODEL,
            infotext="Model",
            choices="checkpoints",
            setting="sd_model_checkpoint",
        ),
    )
    vae: str | None = param(
        None,
        Spec(
            "SD VAE",
            "Automatic, None (baked in) or a VAE file name.",
            MODEL,
            infotext="VAE",
            choices="vaes",
            setting="sd_vae",
        ),
    )
    clip_skip: int | None = param(
        None,
        Spec(
            "Clip skip",
            "Stop the text encoder this many layers before its last.",
            ADVANCED,
            infotext="Clip skip",
            minimum=1,
            maximum=12,
            step=1,
            setting="CLIP_stop_at_last_layers",
            a1111_default=1,
        ),
    )
    emphasis: str | None = param(
        None,
        Spec(
            "Emphasis mode",
            "How (weights) in the prompt are applied.",
            ADVANCED,
            infotext="Emphasis",
            choices=("Original", "No norm", "Ignore", "None"),
            setting="emphasis",
            a1111_default="Original",
        ),
    )
    rng: str | None = param(
        None,
        Spec(
            "Random number generator source",
            "CPU: the same images on every machine; GPU: A1111's default; NV: GPU noise "
            "reproduced on any hardware.",
            ADVANCED,
            infotext="RNG",
            choices=("CPU", "GPU", "NV"),
            setting="randn_source",
            a1111_default="GPU",
        ),
    )
    ensd: int | None = param(
        None,
        Spec(
            "Eta noise seed delta",
            "Added to the seed of ancestral samplers' noise.",
            ADVANCED,
            infotext="ENSD",
            minimum=0,
            maximum=2**32 - 1,
            step=1,
            setting="eta_noise_seed_delta",
            a1111_default=0,
        ),
    )
    eta: float | None = param(
        None,
        Spec(
            "Eta",
            "Noise multiplier of ancestral and SDE samplers.",
            ADVANCED,
            infotext="Eta",
            minimum=0.0,
            maximum=1.0,
            step=0.01,
            setting="eta_ancestral",
            a1111_default=1.0,
        ),
    )
    eta_ddim: float | None = param(
        None,
        Spec(
            "Eta for DDIM",
            "Noise multiplier of DDIM.",
            ADVANCED,
            infotext="Eta DDIM",
            minimum=0.0,
            maximum=1.0,
            step=0.01,
            setting="eta_ddim",
            a1111_default=0.0,
        ),
    )
    s_churn: float | None = param(
        None,
        Spec(
            "Sigma churn",
            "Extra noise added per step (Karras et al.).",
            ADVANCED,
            infotext="Sigma churn",
            minimum=0.0,
            maximum=100.0,
            step=0.01,
            setting="s_churn",
            a1111_default=0.0,
        ),
    )
    s_tmin: float | None = param(
        None,
        Spec(
            "Sigma tmin",
            "Churn applies above this sigma.",
            ADVANCED,
            infotext="Sigma tmin",
            minimum=0.0,
            maximum=10.0,
            step=0.01,
            setting="s_tmin",
            a1111_default=0.0,
        ),
    )
    s_tmax: float | None = param(
        None,
        Spec(
            "Sigma tmax",
            "Churn applies below this sigma (0 = no limit).",
            ADVANCED,
            infotext="Sigma tmax",
            minimum=0.0,
            maximum=999.0,
            step=0.01,
            setting="s_tmax",
            a1111_default=0.0,
        ),
    )
    s_noise: float | None = param(
        None,
        Spec(
            "Sigma noise",
            "Scale of the churn noise.",
            ADVANCED,
            infotext="Sigma noise",
            minimum=0.0,
            maximum=1.1,
            step=0.001,
            setting="s_noise",
            a1111_default=1.0,
        ),
    )
    sigma_min: float | None = param(
        None,
        Spec(
            "Schedule min sigma",
            "0 = the model's.",
            ADVANCED,
            infotext="Schedule min sigma",
            minimum=0.0,
            maximum=2.0,
            step=0.001,
            setting="sigma_min",
            a1111_default=0.0,
        ),
    )
    sigma_max: float | None = param(
        None,
        Spec(
            "Schedule max sigma",
            "0 = the model's.",
            ADVANCED,
            infotext="Schedule max sigma",
            minimum=0.0,
            maximum=100.0,
            step=0.001,
            setting="sigma_max",
            a1111_default=0.0,
        ),
    )
    rho: float | None = param(
        None,
        Spec(
            "Schedule rho",
            "0 = the schedule's own (Karras: 7).",
            ADVANCED,
            infotext="Schedule rho",
            minimum=0.0,
            maximum=100.0,
            step=0.01,
            setting="rho",
            a1111_default=0.0,
        ),
    )
    enable_hires: bool = param(
        False, Spec("Hires. fix", "Upscale and denoise again in a second pass.", HIRES)
    )
    hires_upscaler: str = param(
        "Latent",
        Spec(
            "Upscaler",
            "A latent mode or any upscaler.",
            HIRES,
            infotext="Hires upscaler",
            choices="hires_upscalers",
        ),
    )
    hires_steps: int = param(
        0,
        Spec(
            "Hires steps",
            "0 = same as sampling steps.",
            HIRES,
            infotext="Hires steps",
            minimum=0,
            maximum=150,
            step=1,
            a1111_default=0,
        ),
    )
    denoising_strength: float = param(
        0.7,
        Spec(
            "Denoising strength",
            "How much the second pass may change.",
            HIRES,
            infotext="Denoising strength",
            minimum=0.0,
            maximum=1.0,
            step=0.01,
        ),
    )
    hires_scale: float = param(
        2.0,
        Spec(
            "Upscale by",
            "Second pass size as a multiple of the first.",
            HIRES,
            infotext="Hires upscale",
            minimum=1.0,
            maximum=4.0,
            step=0.05,
        ),
    )
    hires_resize_width: int = param(
        0,
        Spec(
            "Resize width to",
            "Overrides Upscale by (0 = from the height).",
            HIRES,
            infotext="Hires resize",
            minimum=0,
            maximum=2048,
            step=8,
        ),
    )
    hires_resize_height: int = param(
        0,
        Spec(
            "Resize height to",
            "Overrides Upscale by (0 = from the width).",
            HIRES,
            infotext="Hires resize",
            minimum=0,
            maximum=2048,
            step=8,
        ),
    )
    hires_checkpoint: str | None = param(
        None,
        Spec(
            "Hires checkpoint",
            "Unset: use the same checkpoint.",
            HIRES,
            infotext="Hires checkpoint",
            choices="checkpoints",
        ),
    )
    hires_sampler: str | None = param(
        None,
        Spec(
            "Hires sampling method",
            "Unset: use the same sampler.",
            HIRES,
            infotext="Hires sampler",
            choices="samplers",
        ),
    )
    hires_schedule: str | None = param(
        None,
        Spec(
            "Hires schedule type",
            "Unset: use the same schedule.",
            HIRES,
            infotext="Hires schedule type",
            choices="schedules",
        ),
    )
    hires_prompt: str = param(
        "",
        Spec(
            "Hires prompt",
            "Empty: the same prompt.",
            HIRES,
            infotext="Hires prompt",
            multiline=True,
            a1111_default="",
        ),
    )
    hires_negative_prompt: str = param(
        "",
        Spec(
            "Hires negative prompt",
            "Empty: the same negative prompt.",
            HIRES,
            infotext="Hires negative prompt",
            multiline=True,
            a1111_default="",
        ),
    )
    refiner_checkpoint: str | None = param(
        None,
        Spec(
            "Refiner",
            "SDXL refiner checkpoint; unset: no refiner.",
            REFINER,
            infotext="Refiner",
            choices="checkpoints",
        ),
    )
    refiner_switch_at: float = param(
        0.8,
        Spec(
            "Switch at",
            "Fraction of the steps after which the refiner takes over.",
            REFINER,
            infotext="Refiner switch at",
            minimum=0.01,
            maximum=1.0,
            step=0.01,
        ),
    )
    tiling: bool | None = param(
        None,
        Spec(
            "Tiling",
            "Make a seamlessly tileable image.",
            ADVANCED,
            infotext="Tiling",
            setting="tiling",
            a1111_default=False,
        ),
    )
    restore_faces: bool | None = param(
        None,
        Spec(
            "Restore faces",
            "Restore faces in every image with the face restoration model of the settings "
            "(GFPGAN or CodeFormer; their weights go in models/GFPGAN, models/Codeformer).",
            ADVANCED,
            infotext="Face restoration",
            setting="face_restoration",
            a1111_default=False,
            reader=read_face_restoration,
        ),
    )
    face_restoration_model: str | None = param(
        None,
        Spec(
            "Face restoration model",
            'What "Restore faces" runs (GFPGAN, CodeFormer or a plugin\'s); unset: the '
            'setting. The infotext\'s "Face restoration" names it.',
            ADVANCED,
            choices="face_restorers",
            setting="face_restoration_model",
        ),
    )
    # -- img2img and inpainting (A1111's img2img tab; "Denoising strength" is the field above,
    # A1111's one key for both: its default is 0.7 for hires fix, 0.75 in img2img, see
    # IMG2IMG_DEFAULTS) ------------------------------------------------------------------------
    resize_mode: str = param(
        "Just resize",
        Spec(
            "Resize mode",
            "How the input becomes width x height: stretch, crop the overflow, fill the "
            "borders from the image's edges, or stretch the latents.",
            IMG2IMG,
            choices=RESIZE_MODES,
        ),
    )
    img2img_fix_steps: bool | None = param(
        None,
        Spec(
            "Do exactly the steps given",
            "Off (A1111): at denoising strength d only about d x steps run; on: steps / d "
            "are planned and exactly `steps` run.",
            IMG2IMG,
            setting="img2img_fix_steps",
        ),
    )
    initial_noise_multiplier: float | None = param(
        None,
        Spec(
            "Noise multiplier for img2img",
            "Scales the noise added to the input's latents.",
            IMG2IMG,
            infotext="Noise multiplier",
            minimum=0.0,
            maximum=1.5,
            step=0.001,
            setting="initial_noise_multiplier",
            a1111_default=1.0,
        ),
    )
    img2img_extra_noise: float | None = param(
        None,
        Spec(
            "Extra noise multiplier for img2img and hires fix",
            "Adds this much more of the seed's noise to the starting latents of img2img and "
            "of hires fix's second pass (0: none).",
            IMG2IMG,
            infotext="Extra noise",
            minimum=0.0,
            maximum=1.0,
            step=0.01,
            setting="img2img_extra_noise",
            a1111_default=0.0,
        ),
    )
    img2img_color_correction: bool | None = param(
        None,
        Spec(
            "Apply color correction to img2img results to match original colors",
            "Matches each result's colour histograms (in CIELAB) to the input's, keeping the "
            "result's own lightness. Not written into the infotext (A1111 does not).",
            IMG2IMG,
            setting="img2img_color_correction",
        ),
    )
    image_cfg_scale: float = param(
        1.5,
        Spec(
            "Image CFG Scale",
            "instruct-pix2pix checkpoints only: how closely the result keeps to the input "
            "image (1: ordinary guidance). Written into the infotext only when such a model "
            "ran, as A1111 does.",
            IMG2IMG,
            infotext="Image CFG scale",
            minimum=0.0,
            maximum=3.0,
            step=0.05,
        ),
    )
    mask_blur: int = param(
        4,
        Spec(
            "Mask blur",
            "Gaussian blur of the mask's edge, in pixels.",
            INPAINT,
            infotext="Mask blur",
            minimum=0,
            maximum=64,
            step=1,
        ),
    )
    mask_mode: str = param(
        "Inpaint masked",
        Spec(
            "Mask mode",
            "Repaint the masked (white) area, or everything else.",
            INPAINT,
            infotext="Mask mode",
            choices=MASK_MODES,
        ),
    )
    inpainting_fill: str = param(
        "original",
        Spec(
            "Masked content",
            "What the masked area starts from: the image blurred in from around it, the "
            "image, noise, or nothing.",
            INPAINT,
            infotext="Masked content",
            choices=MASKED_CONTENT,
        ),
    )
    inpaint_area: str = param(
        "Whole picture",
        Spec(
            "Inpaint area",
            "Only masked: repaint a crop around the mask at full size, then paste it back.",
            INPAINT,
            infotext="Inpaint area",
            choices=INPAINT_AREAS,
        ),
    )
    inpaint_full_res_padding: int = param(
        32,
        Spec(
            "Only masked padding, pixels",
            "Context kept around the mask's box with Only masked.",
            INPAINT,
            infotext="Masked area padding",
            minimum=0,
            maximum=256,
            step=4,
        ),
    )
    inpainting_mask_weight: float | None = param(
        None,
        Spec(
            "Inpainting conditioning mask strength",
            "How much of the masked image an inpainting model sees (1: masked out).",
            INPAINT,
            infotext="Conditional mask weight",  # written whenever an inpainting model runs
            minimum=0.0,
            maximum=1.0,
            step=0.01,
            setting="inpainting_mask_weight",
            a1111_default=1.0,  # what a missing key means
        ),
    )
    # -- soft inpainting (A1111's built-in "Soft inpainting" script; sdtui.engine.soft_inpainting)
    soft_inpainting: bool = param(
        False,
        Spec(
            "Soft inpainting",
            "Blend the original into the result by the mask's grey levels (use a high mask "
            "blur), and paste the input back where the image changed little.",
            INPAINT,
            infotext="Soft inpainting enabled",
        ),
    )
    soft_inpainting_schedule_bias: float = param(
        1.0,
        Spec(
            "Schedule bias",
            "Shifts when preservation of original content occurs during denoising (below 1: "
            "near the end; above 1: at the start).",
            INPAINT,
            infotext="Soft inpainting schedule bias",
            minimum=0.0,
            maximum=8.0,
            step=0.1,
        ),
    )
    soft_inpainting_preservation_strength: float = param(
        0.5,
        Spec(
            "Preservation strength",
            "How strongly partially masked content should be preserved.",
            INPAINT,
            infotext="Soft inpainting preservation strength",
            minimum=0.0,
            maximum=8.0,
            step=0.05,
        ),
    )
    soft_inpainting_transition_contrast_boost: float = param(
        4.0,
        Spec(
            "Transition contrast boost",
            "Amplifies the contrast that may be lost in partially masked regions.",
            INPAINT,
            infotext="Soft inpainting transition contrast boost",
            minimum=1.0,
            maximum=32.0,
            step=0.5,
        ),
    )
    soft_inpainting_mask_influence: float = param(
        0.0,
        Spec(
            "Mask influence",
            "How strongly the original mask should bias the difference threshold.",
            INPAINT,
            infotext="Soft inpainting mask influence",
            minimum=0.0,
            maximum=1.0,
            step=0.05,
        ),
    )
    soft_inpainting_difference_threshold: float = param(
        0.5,
        Spec(
            "Difference threshold",
            "How much an image region can change before the original pixels are not blended "
            "in anymore.",
            INPAINT,
            infotext="Soft inpainting difference threshold",
            minimum=0.0,
            maximum=8.0,
            step=0.25,
        ),
    )
    soft_inpainting_difference_contrast: float = param(
        2.0,
        Spec(
            "Difference contrast",
            "How sharp the transition should be between blended and not blended.",
            INPAINT,
            infotext="Soft inpainting difference contrast",
            minimum=0.0,
            maximum=8.0,
            step=0.25,
        ),
    )


PARAMS: dict[str, dataclasses.Field[Any]] = {
    f.name: f for f in dataclasses.fields(GenerationParams)
}


# img2img's own defaults where A1111's img2img tab differs from txt2img's
IMG2IMG_DEFAULTS: dict[str, Any] = {"denoising_strength": 0.75}


def img2img_defaults() -> GenerationParams:
    """A request with A1111's img2img defaults."""
    return dataclasses.replace(GenerationParams(), **IMG2IMG_DEFAULTS)


def spec(name: str, schema: type = GenerationParams) -> Spec:
    """The Spec of field `name` of `schema` (a dataclass declared with `param`)."""
    return fields_of(schema)[name].metadata["spec"]


@functools.cache
def fields_of(schema: type) -> dict[str, dataclasses.Field[Any]]:
    """A schema dataclass's fields by name, in declaration order."""
    return {item.name: item for item in dataclasses.fields(schema)}


@functools.cache
def _type_hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)  # slow (evaluates every annotation)


def value_type(name: str, schema: type = GenerationParams) -> type:
    """The concrete type of a field (int for `int | None`, tuple for styles)."""
    hint = _type_hints(schema)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return typing.get_origin(hint) or hint


def is_optional(name: str, schema: type = GenerationParams) -> bool:
    """True for fields that may be None (from settings, or "same as the first pass")."""
    hint = _type_hints(schema)[name]
    return type(None) in typing.get_args(hint)


def cli_flag(name: str) -> str:
    return "--" + name.replace("_", "-")
