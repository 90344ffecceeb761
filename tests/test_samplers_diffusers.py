"""Samplers against diffusers' schedulers: same model, sigmas, initial noise and noise draws.

The model is a small deterministic eps-model (a fixed random channel mix, nonlinear in x and
smooth in t); SD's scaled-linear betas; timestep spacing "linspace" (or A1111's "leading"
with offset 1 for DDIM/PLMS/LCM), so every sigma is a table value at an integer timestep and
our denoiser (sigma -> t by log-linear interpolation) calls the model at the same t as
diffusers. Our sigmas are taken from the diffusers scheduler. diffusers' DDIM, PNDM,
DPMSolverMultistep, UniPC and LCM work in the VP scaling with unit initial noise: we start
from noise * sqrt(1 + sigma_0^2) and divide the result by sqrt(1 + sigma_last^2).

Where diffusers cannot serve as an oracle:
- LMS: LMSDiscreteScheduler needs scipy (for `integrate.quad`); the test runs only where
  scipy is installed. Our weights are checked against quadrature in test_samplers_analytic.
- DPM++ SDE: DPMSolverSDEScheduler needs torchsde; where installed, the test replaces its
  Brownian noise sampler with ours so both draw identical noise.
- DPM++ 3M SDE: diffusers' third-order "sde-dpmsolver++" update uses -0.5 where the
  SDE-DPM-Solver++ derivation (and k-diffusion) gives +0.5 in the second-difference weight,
  so it is not a valid oracle. We check eta = 0 (our 3M SDE becomes DPM-Solver++(3M)) against
  "dpmsolver++" order 3 with solver_type "heun" (the second-order warm-up step uses the
  exponential "heun" weight), plus the distribution test in test_samplers_analytic.
- DPM++ 2S a: DPMSolverSinglestepScheduler is not ancestral and takes its intermediate
  points from the schedule rather than at the log-midpoint; no equivalent. Analytic only.
- UniPC bh1 with a final sigma of 0 gives NaN in diffusers (B(h) = h is infinite there), so
  bh1 is compared with final_sigmas_type "sigma_min" (as A1111 ends UniPC at timestep 0).
- DPM fast, DPM adaptive, Restart, DDIM CFG++: no diffusers scheduler. Analytic only.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)

from sdtui.core import samplers as S
from sdtui.core.denoisers import DiscreteDenoiser
from sdtui.core.discrete import DiscreteSchedule

# diffusers 0.42 with numpy 2 warns on every sigma table it builds; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
LEADING = dict(set_alpha_to_one=False, steps_offset=1)  # SD's DDIM / PNDM / LCM config
TOLERANCE = 1e-3
MIX = torch.randn(4, 4, generator=torch.Generator().manual_seed(3)) * 0.3
NOISE = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))


def eps_model(x: torch.Tensor, t, **cond) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=x.dtype)
    t = t.reshape(-1, 1, 1, 1) if t.ndim else t
    mixed = torch.einsum("oc,bchw->bohw", MIX, x)
    return (
        (t / 1000) ** 0.5 * x
        + 0.2 * torch.tanh(mixed) * torch.cos(t / 300)
        + 0.02 * (t / 150).sin()
    )


def replay(seed: int):
    """Draws what diffusers draws from a generator seeded the same way."""
    generator = torch.Generator().manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(NOISE.shape, generator=generator)


def run_diffusers(scheduler, seed: int | None = None, **step_options) -> torch.Tensor:
    if seed is not None:
        step_options["generator"] = torch.Generator().manual_seed(seed)
    x = NOISE * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        output = eps_model(scheduler.scale_model_input(x, t), t)
        x = scheduler.step(output, t, x, **step_options).prev_sample
    return x


def run_ours(sampler, scheduler, sigmas, lcm_boundary=False, **options) -> torch.Tensor:
    schedule = DiscreteSchedule.from_alphas_cumprod(scheduler.alphas_cumprod)
    model = DiscreteDenoiser(eps_model, schedule, lcm_boundary=lcm_boundary)
    vp = float(scheduler.init_noise_sigma) == 1.0
    x = NOISE * ((1 + sigmas[0] ** 2) ** 0.5 if vp else sigmas[0])
    x = sampler(model, x, sigmas, **options)
    return x / (1 + sigmas[-1] ** 2) ** 0.5 if vp else x


def timestep_sigmas(scheduler, timesteps, last: str = "sigma_min") -> torch.Tensor:
    table = DiscreteSchedule.from_alphas_cumprod(scheduler.alphas_cumprod).sigmas
    end = table[:1] if last == "sigma_min" else torch.zeros(1)
    return torch.cat([table[torch.unique_consecutive(timesteps)], end])


def assert_close(ours: torch.Tensor, reference: torch.Tensor) -> None:
    assert not torch.isnan(ours).any()
    difference = float((ours - reference).abs().max())
    assert difference <= TOLERANCE, f"max abs difference {difference:.2e}"


K_CASES = {
    "Euler": (EulerDiscreteScheduler, S.sample_euler, False),
    "Heun": (HeunDiscreteScheduler, S.sample_heun, False),
    "DPM2": (KDPM2DiscreteScheduler, S.sample_dpm_2, False),
    "Euler a": (EulerAncestralDiscreteScheduler, S.sample_euler_ancestral, True),
    "DPM2 a": (KDPM2AncestralDiscreteScheduler, S.sample_dpm_2_ancestral, True),
}


@pytest.mark.parametrize("name", list(K_CASES))
@pytest.mark.parametrize("steps", [4, 10])
def test_k_samplers_match_diffusers(name: str, steps: int) -> None:
    scheduler_class, sampler, ancestral = K_CASES[name]
    scheduler = scheduler_class(**SD, timestep_spacing="linspace")
    scheduler.set_timesteps(steps)
    sigmas = torch.unique_consecutive(scheduler.sigmas.float())  # Heun/DPM2 repeat sigmas
    assert len(sigmas) == steps + 1
    options = {"noise_sampler": replay(5)} if ancestral else {}
    reference = run_diffusers(scheduler, seed=5 if ancestral else None)
    assert_close(run_ours(sampler, scheduler, sigmas, **options), reference)


SCHEDULE_CASES = [
    ("Euler", "use_karras_sigmas"),
    ("Euler", "use_exponential_sigmas"),
    ("Heun", "use_karras_sigmas"),
    ("Heun", "use_exponential_sigmas"),
    # diffusers' KDPM2 rounds the timesteps of Karras sigmas (not the sigmas themselves),
    # which moves its model calls off our sigmas by up to half a timestep: exponential only.
    ("DPM2", "use_exponential_sigmas"),
    ("DPM2 a", "use_exponential_sigmas"),
]


@pytest.mark.parametrize(("name", "schedule_flag"), SCHEDULE_CASES)
def test_k_samplers_match_diffusers_on_karras_and_exponential_sigmas(
    name: str, schedule_flag: str
) -> None:
    """Fractional timesteps: diffusers and our denoiser must map sigma -> t alike."""
    scheduler_class, sampler, ancestral = K_CASES[name]
    scheduler = scheduler_class(**SD, **{schedule_flag: True})
    scheduler.set_timesteps(8)
    sigmas = torch.unique_consecutive(scheduler.sigmas.float())
    options = {"noise_sampler": replay(5)} if ancestral else {}
    reference = run_diffusers(scheduler, seed=5 if ancestral else None)
    assert_close(run_ours(sampler, scheduler, sigmas, **options), reference)


@pytest.mark.parametrize("steps", [5, 10])
def test_dpmpp_2m_matches_dpm_solver_multistep(steps: int) -> None:
    scheduler = DPMSolverMultistepScheduler(
        **SD, timestep_spacing="linspace", algorithm_type="dpmsolver++", solver_order=2
    )
    scheduler.set_timesteps(steps)
    reference = run_diffusers(scheduler)
    assert_close(run_ours(S.sample_dpmpp_2m, scheduler, scheduler.sigmas.float()), reference)


@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
def test_dpmpp_2m_sde_matches_sde_dpm_solver(solver_type: str) -> None:
    scheduler = DPMSolverMultistepScheduler(
        **SD,
        timestep_spacing="linspace",
        algorithm_type="sde-dpmsolver++",
        solver_order=2,
        solver_type=solver_type,
    )
    scheduler.set_timesteps(10)
    noises = [
        torch.randn(NOISE.shape, generator=torch.Generator().manual_seed(i)) for i in range(10)
    ]
    x = NOISE * scheduler.init_noise_sigma
    for t, noise in zip(scheduler.timesteps, noises, strict=True):
        output = eps_model(scheduler.scale_model_input(x, t), t)
        x = scheduler.step(output, t, x, variance_noise=noise).prev_sample
    draws = iter(noises)
    ours = run_ours(
        S.sample_dpmpp_2m_sde,
        scheduler,
        scheduler.sigmas.float(),
        noise_sampler=lambda sigma, sigma_next: next(draws),
        solver_type=solver_type,
    )
    assert_close(ours, x)


def test_dpmpp_3m_sde_without_noise_matches_dpm_solver_3m() -> None:
    scheduler = DPMSolverMultistepScheduler(
        **SD,
        timestep_spacing="linspace",
        algorithm_type="dpmsolver++",
        solver_order=3,
        solver_type="heun",
    )
    scheduler.set_timesteps(16)  # >= 15: diffusers lowers the order only at the last step
    reference = run_diffusers(scheduler)
    ours = run_ours(S.sample_dpmpp_3m_sde, scheduler, scheduler.sigmas.float(), eta=0.0)
    assert_close(ours, reference)


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_unipc_matches_diffusers(variant: str, order: int) -> None:
    scheduler = UniPCMultistepScheduler(
        **SD,
        timestep_spacing="linspace",
        solver_order=order,
        solver_type=variant,
        lower_order_final=True,
        final_sigmas_type="zero" if variant == "bh2" else "sigma_min",
    )
    scheduler.set_timesteps(10)
    reference = run_diffusers(scheduler)
    sigmas = scheduler.sigmas.float()
    ours = run_ours(S.sample_unipc, scheduler, sigmas, variant=variant, order=order)
    assert_close(ours, reference)


@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_matches_diffusers(eta: float) -> None:
    scheduler = DDIMScheduler(**SD, **LEADING, clip_sample=False)
    scheduler.set_timesteps(10)
    sigmas = timestep_sigmas(scheduler, scheduler.timesteps)  # ends at timestep 0, as A1111
    reference = run_diffusers(scheduler, seed=5, eta=eta)
    ours = run_ours(S.sample_ddim, scheduler, sigmas, eta=eta, noise_sampler=replay(5))
    assert_close(ours, reference)


def test_plms_matches_pndm_without_runge_kutta_steps() -> None:
    scheduler = PNDMScheduler(**SD, **LEADING, skip_prk_steps=True)
    scheduler.set_timesteps(10)
    sigmas = timestep_sigmas(scheduler, scheduler.timesteps)
    assert len(sigmas) == 11  # diffusers repeats the first timestep for the Heun-like start
    assert_close(run_ours(S.sample_plms, scheduler, sigmas), run_diffusers(scheduler))


@pytest.mark.parametrize("steps", [1, 4])
def test_lcm_matches_diffusers(steps: int) -> None:
    scheduler = LCMScheduler(**SD, **LEADING)
    scheduler.set_timesteps(steps)
    sigmas = timestep_sigmas(scheduler, scheduler.timesteps, last="zero")
    reference = run_diffusers(scheduler, seed=5)
    ours = run_ours(S.sample_lcm, scheduler, sigmas, lcm_boundary=True, noise_sampler=replay(5))
    assert_close(ours, reference)


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="diffusers' LMS needs scipy")
def test_lms_matches_diffusers() -> None:
    from diffusers import LMSDiscreteScheduler

    scheduler = LMSDiscreteScheduler(**SD, timestep_spacing="linspace")
    scheduler.set_timesteps(10)
    reference = run_diffusers(scheduler)
    assert_close(run_ours(S.sample_lms, scheduler, scheduler.sigmas.float()), reference)


@pytest.mark.skipif(
    importlib.util.find_spec("torchsde") is None, reason="DPMSolverSDEScheduler needs torchsde"
)
def test_dpmpp_sde_matches_diffusers() -> None:
    from diffusers import DPMSolverSDEScheduler

    scheduler = DPMSolverSDEScheduler(**SD, timestep_spacing="linspace")
    scheduler.set_timesteps(10)
    sigmas = torch.unique_consecutive(scheduler.sigmas.float())
    noise_sampler = S.BrownianTreeNoiseSampler(
        NOISE, float(sigmas[sigmas > 0].min()), float(sigmas.max()), seed=7
    )
    scheduler.noise_sampler = noise_sampler
    reference = run_diffusers(scheduler)
    ours = run_ours(S.sample_dpmpp_sde, scheduler, sigmas, noise_sampler=noise_sampler)
    assert_close(ours, reference)


def test_v_prediction_denoiser_matches_diffusers() -> None:
    scheduler = EulerDiscreteScheduler(
        **SD, timestep_spacing="linspace", prediction_type="v_prediction"
    )
    scheduler.set_timesteps(10)
    reference = run_diffusers(scheduler)
    schedule = DiscreteSchedule.from_alphas_cumprod(scheduler.alphas_cumprod)
    model = DiscreteDenoiser(eps_model, schedule, prediction="v_prediction")
    sigmas = scheduler.sigmas.float()
    assert_close(S.sample_euler(model, NOISE * sigmas[0], sigmas), reference)


def test_quantized_denoiser_calls_integer_timesteps() -> None:
    seen = []

    def recording_model(x, t, **cond):
        seen.append(t.clone())
        return eps_model(x, t)

    schedule = DiscreteSchedule.stable_diffusion()
    model = DiscreteDenoiser(recording_model, schedule, quantize=True)
    sigma = torch.tensor([float(schedule.sigmas[400]) * 1.001, float(schedule.sigmas[17])])
    model(torch.zeros(2, 4, 8, 8), sigma)
    assert seen[0].tolist() == [400, 17]


def test_denoiser_rejects_unknown_prediction_types() -> None:
    with pytest.raises(ValueError, match="epsilon, v_prediction"):
        DiscreteDenoiser(eps_model, DiscreteSchedule.stable_diffusion(), prediction="sample")
