"""A1111's schedule types, registered through `register_schedules`.

Names are A1111's labels ("Karras"), aliases its internal names ("karras"). Schedules
defined over the model's own timesteps need `model` (a `DiscreteSchedule`); "Automatic" is
not a schedule but the sampler's preferred one, resolved by the engine. The maths lives in
`sdtui.core.schedules`, imported on first use so listing plugins stays free of torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sdtui import hookimpl


@dataclass(frozen=True)
class Schedule:
    name: str
    function: str  # name in sdtui.core.schedules
    aliases: tuple[str, ...] = ()
    needs_model: bool = False
    uses_range: bool = True  # takes sigma_min / sigma_max
    default_rho: float | None = None
    options: tuple[str, ...] = field(default=())  # extra keyword options it understands

    def sigmas(self, steps: int, sigma_min: float, sigma_max: float, **options: Any):
        from sdtui.core import schedules

        if steps < 1:
            raise ValueError(f"{self.name} schedule needs at least 1 step, got {steps}")
        arguments: dict[str, Any] = {}
        if self.uses_range:
            arguments.update(sigma_min=sigma_min, sigma_max=sigma_max)
        if self.needs_model:
            model = options.get("model")
            if model is None:
                raise ValueError(f"{self.name} schedule needs the model's discrete sigmas")
            arguments["model"] = model
        if self.default_rho is not None:
            rho = options.get("rho")
            arguments["rho"] = rho if rho else self.default_rho
        arguments.update({name: options[name] for name in self.options if name in options})
        return getattr(schedules, self.function)(steps, **arguments)


SCHEDULES = (
    Schedule("Uniform", "uniform", ("uniform",), needs_model=True, uses_range=False),
    Schedule("Karras", "karras", ("karras",), default_rho=7.0),
    Schedule("Exponential", "exponential", ("exponential",)),
    Schedule("Polyexponential", "polyexponential", ("polyexponential",), default_rho=1.0),
    Schedule("SGM Uniform", "sgm_uniform", ("sgm_uniform", "SGMUniform"), needs_model=True),
    Schedule("KL Optimal", "kl_optimal", ("kl_optimal",)),
    Schedule(
        "Align Your Steps",
        "align_your_steps",
        ("align_your_steps",),
        uses_range=False,
        options=("sdxl",),
    ),
    Schedule("Simple", "simple", ("simple",), needs_model=True, uses_range=False),
    Schedule("Normal", "normal", ("normal",), needs_model=True),
    Schedule("DDIM", "ddim", ("ddim",), needs_model=True, uses_range=False),
    Schedule(
        "Beta",
        "beta",
        ("beta",),
        needs_model=True,
        uses_range=False,
        options=("beta_alpha", "beta_beta"),
    ),
)


@hookimpl
def register_schedules(register) -> None:
    for schedule in SCHEDULES:
        register(schedule)
