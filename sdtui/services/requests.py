"""Turn a txt2img or img2img request into the parameters that run: canonical names, checked,
resolved.

The CLI and the TUI both call `prepare_txt2img`, so a bad sampler name or size reads the
same everywhere ("Sampling method 'Eular' is not one of: ...").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sdtui.params.latent_modes import LATENT_MODES
from sdtui.params.schema import GenerationParams
from sdtui.params.validate import resolve, validate


def registry_choices(host: Any) -> dict[str, list[str]]:
    """Allowed values of the fields whose choices come from the plugin registries."""
    schedules = ["Automatic", *host.schedules.names()]
    samplers = list(host.samplers.names())
    return {
        "sampler": samplers,
        "schedule": schedules,
        "hires_upscaler": [*LATENT_MODES, *host.upscalers.names()],
        "hires_sampler": samplers,
        "hires_schedule": schedules,
        "face_restoration_model": list(host.face_restorers.names()),
    }


def canonical_sampler(params: GenerationParams, host: Any, legacy_schedule: bool) -> Any:
    """A1111 names, aliases and legacy "DPM++ 2M Karras" names -> the sampler's own name.
    `legacy_schedule`: let a legacy name's schedule part set the schedule type."""
    from sdtui.params.codec import split_legacy_sampler

    sampler, schedule = params.sampler, None
    if sampler not in host.samplers:
        sampler, schedule = split_legacy_sampler(sampler)
        if sampler not in host.samplers:
            sampler, schedule = params.sampler, None  # let the registry's error list them
    changes = {"sampler": host.samplers.resolve_name(sampler)}
    if schedule and legacy_schedule:
        changes["schedule"] = schedule
    return dataclasses.replace(params, **changes)


def prepare_txt2img(
    params: GenerationParams,
    host: Any,
    *,
    legacy_schedule: bool = True,
    settings: Mapping[str, Any] | None = None,
) -> GenerationParams:
    """Canonical sampler name, every field checked (ParameterError lists all problems),
    unset fields from settings and -1 seeds drawn."""
    params = canonical_sampler(params, host, legacy_schedule)
    choices = registry_choices(host)
    if not params.hires_sampler:
        choices.pop("hires_sampler")
    validate(params, choices)
    return resolve(params, settings)


def prepare_img2img(
    params: GenerationParams,
    host: Any,
    *,
    legacy_schedule: bool = True,
    settings: Mapping[str, Any] | None = None,
) -> GenerationParams:
    """`prepare_txt2img` for img2img: hires fix does not apply (an infotext pasted from a
    txt2img image may turn it on)."""
    params = dataclasses.replace(params, enable_hires=False)
    return prepare_txt2img(params, host, legacy_schedule=legacy_schedule, settings=settings)
