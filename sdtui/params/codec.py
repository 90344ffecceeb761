"""Generation parameters <-> A1111 infotext, driven by the schema's infotext keys.

`infotext_from_params` writes what actually ran (resolved params plus the facts only the
engine knows: the image's seed, the model's hash, the resolved schedule label). It follows
A1111's rules for which keys appear: hires keys only with hires fix, variation keys only at
a non-zero strength, and keys with an A1111 default (Clip skip, RNG, ENSD, Eta, ...) only
when they differ from it, so an A1111 reader reconstructs the same request.

`params_from_infotext` reads A1111's, Forge's and our own infotext back into parameter
values; keys it does not know are kept in `unknown`, never dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdtui.params.infotext import join_infotext, order_keys, parse_infotext, split_size
from sdtui.params.schema import (
    INPAINT_AREAS,
    MASK_MODES,
    PARAMS,
    UNSET_DEFAULT,
    GenerationParams,
    spec,
    value_type,
)

# Schedule labels a legacy sampler name may end with ("DPM++ 2M Karras").
LEGACY_SCHEDULE_SUFFIXES = (
    "Karras", "Exponential", "Polyexponential", "SGM Uniform", "Uniform", "KL Optimal",
    "Align Your Steps", "Simple", "Normal", "DDIM", "Beta",
)  # fmt: skip

# Soft inpainting's fields, in A1111's key order (its script adds them before p.init).
SOFT_INPAINTING = (
    "soft_inpainting", "soft_inpainting_schedule_bias", "soft_inpainting_preservation_strength",
    "soft_inpainting_transition_contrast_boost", "soft_inpainting_mask_influence",
    "soft_inpainting_difference_threshold", "soft_inpainting_difference_contrast",
)  # fmt: skip
SOFT_INPAINTING_KEYS = tuple(spec(name).infotext for name in SOFT_INPAINTING)

# A1111's insertion order of the extra keys it derives from the request.
EXTRA_ORDER = (
    "Hires checkpoint", "Hires sampler", "Hires prompt", "Hires negative prompt",
    "Hires schedule type", "Hires upscale", "Hires resize", "Hires steps", "Hires upscaler",
    "Refiner", "Refiner switch at", "Mask mode", "Mask blur", *SOFT_INPAINTING_KEYS,
    "Inpaint area", "Masked area padding", "Masked content", "Lora hashes", "TI hashes", "Emphasis",
    "Noise multiplier", "Extra noise", "Eta", "Eta DDIM",
    "Sigma churn", "Sigma tmin", "Sigma tmax", "Sigma noise", "Schedule min sigma",
    "Schedule max sigma", "Schedule rho",
)  # fmt: skip

# Keys that describe the run but are not request parameters.
INFO_KEYS = (
    "Model hash", "VAE hash", "Version", "User", "Lora hashes", "TI hashes", "Init image hash",
)  # fmt: skip

# Infotext keys that carry two fields as "WxH".
SIZE_KEYS = {
    "Size": ("width", "height"),
    "Seed resize from": ("seed_resize_from_width", "seed_resize_from_height"),
    "Hires resize": ("hires_resize_width", "hires_resize_height"),
}


@dataclass(frozen=True)
class RunFacts:
    """What only the engine knows about one image."""

    seed: int
    variation_seed: int | None = None
    schedule_label: str | None = None  # the resolved "Schedule type", e.g. "Karras"
    model_name: str | None = None
    model_hash: str | None = None
    vae_name: str | None = None
    vae_hash: str | None = None
    uses_ensd: bool = False  # the sampler draws noise after the first step
    uses_eta: bool = False  # ancestral / SDE samplers
    uses_eta_ddim: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. Lora hashes
    version: str | None = None
    img2img: bool = False  # an img2img run ("Denoising strength", "Noise multiplier")
    masked: bool = False  # an inpainting mask was given
    mask_dropped: bool = False  # Only masked found nothing to repaint: plain img2img ran
    inpainting_conditioning: bool = False  # an inpainting (9-channel) model ran
    edit_model: bool = False  # an instruct-pix2pix model ran img2img ("Image CFG scale")
    face_restoration: str | None = None  # the face restorer "Restore faces" used
    init_image_hash: str | None = None  # md5 of the saved init image (A1111's save_init_img)


def _unless_default(name: str, value: Any) -> Any:
    default = spec(name).a1111_default
    return None if default is not UNSET_DEFAULT and value == default else value


def _hires_values(params: GenerationParams) -> dict[str, Any]:
    if not params.enable_hires:
        return {}
    values: dict[str, Any] = {
        "Denoising strength": params.denoising_strength,
        "Hires checkpoint": params.hires_checkpoint,
        "Hires sampler": params.hires_sampler
        if params.hires_sampler not in (None, params.sampler)
        else None,
        "Hires prompt": params.hires_prompt
        if params.hires_prompt not in ("", params.prompt)
        else None,
        "Hires negative prompt": params.hires_negative_prompt
        if params.hires_negative_prompt not in ("", params.negative_prompt)
        else None,
        "Hires schedule type": params.hires_schedule
        if params.hires_schedule not in (None, params.schedule)
        else None,
        "Hires steps": params.hires_steps or None,
        "Hires upscaler": params.hires_upscaler,
        "Extra noise": _extra_noise(params),
    }
    if params.hires_resize_width == 0 and params.hires_resize_height == 0:
        values["Hires upscale"] = params.hires_scale
    else:
        values["Hires resize"] = f"{params.hires_resize_width}x{params.hires_resize_height}"
    return values


def _img2img_values(params: GenerationParams, facts: RunFacts) -> dict[str, Any]:
    """A1111's img2img keys: the mask's only when one was given, each only away from its
    default (except "Denoising strength", always written)."""
    if not facts.img2img:
        return {}
    kept = facts.masked and not facts.mask_dropped
    only_masked = kept and params.inpaint_area != INPAINT_AREAS[0]
    inverted = facts.masked and params.mask_mode != MASK_MODES[0]
    filled = kept and params.inpainting_fill != "original"
    return {
        "Denoising strength": params.denoising_strength,
        "Mask mode": params.mask_mode if inverted else None,
        # A1111's img2img tab writes it whenever a mask is given, 0 included
        "Mask blur": params.mask_blur if facts.masked else None,
        "Inpaint area": params.inpaint_area if only_masked else None,
        "Masked area padding": params.inpaint_full_res_padding if only_masked else None,
        "Masked content": params.inpainting_fill if filled else None,
        "Noise multiplier": _unless_default(
            "initial_noise_multiplier", params.initial_noise_multiplier
        ),
        "Extra noise": _extra_noise(params),
    }


def _extra_noise(params: GenerationParams) -> float | None:
    """A1111 writes "Extra noise" wherever it added some: img2img and hires fix's pass."""
    extra = params.img2img_extra_noise
    return extra if extra is not None and extra > 0 else None


def _soft_inpainting_values(params: GenerationParams, facts: RunFacts) -> dict[str, Any]:
    """A1111's soft inpainting keys: all seven whenever it is on and a mask was given."""
    if not (params.soft_inpainting and facts.img2img and facts.masked):
        return {}
    return {spec(name).infotext: getattr(params, name) for name in SOFT_INPAINTING}  # type: ignore[misc]


def _mask_weight(params: GenerationParams, facts: RunFacts) -> str | None:
    """A1111 writes "Conditional mask weight" whenever an inpainting model ran, txt2img
    included (`is_using_inpainting_conditioning`). The value is its setting's float, which
    A1111 writes as Python does ("1.0", the default; "0.5"), not as the UI's sliders hand
    over numbers ("1")."""
    if not facts.inpainting_conditioning:
        return None
    weight = params.inpainting_mask_weight
    return str(float(1.0 if weight is None else weight))


def infotext_values(params: GenerationParams, facts: RunFacts) -> dict[str, Any]:
    """The ordered `key -> value` pairs A1111 would write for this image."""
    varied = params.variation_strength > 0
    resized = params.seed_resize_from_width > 0 and params.seed_resize_from_height > 0
    values: dict[str, Any] = {
        "Steps": params.steps,
        "Sampler": params.sampler,
        "Schedule type": facts.schedule_label or params.schedule,
        "CFG scale": params.cfg_scale,
        "Image CFG scale": params.image_cfg_scale if facts.edit_model else None,
        "Seed": facts.seed,
        "Face restoration": (facts.face_restoration or "True") if params.restore_faces else None,
        "Size": f"{params.width}x{params.height}",
        "Model hash": facts.model_hash,
        "Model": facts.model_name,
        "VAE hash": facts.vae_hash,
        "VAE": facts.vae_name,
        "Variation seed": facts.variation_seed if varied else None,
        "Variation seed strength": params.variation_strength if varied else None,
        "Seed resize from": (
            f"{params.seed_resize_from_width}x{params.seed_resize_from_height}" if resized else None
        ),
        "Clip skip": _unless_default("clip_skip", params.clip_skip),
        "ENSD": _unless_default("ensd", params.ensd) if facts.uses_ensd else None,
        "Init image hash": facts.init_image_hash,
        "RNG": _unless_default("rng", params.rng),
        "Tiling": "True" if params.tiling else None,
        **_hires_values(params),
        **_img2img_values(params, facts),
        **_soft_inpainting_values(params, facts),
        "Conditional mask weight": _mask_weight(params, facts),
        "Refiner": params.refiner_checkpoint,
        "Refiner switch at": params.refiner_switch_at if params.refiner_checkpoint else None,
        "Emphasis": _unless_default("emphasis", params.emphasis),
        "Eta": _unless_default("eta", params.eta) if facts.uses_eta else None,
        "Eta DDIM": _unless_default("eta_ddim", params.eta_ddim) if facts.uses_eta_ddim else None,
    }
    for name in ("s_churn", "s_tmin", "s_tmax", "s_noise", "sigma_min", "sigma_max", "rho"):
        values[spec(name).infotext] = _unless_default(name, getattr(params, name))  # type: ignore[index]
    values.update(facts.extra)
    if facts.version:
        values["Version"] = facts.version
    return order_keys(values, EXTRA_ORDER)


def infotext_from_params(params: GenerationParams, facts: RunFacts) -> str:
    return join_infotext(params.prompt, params.negative_prompt, infotext_values(params, facts))


@dataclass
class ParsedParams:
    values: dict[str, Any]  # field name -> typed value
    info: dict[str, str]  # Model hash, Version, Lora hashes, ...
    unknown: dict[str, str]  # keys we do not know, kept verbatim

    def apply_to(self, base: GenerationParams) -> GenerationParams:
        return dataclasses.replace(base, **self.values)


def _by_infotext_key() -> dict[str, str]:
    mapping = {}
    for name, f in PARAMS.items():
        key = f.metadata["spec"].infotext
        if key and key not in SIZE_KEYS:
            mapping[key] = name
    return mapping


def convert(name: str, text: str) -> Any:
    """An infotext string as the field's type; ValueError names the field."""
    kind = value_type(name)
    try:
        if kind is bool:
            return text.strip().lower() in ("true", "1", "yes")
        if kind is int:
            return int(float(text)) if "." in text else int(text)
        if kind is float:
            return float(text)
    except ValueError as error:
        raise ValueError(f"{spec(name).infotext}: {text!r} is not a {kind.__name__}") from error
    return text


def split_legacy_sampler(sampler: str) -> tuple[str, str | None]:
    """ "DPM++ 2M Karras" -> ("DPM++ 2M", "Karras")."""
    for label in LEGACY_SCHEDULE_SUFFIXES:
        if sampler.casefold().endswith(" " + label.casefold()):
            return sampler[: -len(label) - 1].strip(), label
    return sampler, None


def params_from_infotext(text: str) -> ParsedParams:
    parsed = parse_infotext(text)
    values: dict[str, Any] = {"prompt": parsed.prompt, "negative_prompt": parsed.negative_prompt}
    info: dict[str, str] = {}
    unknown: dict[str, str] = {}
    by_key = _by_infotext_key()
    for key, raw in parsed.values.items():
        if key in SIZE_KEYS and (size := split_size(raw)):
            values.update(zip(SIZE_KEYS[key], size, strict=True))
        elif key in by_key and (reader := spec(by_key[key]).reader) is not None:
            values.update(reader(raw))
        elif key in by_key:
            try:
                values[by_key[key]] = convert(by_key[key], raw)
            except ValueError:
                unknown[key] = raw
        elif key in INFO_KEYS:
            info[key] = raw
        else:
            unknown[key] = raw
    _fill_a1111_defaults(values, parsed.values)
    _resolve_legacy_sampler(values, parsed.values)
    if "Hires upscale" in parsed.values or "Hires resize" in parsed.values:
        values["enable_hires"] = True
    return ParsedParams(values, info, unknown)


def _fill_a1111_defaults(values: dict[str, Any], present: Mapping[str, str]) -> None:
    """A key A1111 leaves out means its default (no `RNG` key means GPU noise)."""
    for name, f in PARAMS.items():
        field_spec = f.metadata["spec"]
        absent = field_spec.infotext and field_spec.infotext not in present
        has_default = field_spec.a1111_default is not UNSET_DEFAULT and field_spec.setting
        if absent and has_default and name not in values:
            values[name] = field_spec.a1111_default


def _resolve_legacy_sampler(values: dict[str, Any], present: Mapping[str, str]) -> None:
    if "sampler" in values and "Schedule type" not in present:
        sampler, schedule = split_legacy_sampler(values["sampler"])
        values["sampler"] = sampler
        if schedule:
            values["schedule"] = schedule
