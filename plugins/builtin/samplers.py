"""A1111's samplers, registered through `register_samplers`.

Names are A1111's labels ("DPM++ 2M"), aliases its internal names ("k_dpmpp_2m"). The maths
lives in `sdtui.core.samplers`, imported on first `sample()` so listing plugins stays free
of torch. Each sampler also says what A1111 does around it:

- `default_schedule`: the schedule "Automatic" resolves to ("Karras", "Exponential", "DDIM"
  for DDIM / DDIM CFG++ / PLMS, None for the model's own "Uniform" schedule).
- `discard_penultimate_sigma`: drop the next-to-last sigma (schedule built for steps + 1).
  True for DPM2, DPM2 a and DPM++ 3M SDE, as in A1111's sampler table.
- `stochastic`: may draw noise (DDIM and DDIM CFG++ only when eta > 0); `uses_ensd`: A1111
  applies the eta noise seed delta (Euler a, DPM2 a, DPM++ 2S a, DPM fast, DPM adaptive);
  `brownian_noise`: A1111 draws its noise from a Brownian tree seeded by the image seeds
  (the SDE samplers).
- `default_eta`: eta when the request leaves it unset (A1111's "eta_ancestral" 1.0 for
  k-diffusion samplers, "eta_ddim" 0 for DDIM).
- `timestep_sampler`: A1111 runs it over the model's timesteps from unit-variance noise
  (x = noise * sqrt(1 + sigma_max^2)) down to timestep 0; see sdtui.core.samplers.timestep.
  `stops_at_timestep_1`: A1111's DDIM / PLMS loop (`range(len(timesteps) - 1)`) makes
  `steps - 1` model calls and ends at timestep 1 (sdtui.engine.sampling.timestep_sigmas).

`sample(model, x, sigmas, **options)`: `model(x, sigma[batch]) -> denoised`, x = noise *
sigmas[0] (see above for timestep samplers). Options:

- `callback(StepInfo)` after every step (step, total, x, denoised, sigma, sigma_next); what
  it raises propagates (interrupt).
- `noise_sampler(sigma, sigma_next) -> noise like x`. When absent: a Brownian tree for the
  SDE samplers, else a torch generator; both seeded by `seed` (an int, or one int per image
  for per-image noise; None = random).
- `eta`, `s_churn`, `s_tmin`, `s_tmax`, `s_noise`, and per sampler: UniPC `order`,
  `variant` ("bh1"/"bh2"), `lower_order_final`; LMS `order`; Restart `restart_list`
  ({sigma: (steps + 1, times, sigma_max)}); DPM adaptive `order`, `rtol`, `atol`, `h_init`,
  ...; DPM++ 2M SDE `solver_type` is fixed by the entry ("DPM++ 2M SDE Heun" is "heun").
- DDIM CFG++ needs `model.last_uncond_denoised` (the unconditional prediction of the latest
  call), set by the engine's CFG denoiser, and A1111 scales its CFG by
  `cfg_scale_multiplier` (1 / 12.5).

Each sampler gets the options its function takes. An option another sampler understands
(e.g. `eta` given to Euler) is ignored, so the engine can pass all sampler settings; an
option no sampler understands is a TypeError that lists the known ones. `None` values mean
the default (`eta=None` is `default_eta`); `s_tmax` of 0 means infinity.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from sdtui import hookimpl

COMMON_OPTIONS = ("seed",)  # accepted by every sampler (seeds the default noise)


@dataclass(frozen=True)
class Sampler:
    name: str
    function: str  # name in sdtui.core.samplers
    aliases: tuple[str, ...] = ()
    default_schedule: str | None = None
    discard_penultimate_sigma: bool = False
    stochastic: bool = False
    uses_ensd: bool = False
    brownian_noise: bool = False
    second_order: bool = False
    timestep_sampler: bool = False
    stops_at_timestep_1: bool = False  # A1111's DDIM/PLMS loop: steps - 1 model calls
    default_eta: float | None = None
    cfg_scale_multiplier: float = 1.0  # the engine multiplies the CFG scale by this
    fixed: tuple[tuple[str, Any], ...] = ()  # options this entry always passes

    def _function(self):
        from sdtui.core import samplers

        return getattr(samplers, self.function)

    def function_options(self) -> set[str]:
        return set(list(inspect.signature(self._function()).parameters)[3:])

    def accepted_options(self) -> set[str]:
        return self.function_options() - {name for name, _ in self.fixed}

    def sample(self, model, x, sigmas, **options: Any):
        unknown = set(options) - known_options() - set(COMMON_OPTIONS)
        if unknown:
            known = ", ".join(sorted(known_options() | set(COMMON_OPTIONS)))
            raise TypeError(
                f"sampler {self.name!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {known}"
            )
        accepted = self.accepted_options()
        arguments = {k: v for k, v in options.items() if k in accepted and v is not None}
        if "eta" in accepted and options.get("eta") is None and self.default_eta is not None:
            arguments["eta"] = self.default_eta
        if "noise_sampler" in accepted and options.get("noise_sampler") is None:
            arguments["noise_sampler"] = self._default_noise(x, sigmas, options.get("seed"))
        arguments.update(self.fixed)
        return self._function()(model, x, sigmas, **arguments)

    def _default_noise(self, x, sigmas, seed):
        import torch

        from sdtui.core.samplers import brownian_noise_sampler

        if self.brownian_noise:
            return brownian_noise_sampler(x, sigmas, seed)
        per_image = seed is not None and not isinstance(seed, int)
        seeds = list(seed) if per_image else [seed]
        generators = [torch.Generator() for _ in seeds]
        for generator, value in zip(generators, seeds, strict=True):
            if value is None:
                generator.seed()
            else:
                generator.manual_seed(int(value))
        shape = x.shape[1:] if per_image else x.shape

        def noise_sampler(sigma, sigma_next):
            draws = [torch.randn(shape, generator=g, dtype=x.dtype) for g in generators]
            return (torch.stack(draws) if per_image else draws[0]).to(x.device)

        return noise_sampler


def known_options() -> set[str]:
    return set().union(*(sampler.function_options() for sampler in SAMPLERS))


K = dict(default_eta=1.0)
SAMPLERS = (
    Sampler("DPM++ 2M", "sample_dpmpp_2m", ("k_dpmpp_2m",), "Karras"),
    Sampler(
        "DPM++ SDE",
        "sample_dpmpp_sde",
        ("k_dpmpp_sde",),
        "Karras",
        stochastic=True,
        brownian_noise=True,
        second_order=True,
        **K,
    ),
    Sampler(
        "DPM++ 2M SDE",
        "sample_dpmpp_2m_sde",
        ("k_dpmpp_2m_sde",),
        "Exponential",
        stochastic=True,
        brownian_noise=True,
        fixed=(("solver_type", "midpoint"),),
        **K,
    ),
    Sampler(
        "DPM++ 2M SDE Heun",
        "sample_dpmpp_2m_sde",
        ("k_dpmpp_2m_sde_heun",),
        "Exponential",
        stochastic=True,
        brownian_noise=True,
        fixed=(("solver_type", "heun"),),
        **K,
    ),
    Sampler(
        "DPM++ 2S a",
        "sample_dpmpp_2s_ancestral",
        ("k_dpmpp_2s_a",),
        "Karras",
        stochastic=True,
        uses_ensd=True,
        second_order=True,
        **K,
    ),
    Sampler(
        "DPM++ 3M SDE",
        "sample_dpmpp_3m_sde",
        ("k_dpmpp_3m_sde",),
        "Exponential",
        discard_penultimate_sigma=True,
        stochastic=True,
        brownian_noise=True,
        **K,
    ),
    Sampler(
        "Euler a",
        "sample_euler_ancestral",
        ("k_euler_a", "k_euler_ancestral"),
        stochastic=True,
        uses_ensd=True,
        **K,
    ),
    Sampler("Euler", "sample_euler", ("k_euler",)),
    Sampler("LMS", "sample_lms", ("k_lms",)),
    Sampler("Heun", "sample_heun", ("k_heun",), second_order=True),
    Sampler(
        "DPM2",
        "sample_dpm_2",
        ("k_dpm_2",),
        "Karras",
        discard_penultimate_sigma=True,
        second_order=True,
    ),
    Sampler(
        "DPM2 a",
        "sample_dpm_2_ancestral",
        ("k_dpm_2_a",),
        "Karras",
        discard_penultimate_sigma=True,
        stochastic=True,
        uses_ensd=True,
        second_order=True,
        **K,
    ),
    Sampler("DPM fast", "sample_dpm_fast", ("k_dpm_fast",), stochastic=True, uses_ensd=True, **K),
    Sampler(
        "DPM adaptive",
        "sample_dpm_adaptive",
        ("k_dpm_ad",),
        stochastic=True,
        uses_ensd=True,
        **K,
    ),
    Sampler(
        "Restart", "sample_restart", ("restart",), "Karras", stochastic=True, second_order=True
    ),
    Sampler(
        "DDIM",
        "sample_ddim",
        ("ddim",),
        "DDIM",
        stochastic=True,
        timestep_sampler=True,
        stops_at_timestep_1=True,
        default_eta=0.0,
    ),
    Sampler(
        "DDIM CFG++",
        "sample_ddim_cfgpp",
        ("ddim_cfgpp",),
        "DDIM",
        stochastic=True,
        timestep_sampler=True,
        stops_at_timestep_1=True,
        default_eta=0.0,
        cfg_scale_multiplier=1 / 12.5,
    ),
    Sampler(
        "PLMS", "sample_plms", ("plms",), "DDIM", timestep_sampler=True, stops_at_timestep_1=True
    ),
    Sampler("UniPC", "sample_unipc", ("unipc",), timestep_sampler=True),
    Sampler("LCM", "sample_lcm", ("k_lcm",), stochastic=True),
)


@hookimpl
def register_samplers(register) -> None:
    for sampler in SAMPLERS:
        register(sampler)
