"""The sigmas a sampler runs over, and classifier-free guidance around the denoiser.

`plan_sigmas` follows A1111's KDiffusionSampler / CompVisSampler: "Automatic" takes the
sampler's preferred schedule (or the model's own uniform one when it has none, in which case
the infotext keeps "Automatic"); samplers that discard the penultimate sigma build one step
more and drop it; the sigma range and rho overrides apply only when they differ from the
model's / schedule's; timestep samplers (DDIM, PLMS, UniPC, DDIM CFG++) run over A1111's
timesteps `1, 1 + k, 1 + 2k, ...` (k = 1000 // steps), from the top down to timestep 0
(UniPC) or, as A1111's DDIM and PLMS loops do, to timestep 1 in `steps - 1` model calls.

`CFGDenoiser` evaluates the conditional and unconditional predictions in one batch and
combines them as A1111 does, including AND sub-prompts with their weights. It counts model
calls, which is the "step" A1111's prompt editing refers to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from sdtui.core.discrete import DiscreteSchedule
from sdtui.engine.edit_model import edit_denoised, uses_edit_guidance

AUTOMATIC = "Automatic"
UNIFORM = "Uniform"


@dataclass(frozen=True)
class SigmaPlan:
    sigmas: torch.Tensor
    schedule_label: str  # what the infotext's "Schedule type" says
    noise_scale: float  # the initial noise is multiplied by this
    extra: dict[str, Any] = field(default_factory=dict)  # infotext keys the plan adds


def timestep_sigmas(steps: int, model: DiscreteSchedule, to_zero: bool = True) -> torch.Tensor:
    """A1111's timesteps `1, 1 + k, ...` (k = 1000 // steps) as sigmas from the top, then
    timestep 0's sigma (`to_zero`: UniPC, which integrates down to t = 1/1000). A1111's
    DDIM and PLMS loops stop one timestep short: `steps - 1` model calls, the last one
    landing on timestep 1, which is what A1111 decodes (`to_zero` False)."""
    stride = max(model.timesteps // steps, 1)
    timesteps = torch.clip(torch.arange(0, model.timesteps, stride) + 1, 0, model.timesteps - 1)
    sigmas = model.sigmas[timesteps].flip(0)
    if not to_zero:
        return sigmas
    return torch.cat([sigmas, sigmas.new_tensor([model.sigma_min])])


def stops_at_timestep_1(sampler: Any) -> bool:
    """A1111's DDIM-style loop (DDIM, DDIM CFG++, PLMS): `range(len(timesteps) - 1)`."""
    return bool(getattr(sampler, "stops_at_timestep_1", False))


def plan_sigmas(
    sampler: Any,
    schedule_name: str,
    steps: int,
    model: DiscreteSchedule,
    schedules: Any,
    *,
    sigma_min: float = 0.0,
    sigma_max: float = 0.0,
    rho: float = 0.0,
    sdxl: bool = False,
) -> SigmaPlan:
    """Sigmas for `steps` steps of `sampler` (registries' objects) on `model`'s timesteps."""
    if getattr(sampler, "timestep_sampler", False):
        sigmas = timestep_sigmas(steps, model, to_zero=not stops_at_timestep_1(sampler))
        return SigmaPlan(sigmas, schedule_name, float((1 + sigmas[0] ** 2) ** 0.5))
    discard = bool(getattr(sampler, "discard_penultimate_sigma", False))
    count = steps + 1 if discard else steps
    name = schedule_name
    if name == AUTOMATIC:
        name = getattr(sampler, "default_schedule", None) or UNIFORM
    schedule = schedules.get(name)
    extra: dict[str, Any] = {}
    low, high = model.sigma_min, model.sigma_max
    if sigma_min and sigma_min != low:
        low = extra["Schedule min sigma"] = sigma_min
    if sigma_max and sigma_max != high:
        high = extra["Schedule max sigma"] = sigma_max
    options: dict[str, Any] = {"model": model, "sdxl": sdxl}
    default_rho = getattr(schedule, "default_rho", None)
    if default_rho is not None and rho and rho != default_rho:
        options["rho"] = extra["Schedule rho"] = rho
    sigmas = schedule.sigmas(count, low, high, **options)
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    automatic_uniform = schedule_name == AUTOMATIC and name == UNIFORM
    label = AUTOMATIC if automatic_uniform else schedule.name
    return SigmaPlan(sigmas, label, float(sigmas[0]), extra)


Conditioner = Callable[[int], tuple[list[list[tuple[int, float]]], Any, Any]]


class CFGDenoiser:
    """denoised = uncond + sum_i weight_i * cfg_scale * (cond_i - uncond), per image.

    `conditions(step)` returns, for the current model call: `groups` (per image, the
    (row, weight) pairs of its AND sub-prompts in the cond batch), the cond batch and the
    uncond batch, each a `Conditioning`-like object with `context` (and `pooled`).
    `extra_inputs(images, is_uncond)` adds per-row model inputs (inpainting image
    conditioning, SDXL size conditioning) given each row's image index and kind.
    `image_cfg_scale`: set for an instruct-pix2pix model only; away from 1 it runs A1111's
    three-branch guidance (`sdtui.engine.edit_model`)."""

    def __init__(
        self,
        denoiser: Callable[..., torch.Tensor],
        conditions: Conditioner,
        cfg_scale: float,
        extra_inputs: Callable[[torch.Tensor, torch.Tensor], dict[str, Any]] | None = None,
    ) -> None:
        self.denoiser = denoiser
        self.conditions = conditions
        self.cfg_scale = cfg_scale
        self.extra_inputs = extra_inputs
        self.step = 0
        self.last_uncond_denoised: torch.Tensor | None = None
        self.image_cfg_scale: float | None = None

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        groups, cond, uncond = self.conditions(self.step)
        sigma = torch.as_tensor(sigma, device=x.device, dtype=x.dtype)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        image_cfg_scale = self.image_cfg_scale
        if image_cfg_scale is not None and uses_edit_guidance(image_cfg_scale):
            denoised, self.last_uncond_denoised = edit_denoised(
                self.denoiser, self._extra, x, sigma, groups, cond, uncond,
                self.cfg_scale, image_cfg_scale,
            )  # fmt: skip
            self.step += 1
            return denoised
        rows = [index for index, group in enumerate(groups) for _ in group]
        images = torch.tensor(rows + list(range(len(x))))
        is_uncond = torch.arange(len(images)) >= len(rows)
        x_in, sigma_in = torch.cat([x[rows], x]), torch.cat([sigma[rows], sigma])
        if cond.context.shape[1] == uncond.context.shape[1]:
            inputs = {**concat_conditions(cond, uncond), **self._extra(images, is_uncond)}
            out = self.denoiser(x_in, sigma_in, **inputs)
        else:  # different token lengths: two UNet batches, as A1111 does
            split = len(rows)
            first = {**condition_inputs(cond), **self._extra(images[:split], is_uncond[:split])}
            second = {**condition_inputs(uncond), **self._extra(images[split:], is_uncond[split:])}
            out = torch.cat(
                [
                    self.denoiser(x_in[:split], sigma_in[:split], **first),
                    self.denoiser(x_in[split:], sigma_in[split:], **second),
                ]
            )
        uncond_out = out[len(rows) :]
        denoised = uncond_out.clone()
        for image, group in enumerate(groups):
            for row, weight in group:
                denoised[image] += (out[row] - uncond_out[image]) * (weight * self.cfg_scale)
        self.last_uncond_denoised = uncond_out
        self.step += 1
        return denoised

    def _extra(self, images: torch.Tensor, is_uncond: torch.Tensor) -> dict[str, Any]:
        return self.extra_inputs(images, is_uncond) if self.extra_inputs else {}


def condition_inputs(batch: Any) -> dict[str, Any]:
    inputs = {"context": batch.context}
    if getattr(batch, "pooled", None) is not None:
        inputs["pooled"] = batch.pooled
    return inputs


def concat_conditions(cond: Any, uncond: Any) -> dict[str, Any]:
    """The denoiser's keyword inputs for the cond rows followed by the uncond rows."""
    inputs = {"context": torch.cat([cond.context, uncond.context])}
    if getattr(cond, "pooled", None) is not None:
        inputs["pooled"] = torch.cat([cond.pooled, uncond.pooled])
    return inputs


def second_order_calls(sampler: Any, steps: int) -> int:
    """The number of model calls A1111 plans prompt editing over (2 per step for
    second-order samplers)."""
    return steps * 2 if getattr(sampler, "second_order", False) else steps
