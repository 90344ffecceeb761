"""A1111's refiner: the base model samples until the noise level passes "Refiner switch at",
then the refiner checkpoint continues the same sampling.

The rule (A1111's `apply_refiner`, with its default setting "switch by noise level"): at
every model call the current sigma is matched to the nearest of the model's 1000 discrete
sigmas, and its timestep t says how much of the denoising is done, (999 - t) / 1000. The
first call where that reaches `switch_at` loads the refiner, encodes the prompts again with
the refiner's text encoders, and is itself evaluated by the refiner; the sampler keeps its
state (a multistep sampler's history, the call count prompt editing uses) and runs the
remaining sigmas. The switch therefore follows the noise level, not the step index: a hires
pass at denoising strength 0.7 starts about 0.3 done. At 1.0 the refiner never runs (t >= 0
gives at most 0.999), and a refiner that is the model already running does nothing.

With hires fix, A1111's setting "Hires fix: which pass to enable refiner for" picks the
pass (default: the second); the infotext says "Hires refiner" when it is not the default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from sdtui.core.discrete import DiscreteSchedule
from sdtui.engine.sampling import CFGDenoiser

FIRST_PASS = "first pass"
SECOND_PASS = "second pass"
BOTH_PASSES = "both passes"
HIRES_REFINER_PASSES = (FIRST_PASS, SECOND_PASS, BOTH_PASSES)
DEFAULT_HIRES_REFINER_PASS = SECOND_PASS  # A1111's hires_fix_refiner_pass


def completed_ratio(sigma: Any, schedule: DiscreteSchedule) -> float:
    """How much of the denoising is done at `sigma` (the largest, for a batch of sigmas):
    (last timestep - t) / timesteps, t the timestep whose sigma is nearest."""
    largest = torch.as_tensor(sigma, dtype=torch.float32).detach().cpu().max()
    timestep = int(torch.argmin(torch.abs(schedule.sigmas - largest)))
    return (schedule.timesteps - 1 - timestep) / schedule.timesteps


def refiner_due(sigma: Any, switch_at: float, schedule: DiscreteSchedule) -> bool:
    """True once the refiner takes over (A1111: not while the ratio is below `switch_at`)."""
    return completed_ratio(sigma, schedule) >= switch_at


def refiner_in_pass(enable_hires: bool, hires_pass: bool, which: str) -> bool:
    """Whether the refiner may switch in during this pass. Without hires fix: the one
    pass; with it: as `which` (one of HIRES_REFINER_PASSES) says."""
    if which not in HIRES_REFINER_PASSES:
        raise ValueError(f"hires refiner pass {which!r} is not one of: {HIRES_REFINER_PASSES}")
    if not enable_hires:
        return not hires_pass
    if hires_pass:
        return which in (SECOND_PASS, BOTH_PASSES)
    return which in (FIRST_PASS, BOTH_PASSES)


class RefinerCFGDenoiser(CFGDenoiser):
    """A CFGDenoiser that calls `on_switch(self)` before the first call at which the
    refiner is due; `on_switch` replaces `denoiser`, `conditions` and `extra_inputs` with
    the refiner's (or leaves them, when the refiner is the model already running)."""

    def __init__(
        self,
        denoiser: Callable[..., torch.Tensor],
        conditions: Any,
        cfg_scale: float,
        extra_inputs: Any = None,
        *,
        switch_at: float,
        schedule: DiscreteSchedule,
        on_switch: Callable[[RefinerCFGDenoiser], None],
    ) -> None:
        super().__init__(denoiser, conditions, cfg_scale, extra_inputs)
        self.switch_at = switch_at
        self.schedule = schedule
        self.on_switch = on_switch
        self.switched_at_call: int | None = None  # the model call the refiner began with

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.switched_at_call is None and refiner_due(sigma, self.switch_at, self.schedule):
            self.switched_at_call = self.step
            self.on_switch(self)
        return super().__call__(x, sigma)
