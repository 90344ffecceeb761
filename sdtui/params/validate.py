"""Validation and resolution of generation requests, derived from the schema.

`validate` collects every problem at once, each as a message a user can act on.
`resolve` turns unset fields (None) into concrete values from settings and draws random
seeds for -1, so what is written into the image is exactly what ran.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Collection, Mapping
from typing import Any

from sdtui.params.schema import PARAMS, GenerationParams, fields_of, spec, value_type

# sdtui's defaults for settings that supply parameter defaults (A1111's, except RNG: CPU
# noise gives the same image on every machine).
SETTING_DEFAULTS: dict[str, Any] = {
    "sd_model_checkpoint": None,
    "sd_vae": "Automatic",
    "CLIP_stop_at_last_layers": 1,
    "emphasis": "Original",
    "randn_source": "CPU",
    "eta_noise_seed_delta": 0,
    "eta_ancestral": 1.0,
    "eta_ddim": 0.0,
    "s_churn": 0.0,
    "s_tmin": 0.0,
    "s_tmax": 0.0,
    "s_noise": 1.0,
    "sigma_min": 0.0,
    "sigma_max": 0.0,
    "rho": 0.0,
    "tiling": False,
    "face_restoration": False,
    "face_restoration_model": "CodeFormer",
    "img2img_fix_steps": False,
    "initial_noise_multiplier": 1.0,
    "img2img_extra_noise": 0.0,
    "img2img_color_correction": False,
    "inpainting_mask_weight": 1.0,
}

SEED_LIMIT = 4294967294  # A1111 draws random seeds in [0, 4294967294)


class ParameterError(ValueError):
    """One or more parameters are invalid; `problems` lists each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _check_field(
    name: str, value: Any, choices: Collection[str] | None, schema: type = GenerationParams
) -> str | None:
    field_spec = spec(name, schema)
    if value is None:
        return None
    kind = value_type(name, schema)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return f"{field_spec.label} must be a {kind.__name__}, got {value!r}"
    if kind in (int, float):
        low, high = field_spec.minimum, field_spec.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{field_spec.label} must be between {low:g} and {high:g}, got {value!r}"
        if schema is GenerationParams and name in ("width", "height") and value % 8:
            return f"{field_spec.label} must be a multiple of 8, got {value}"
    allowed = choices if choices is not None else field_spec.choices
    if isinstance(allowed, tuple | list | set | frozenset) and kind is str and value not in allowed:
        return f"{field_spec.label} {value!r} is not one of: {', '.join(map(str, allowed))}"
    return None


def validate(params: Any, choices: Mapping[str, Collection[str]] | None = None) -> None:
    """Raise ParameterError listing every invalid field of `params` (GenerationParams, or
    another schema dataclass). `choices` maps a field name to its allowed values where they
    come from registries (samplers, schedules, upscalers, ...)."""
    problems = []
    schema = type(params)
    for name in fields_of(schema):
        problem = _check_field(name, getattr(params, name), (choices or {}).get(name), schema)
        if problem:
            problems.append(problem)
    if problems:
        raise ParameterError(problems)


def resolve_seed(seed: int, rng: random.Random | None = None) -> int:
    if seed is None or seed == -1:
        return (rng or random).randrange(SEED_LIMIT)
    return int(seed)


def resolve(
    params: GenerationParams,
    settings: Mapping[str, Any] | None = None,
    rng: random.Random | None = None,
) -> GenerationParams:
    """Unset fields take their setting's value; -1 seeds become random seeds (a -1 variation
    seed only where a variation strength makes it matter, else 0)."""
    merged = {**SETTING_DEFAULTS, **(settings or {})}
    changes: dict[str, Any] = {}
    for name in PARAMS:
        setting = spec(name).setting
        if getattr(params, name) is None and setting is not None:
            changes[name] = merged.get(setting)
    changes["seed"] = resolve_seed(params.seed, rng)
    if params.variation_strength or params.variation_seed >= 0:
        changes["variation_seed"] = resolve_seed(params.variation_seed, rng)
    else:  # unused without a strength: a fixed value keeps the saved parameters reproducible
        changes["variation_seed"] = 0
    return dataclasses.replace(params, **changes)
