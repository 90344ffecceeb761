"""Sigma schedules: A1111's definitions, checked against diffusers and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import EulerDiscreteScheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.core import schedules
from sdtui.core.discrete import DiscreteSchedule
from sdtui.plugins import PluginHost

MODEL = DiscreteSchedule.stable_diffusion()
SIGMA_MIN, SIGMA_MAX = MODEL.sigma_min, MODEL.sigma_max


def diffusers_euler(**config) -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", **config
    )


def test_model_sigmas_match_stable_diffusion() -> None:
    reference = diffusers_euler()
    expected = ((1 - reference.alphas_cumprod) / reference.alphas_cumprod) ** 0.5
    # diffusers accumulates the product in float32, A1111 in float64: tiny drift
    assert torch.allclose(MODEL.sigmas, expected.float(), rtol=1e-4)
    assert SIGMA_MIN == pytest.approx(0.0292, abs=1e-4)
    assert SIGMA_MAX == pytest.approx(14.6146, abs=1e-4)


def test_sigma_to_t_inverts_t_to_sigma() -> None:
    t = torch.tensor([0.0, 0.5, 10.25, 500.0, 998.9, 999.0])
    assert torch.allclose(MODEL.sigma_to_t(MODEL.t_to_sigma(t)), t, atol=1e-3)
    assert int(MODEL.sigma_to_t(MODEL.sigmas[321], quantize=True)) == 321


@pytest.mark.parametrize("steps", [2, 5, 20, 37])  # 1 step: diffusers picks t=0, A1111 t=999
def test_uniform_is_diffusers_linspace_spacing(steps: int) -> None:
    reference = diffusers_euler(timestep_spacing="linspace")
    reference.set_timesteps(steps)
    # k-diffusion interpolates in log-sigma, diffusers in sigma: equal at integer timesteps
    assert torch.allclose(schedules.uniform(steps, MODEL), reference.sigmas, atol=2e-3)


@pytest.mark.parametrize("steps", [2, 5, 20])
def test_karras_matches_diffusers(steps: int) -> None:
    reference = diffusers_euler(use_karras_sigmas=True)
    reference.set_timesteps(steps)
    ours = schedules.karras(steps, SIGMA_MIN, SIGMA_MAX)
    assert torch.allclose(ours, reference.sigmas, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("steps", [2, 5, 20])
def test_exponential_is_geometric(steps: int) -> None:
    sigmas = schedules.exponential(steps, SIGMA_MIN, SIGMA_MAX)[:-1]
    if steps > 2:
        ratios = sigmas[1:] / sigmas[:-1]
        assert torch.allclose(ratios, ratios[0].expand_as(ratios), rtol=1e-4)
    assert float(sigmas[0]) == pytest.approx(SIGMA_MAX) and float(sigmas[-1]) == pytest.approx(
        SIGMA_MIN, rel=1e-5
    )


def test_polyexponential_with_rho_one_is_exponential() -> None:
    assert torch.allclose(
        schedules.polyexponential(9, SIGMA_MIN, SIGMA_MAX, rho=1.0),
        schedules.exponential(9, SIGMA_MIN, SIGMA_MAX),
        rtol=1e-5,
    )


def test_kl_optimal_is_even_in_arctan_and_ends_at_sigma_min_like_a1111() -> None:
    sigmas = schedules.kl_optimal(6, SIGMA_MIN, SIGMA_MAX)
    assert len(sigmas) == 7
    angles = torch.atan(sigmas.double())
    steps = angles[1:] - angles[:-1]
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-6)
    assert float(sigmas[-1]) == pytest.approx(SIGMA_MIN, rel=1e-5)


def test_align_your_steps_table_and_interpolation() -> None:
    assert schedules.align_your_steps(11).tolist()[:-1] == pytest.approx(schedules.AYS_SD1)
    assert schedules.align_your_steps(11, sdxl=True)[1] == pytest.approx(6.315)
    ten = schedules.align_your_steps(10)
    assert len(ten) == 11 and float(ten[-1]) == 0
    assert float(ten[0]) == pytest.approx(14.615) and float(ten[-2]) == pytest.approx(0.029)
    # log-linear resampling keeps a geometric sequence geometric
    geometric = torch.tensor([8.0, 4.0, 2.0, 1.0])
    assert schedules.loglinear_interpolate(geometric, 7).tolist() == pytest.approx(
        [8.0, 8 / 2**0.5, 4.0, 4 / 2**0.5, 2.0, 2 / 2**0.5, 1.0], rel=1e-5
    )


def test_ddim_and_simple_pick_model_sigmas() -> None:
    ddim = schedules.ddim(10, MODEL)
    assert ddim[:-1].tolist() == pytest.approx(MODEL.sigmas[1:1000:100].flip(0).tolist())
    simple = schedules.simple(4, MODEL)
    picked = [MODEL.sigmas[i] for i in (999, 749, 499, 249)]
    assert simple[:-1].tolist() == pytest.approx([float(s) for s in picked])


def test_normal_and_sgm_uniform_span_the_range() -> None:
    normal = schedules.normal(5, SIGMA_MIN, SIGMA_MAX, MODEL)
    assert float(normal[0]) == pytest.approx(SIGMA_MAX, rel=1e-4)
    assert float(normal[-2]) == pytest.approx(SIGMA_MIN, rel=1e-3)
    sgm = schedules.sgm_uniform(5, SIGMA_MIN, SIGMA_MAX, MODEL)
    assert float(sgm[0]) == pytest.approx(SIGMA_MAX, rel=1e-4) and float(sgm[-2]) > SIGMA_MIN


@pytest.mark.parametrize(
    ("a", "b", "cdf"),
    [(1.0, 1.0, lambda x: x), (2.0, 1.0, lambda x: x * x), (1.0, 3.0, lambda x: 1 - (1 - x) ** 3)],
)
def test_beta_cdf_closed_forms(a: float, b: float, cdf) -> None:
    for x in (0.01, 0.2, 0.5, 0.77, 0.99):
        assert schedules.beta_cdf(x, a, b) == pytest.approx(cdf(x), abs=1e-10)


def test_beta_cdf_against_numerical_integration() -> None:
    a = b = 0.6
    x = torch.linspace(0, 0.7, 2_000_001, dtype=torch.float64)[1:]
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    pdf = torch.exp(log_norm + (a - 1) * x.log() + (b - 1) * torch.log1p(-x))
    # integrate the singular start analytically: pdf ~ C x^(a-1) near 0
    head = math.exp(log_norm) * float(x[0]) ** a / a
    numeric = head + float(torch.trapezoid(pdf, x))
    assert schedules.beta_cdf(0.7, a, b) == pytest.approx(numeric, abs=2e-4)


@settings(deadline=None, max_examples=60)
@given(q=st.floats(0.001, 0.999), a=st.floats(0.2, 5.0), b=st.floats(0.2, 5.0))
def test_beta_ppf_inverts_cdf(q: float, a: float, b: float) -> None:
    """cdf(ppf(q)) = q, to the resolution floats allow: near 1 with small b the cdf is so
    steep that neighbouring floats x differ by more than 1e-9 in cdf(x)."""
    x = schedules.beta_ppf(q, a, b)
    below = schedules.beta_cdf(max(0.0, math.nextafter(math.nextafter(x, 0), 0)), a, b)
    above = schedules.beta_cdf(min(1.0, math.nextafter(math.nextafter(x, 1), 1)), a, b)
    assert below - 1e-9 <= q <= above + 1e-9


def test_beta_schedule_starts_at_the_last_timestep() -> None:
    sigmas = schedules.beta(8, MODEL)
    assert float(sigmas[0]) == pytest.approx(SIGMA_MAX) and float(sigmas[-1]) == 0
    assert schedules.beta_ppf(0.5, 0.6, 0.6) == pytest.approx(0.5)


def registered() -> list:
    return list(PluginHost(load_entry_points=False).schedules)


@pytest.mark.parametrize("schedule", registered(), ids=lambda schedule: schedule.name)
@pytest.mark.parametrize("steps", [1, 3, 20])
def test_every_registered_schedule_contract(schedule, steps: int) -> None:
    sigmas = schedule.sigmas(steps, SIGMA_MIN, SIGMA_MAX, model=MODEL)
    assert sigmas.shape == (steps + 1,)
    assert torch.all(sigmas[:-1] > 0) and torch.all(sigmas[1:] <= sigmas[:-1])
    assert float(sigmas[0]) <= SIGMA_MAX * 1.001
    final = float(sigmas[-1])
    assert final == 0 or (schedule.name == "KL Optimal" and final == pytest.approx(SIGMA_MIN))


def test_a1111_names_and_aliases_resolve() -> None:
    host = PluginHost(load_entry_points=False)
    labels = [
        "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal",
        "Align Your Steps", "Simple", "Normal", "DDIM", "Beta",
    ]  # fmt: skip
    assert host.schedules.names() == labels
    assert host.schedules.resolve_name("sgmuniform") == "SGM Uniform"
    assert host.schedules.resolve_name("align_your_steps") == "Align Your Steps"
    with pytest.raises(ValueError, match="needs the model's discrete sigmas"):
        host.schedules.get("Simple").sigmas(5, SIGMA_MIN, SIGMA_MAX)
