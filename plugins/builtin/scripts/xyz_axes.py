"""The axes of the X/Y/Z plot: A1111's axis types over sdtui's parameters.

Each `Axis` says how its values are read (int, float, str or permutations, in A1111's
value syntax, `sdtui.params.axis_values`), how a value changes a request (`apply`), how it
is labelled on the grid, in which tabs it exists, how costly a change is (the costliest
axis is the outermost loop: a checkpoint is switched as rarely as possible), and how its
values are checked and spelt canonically before anything runs (`confirm`).

Left out (no such parameter in sdtui yet): Negative Guidance minimum
sigma, Beta schedule alpha/beta, UniPC Order, Token merging
ratio (and high-res), Always discard next-to-last sigma, SGM noise multiplier, FP8 mode.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sdtui.params.axis_values import AxisValueError, parse_values, split_csv
from sdtui.params.schema import GenerationParams
from sdtui.services.script_options import MODES, ScriptError

PERMUTATIONS = "permutations"  # the type of Prompt order values: every order of the items

Apply = Callable[[GenerationParams, Any, Sequence[Any]], GenerationParams]
Confirm = Callable[[Any, list[Any]], list[Any]]  # (request, values) -> canonical values


def key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


@dataclass(frozen=True)
class Axis:
    label: str
    type: Any  # int, float, str or PERMUTATIONS
    apply: Apply
    format: Callable[[Axis, Any], str] = lambda axis, x: f"{axis.label}: {_shown(x)}"
    modes: tuple[str, ...] = MODES
    cost: float = 0.0
    confirm: Confirm | None = None

    def values(self, text: str, request: Any) -> list[Any]:
        """The values `text` lists, parsed and confirmed (ScriptError says what is wrong)."""
        if self.label == "Nothing":
            return [0]
        try:
            if self.type is PERMUTATIONS:
                values: list[Any] = list(itertools.permutations(split_csv(text)))
            else:
                values = parse_values(text, self.type)
        except AxisValueError as error:
            raise ScriptError(str(error)) from None
        if not values:
            raise ScriptError(f"no {self.label} values given")
        return self.confirm(request, values) if self.confirm is not None else values

    def label_of(self, value: Any) -> str:
        return self.format(self, value)


def _shown(value: Any) -> Any:
    return round(value, 8) if isinstance(value, float) else value


def plain(axis: Axis, value: Any) -> str:
    return str(_shown(value))


def set_field(name: str) -> Apply:
    return lambda params, value, _: dataclasses.replace(params, **{name: value})


def nothing(params: GenerationParams, value: Any, values: Sequence[Any]) -> GenerationParams:
    return params


def prompt_sr(params: GenerationParams, value: str, values: Sequence[str]) -> GenerationParams:
    """A1111's Prompt S/R: the first value is searched for and replaced by this one."""
    search = values[0]
    return dataclasses.replace(
        params,
        prompt=params.prompt.replace(search, value),
        negative_prompt=params.negative_prompt.replace(search, value),
        hires_prompt=params.hires_prompt.replace(search, value),
        hires_negative_prompt=params.hires_negative_prompt.replace(search, value),
    )


def prompt_order(
    params: GenerationParams, order: Sequence[str], values: Sequence[Any]
) -> GenerationParams:
    """A1111's Prompt order: the tokens, found in the prompt, are put back in this order
    (a token the prompt lacks, e.g. after a Prompt S/R, is left out; A1111 garbles it)."""
    prompt = params.prompt
    order = [token for token in order if token in prompt]
    found = sorted((prompt.find(token), token) for token in order)
    parts = []
    for _, token in found:
        at = prompt.find(token)
        parts.append(prompt[:at])
        prompt = prompt[at + len(token) :]
    rebuilt = "".join(part + order[index] for index, part in enumerate(parts))
    return dataclasses.replace(params, prompt=rebuilt + prompt)


def size(params: GenerationParams, value: str, values: Sequence[str]) -> GenerationParams:
    width, height = _size(value)
    return dataclasses.replace(params, width=width, height=height)


def _size(value: str) -> tuple[int, int]:
    width, _, height = value.partition("x")
    try:
        return int(width.strip()), int(height.strip())
    except ValueError:
        raise ScriptError(f"Size {value!r} is not WIDTHxHEIGHT, e.g. 512x768") from None


YES = ("true", "yes", "y", "1")


def face_restore(params: GenerationParams, value: str, values: Sequence[str]) -> GenerationParams:
    """A1111's Face restore axis: a restorer's name turns "Restore faces" on with it;
    true / yes / y / 1 turn it on with the chosen restorer, anything else off."""
    if value in FACE_SWITCHES:
        return dataclasses.replace(params, restore_faces=value.casefold() in YES)
    return dataclasses.replace(params, restore_faces=True, face_restoration_model=value)


FACE_SWITCHES = ("True", "False")


def add_styles(params: GenerationParams, value: str, values: Sequence[str]) -> GenerationParams:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    return dataclasses.replace(params, styles=(*params.styles, *names))


# -- confirming values ---------------------------------------------------------------------


def _canonical(values: list[Any], known: Sequence[str], what: str) -> list[str]:
    by_key = {name.casefold(): name for name in known}
    unknown = [value for value in values if str(value).casefold() not in by_key]
    if unknown:
        raise ScriptError(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")
    return [by_key[str(value).casefold()] for value in values]


def from_registry(kind: str, what: str, extra: Sequence[str] = ()) -> Confirm:
    def confirm(request: Any, values: list[Any]) -> list[Any]:
        registry = getattr(request.host, kind)
        names = [*extra, *registry.names()]
        resolved = []
        for value in values:
            if value in registry and str(value).casefold() not in map(str.casefold, extra):
                resolved.append(registry.resolve_name(value))  # aliases such as k_euler_a
            else:
                resolved.extend(_canonical([value], names, what))
        return resolved

    return confirm


def fixed(choices: Sequence[str], what: str) -> Confirm:
    return lambda request, values: _canonical(values, choices, what)


def confirm_upscalers(request: Any, values: list[Any]) -> list[Any]:
    from sdtui.params.latent_modes import LATENT_MODES

    names = [*LATENT_MODES, *request.host.upscalers.names()]
    return _canonical(values, names, "hires upscaler")


def confirm_checkpoints(request: Any, values: list[Any], none: bool = False) -> list[Any]:
    from sdtui.models.discovery import ModelNotFoundError
    from sdtui.services.generation import choose_checkpoint

    confirmed = []
    for value in values:
        if none and str(value).casefold() in ("none", ""):
            confirmed.append(None)
            continue
        try:
            choose_checkpoint(request.dirs, value)
        except ModelNotFoundError as error:
            raise ScriptError(str(error)) from None
        confirmed.append(value)
    return confirmed


def confirm_vaes(request: Any, values: list[Any]) -> list[Any]:
    from sdtui.models.discovery import vae_choices

    values = ["Automatic" if str(v).casefold() == "auto" else v for v in values]
    return _canonical(values, vae_choices(request.dirs), "VAE")


def confirm_styles(request: Any, values: list[Any]) -> list[Any]:
    from sdtui.services.styles import StyleLibrary

    known = list(StyleLibrary.load(request.dirs.styles).styles)
    for value in values:
        names = [name.strip() for name in value.split(",") if name.strip()]
        _canonical(names, known, "style")
    return values


def confirm_search(request: Any, values: list[Any]) -> list[Any]:
    params = request.params
    if values[0] not in params.prompt and values[0] not in params.negative_prompt:
        raise ScriptError(
            f"Prompt S/R did not find {values[0]!r} in the prompt or the negative prompt"
        )
    return values


def confirm_tokens(request: Any, values: list[Any]) -> list[Any]:
    missing = [token for token in values[0] if token not in request.params.prompt]
    if missing:
        raise ScriptError(f"Prompt order did not find {missing[0]!r} in the prompt")
    return values


def confirm_face_restore(request: Any, values: list[Any]) -> list[Any]:
    """Restorer names as registered; true/yes/y/1 -> "True", false/no/n/0/none -> "False"."""
    confirmed = []
    for value in values:
        word = str(value).strip().casefold()
        if word in YES or word in ("false", "no", "n", "0", "none", "off"):
            confirmed.append("True" if word in YES else "False")
        else:
            confirmed.extend(from_registry("face_restorers", "face restorer")(request, [value]))
    return confirmed


def confirm_sizes(request: Any, values: list[Any]) -> list[Any]:
    for value in values:
        _size(value)
    return values


TXT2IMG = ("txt2img",)
IMG2IMG = ("img2img",)

AXES: tuple[Axis, ...] = (
    Axis("Nothing", str, nothing, format=lambda axis, x: ""),
    Axis("Seed", int, set_field("seed")),
    Axis("Var. seed", int, set_field("variation_seed")),
    Axis("Var. strength", float, set_field("variation_strength")),
    Axis("Steps", int, set_field("steps")),
    Axis("Hires steps", int, set_field("hires_steps"), modes=TXT2IMG),
    Axis("CFG Scale", float, set_field("cfg_scale")),
    Axis("Image CFG Scale", float, set_field("image_cfg_scale"), modes=IMG2IMG),
    Axis("Prompt S/R", str, prompt_sr, format=plain, confirm=confirm_search),
    Axis(
        "Prompt order",
        PERMUTATIONS,
        prompt_order,
        format=lambda axis, x: ", ".join(x),
        confirm=confirm_tokens,
    ),
    Axis(
        "Sampler",
        str,
        set_field("sampler"),
        format=plain,
        confirm=from_registry("samplers", "sampler"),
    ),
    Axis(
        "Hires sampler",
        str,
        set_field("hires_sampler"),
        modes=TXT2IMG,
        confirm=from_registry("samplers", "sampler"),
    ),
    Axis(
        "Checkpoint name",
        str,
        set_field("model"),
        format=lambda axis, x: os.path.basename(x),
        cost=1.0,
        confirm=confirm_checkpoints,
    ),
    Axis("Sigma Churn", float, set_field("s_churn")),
    Axis("Sigma min", float, set_field("s_tmin")),
    Axis("Sigma max", float, set_field("s_tmax")),
    Axis("Sigma noise", float, set_field("s_noise")),
    Axis(
        "Schedule type",
        str,
        set_field("schedule"),
        confirm=from_registry("schedules", "schedule type", ("Automatic",)),
    ),
    Axis("Schedule min sigma", float, set_field("sigma_min")),
    Axis("Schedule max sigma", float, set_field("sigma_max")),
    Axis("Schedule rho", float, set_field("rho")),
    Axis("Eta", float, set_field("eta")),
    Axis("Clip skip", int, set_field("clip_skip")),
    Axis("Denoising", float, set_field("denoising_strength")),
    Axis("Initial noise multiplier", float, set_field("initial_noise_multiplier")),
    Axis("Extra noise", float, set_field("img2img_extra_noise")),
    Axis(
        "Hires upscaler",
        str,
        set_field("hires_upscaler"),
        modes=TXT2IMG,
        confirm=confirm_upscalers,
    ),
    Axis("Cond. Image Mask Weight", float, set_field("inpainting_mask_weight"), modes=IMG2IMG),
    Axis("VAE", str, set_field("vae"), cost=0.7, confirm=confirm_vaes),
    Axis("Styles", str, add_styles, confirm=confirm_styles),
    Axis("Face restore", str, face_restore, confirm=confirm_face_restore),
    Axis(
        "Refiner checkpoint",
        str,
        set_field("refiner_checkpoint"),
        format=lambda axis, x: os.path.basename(x or "None"),
        cost=1.0,
        confirm=lambda request, values: confirm_checkpoints(request, values, none=True),
    ),
    Axis("Refiner switch at", float, set_field("refiner_switch_at")),
    Axis("RNG source", str, set_field("rng"), confirm=fixed(("GPU", "CPU", "NV"), "RNG source")),
    Axis("Size", str, size, confirm=confirm_sizes),
)

AXIS_LABELS: tuple[str, ...] = tuple(axis.label for axis in AXES)


def find_axis(label: str, mode: str) -> Axis:
    """The axis called `label` (any case and punctuation) that exists in `mode`."""
    for axis in AXES:
        if key(axis.label) == key(label):
            if mode not in axis.modes:
                raise ScriptError(f"the {axis.label} axis is for {', '.join(axis.modes)} only")
            return axis
    raise ScriptError(f"unknown axis type {label!r}; known: {', '.join(AXIS_LABELS)}")
