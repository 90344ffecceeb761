"""Samplers against a closed form: Gaussian data N(mu, s^2) per dimension.

The exact denoiser is D(x, sigma) = (s^2 x + sigma^2 mu) / (s^2 + sigma^2), and the
probability-flow ODE from sigma_max down to sigma has the solution
x(sigma) = mu + (x_T - mu) * sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_max^2).
Deterministic samplers must converge to it (at their order); stochastic ones must produce
samples with mean mu and variance s^2.
"""

from __future__ import annotations

import math

import pytest
import torch

from sdtui.core import samplers as S
from sdtui.core.samplers.lms import lms_coefficient
from sdtui.core.schedules import karras

MU, S_DATA = 0.5, 0.8
SIGMA_MIN, SIGMA_MAX = 0.03, 14.6


def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    sigma = sigma.view(-1, *[1] * (x.ndim - 1))
    return (S_DATA**2 * x + sigma**2 * MU) / (S_DATA**2 + sigma**2)


def consistency(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The exact consistency function (ODE solution to sigma 0), an ideal LCM model."""
    sigma = sigma.view(-1, *[1] * (x.ndim - 1))
    return MU + (x - MU) * S_DATA / (S_DATA**2 + sigma**2) ** 0.5


def ode_solution(x_start: torch.Tensor, to: float = 0.0) -> torch.Tensor:
    scale = math.sqrt(S_DATA**2 + to**2) / math.sqrt(S_DATA**2 + SIGMA_MAX**2)
    return MU + (x_start - MU) * scale


def schedule(steps: int) -> torch.Tensor:
    return karras(steps, SIGMA_MIN, SIGMA_MAX).double()


def start(count: int, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(
        count, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    return MU + noise * math.sqrt(S_DATA**2 + SIGMA_MAX**2)  # the exact marginal at sigma_max


def error(sampler, steps: int, **options) -> float:
    x = start(256)
    return float((sampler(denoiser, x, schedule(steps), **options) - ode_solution(x)).abs().max())


DETERMINISTIC = {
    "Euler": (S.sample_euler, {}),
    "Heun": (S.sample_heun, {}),
    "DPM2": (S.sample_dpm_2, {}),
    "LMS": (S.sample_lms, {}),
    "DPM++ 2M": (S.sample_dpmpp_2m, {}),
    "UniPC bh1": (S.sample_unipc, {}),
    "UniPC bh2": (S.sample_unipc, {"variant": "bh2"}),
    "PLMS": (S.sample_plms, {}),
    "DDIM": (S.sample_ddim, {}),
    "DPM++ SDE eta 0": (S.sample_dpmpp_sde, {"eta": 0.0}),
    "DPM++ 2M SDE eta 0": (S.sample_dpmpp_2m_sde, {"eta": 0.0}),
    "DPM++ 2M SDE Heun eta 0": (S.sample_dpmpp_2m_sde, {"eta": 0.0, "solver_type": "heun"}),
    "DPM++ 3M SDE eta 0": (S.sample_dpmpp_3m_sde, {"eta": 0.0}),
    "DPM++ 2S a eta 0": (S.sample_dpmpp_2s_ancestral, {"eta": 0.0}),
    "DPM2 a eta 0": (S.sample_dpm_2_ancestral, {"eta": 0.0}),
    "Euler a eta 0": (S.sample_euler_ancestral, {"eta": 0.0}),
    "Restart, no restarts": (S.sample_restart, {}),  # < 20 sigmas: plain Heun
}


@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_deterministic_samplers_converge_to_the_ode_solution(name: str) -> None:
    sampler, options = DETERMINISTIC[name]
    steps = 18 if name.startswith("Restart") else 40
    assert error(sampler, steps, **options) < 0.11
    assert error(sampler, steps, **options) < error(sampler, steps // 2, **options)


SECOND_ORDER = ["Heun", "DPM2", "LMS", "DPM++ 2M", "UniPC bh1", "PLMS", "DPM++ 3M SDE eta 0"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_higher_order_samplers_beat_euler(name: str) -> None:
    sampler, options = DETERMINISTIC[name]
    euler = error(S.sample_euler, 20)
    assert error(sampler, 20, **options) < euler / 5
    # second order or better: doubling the steps shrinks the error at least ~3 times
    assert error(sampler, 40, **options) < error(sampler, 20, **options) / 2.2


def test_euler_is_first_order() -> None:
    ratio = error(S.sample_euler, 20) / error(S.sample_euler, 40)
    assert 1.8 < ratio < 2.2


def test_dpm_fast_integrates_to_sigma_min() -> None:
    x = start(256)
    for steps, tolerance in ((10, 0.01), (40, 0.001)):
        result = S.sample_dpm_fast(denoiser, x, schedule(steps), eta=0.0)
        assert float((result - ode_solution(x, SIGMA_MIN)).abs().max()) < tolerance


def test_dpm_adaptive_error_shrinks_with_tolerance() -> None:
    x = start(256)
    errors = []
    for rtol in (0.05, 0.0005):
        result = S.sample_dpm_adaptive(
            denoiser, x, schedule(10), eta=0.0, rtol=rtol, atol=rtol / 10
        )
        errors.append(float((result - ode_solution(x, SIGMA_MIN)).abs().max()))
    assert errors[1] < errors[0] / 5
    assert errors[1] < 0.02


def test_lms_weights_are_integrals_of_the_lagrange_basis() -> None:
    nodes = schedule(8).numpy()
    for i, order in ((3, 4), (5, 3), (1, 2)):
        a, b = nodes[i], nodes[i + 1]
        grid = torch.linspace(float(a), float(b), 20001, dtype=torch.float64)
        for j in range(order):
            basis = torch.ones_like(grid)
            for k in range(order):
                if k != j:
                    basis = basis * (grid - nodes[i - k]) / (nodes[i - j] - nodes[i - k])
            expected = float(torch.trapezoid(basis, grid))
            assert lms_coefficient(nodes, order, i, j) == pytest.approx(expected, rel=1e-6)


def test_lms_of_order_one_is_euler() -> None:
    x = start(16)
    euler = S.sample_euler(denoiser, x, schedule(7))
    assert torch.allclose(S.sample_lms(denoiser, x, schedule(7), order=1), euler, atol=1e-12)


def test_ddim_without_eta_is_euler() -> None:
    x = start(16)
    euler = S.sample_euler(denoiser, x, schedule(7))
    assert torch.allclose(S.sample_ddim(denoiser, x, schedule(7)), euler, atol=1e-12)


# -- stochastic samplers: the distribution of many samples -----------------------------

COUNT = 20000


def seeded_noise(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(COUNT, 1, generator=generator, dtype=torch.float64)


def brownian(seed: int = 1):
    return S.BrownianTreeNoiseSampler(start(COUNT), SIGMA_MIN, SIGMA_MAX, seed=seed)


STOCHASTIC = {
    # name: (sampler, steps, options, Brownian noise?)
    "Euler a": (S.sample_euler_ancestral, 240, {}, False),
    "DDIM eta 1": (S.sample_ddim, 240, {"eta": 1.0}, False),
    "DPM2 a": (S.sample_dpm_2_ancestral, 40, {}, False),
    "DPM++ 2S a": (S.sample_dpmpp_2s_ancestral, 40, {}, False),
    "DPM++ SDE": (S.sample_dpmpp_sde, 20, {}, True),
    "DPM++ 2M SDE": (S.sample_dpmpp_2m_sde, 30, {}, True),
    "DPM++ 2M SDE Heun": (S.sample_dpmpp_2m_sde, 30, {"solver_type": "heun"}, True),
    "DPM++ 3M SDE": (S.sample_dpmpp_3m_sde, 30, {}, True),
    "Restart": (S.sample_restart, 30, {}, False),
    "DPM fast eta 1": (S.sample_dpm_fast, 30, {"eta": 1.0}, False),
    "DPM adaptive eta 1": (S.sample_dpm_adaptive, 10, {"eta": 1.0}, False),
}


def check_distribution(samples: torch.Tensor, target_variance: float) -> None:
    assert float(samples.mean()) == pytest.approx(MU, abs=0.03)
    assert float(samples.var()) == pytest.approx(target_variance, rel=0.05)


@pytest.mark.parametrize("name", list(STOCHASTIC))
def test_stochastic_samplers_sample_the_data_distribution(name: str) -> None:
    sampler, steps, options, brownian_noise = STOCHASTIC[name]
    noise_sampler = brownian(7) if brownian_noise else seeded_noise(7)
    samples = sampler(
        denoiser, start(COUNT), schedule(steps), noise_sampler=noise_sampler, **options
    )
    to = SIGMA_MIN if name.startswith("DPM fast") or name.startswith("DPM adaptive") else 0.0
    check_distribution(samples, S_DATA**2 + to**2)


def test_lcm_with_an_exact_consistency_model_samples_exactly() -> None:
    samples = S.sample_lcm(consistency, start(COUNT), schedule(4), noise_sampler=seeded_noise())
    check_distribution(samples, S_DATA**2)


def test_brownian_noise_is_standard_normal_and_reproducible() -> None:
    x = torch.zeros(4000, 1)
    sampler = S.BrownianTreeNoiseSampler(x, 0.1, 10.0, seed=5)
    noise = sampler(torch.tensor(3.0), torch.tensor(2.0))
    assert float(noise.mean()) == pytest.approx(0.0, abs=0.06)
    assert float(noise.std()) == pytest.approx(1.0, abs=0.05)
    again = S.BrownianTreeNoiseSampler(x, 0.1, 10.0, seed=5)
    assert torch.equal(again(torch.tensor(3.0), torch.tensor(2.0)), noise)
    # increments over adjacent intervals add up: W(3) - W(1) = (W(3) - W(2)) + (W(2) - W(1))
    whole = sampler(3.0, 1.0) * 2**0.5
    parts = sampler(3.0, 2.0) + sampler(2.0, 1.0)
    assert torch.allclose(whole, parts, atol=1e-5)
    # non-overlapping increments are independent
    correlation = torch.corrcoef(torch.stack([noise.flatten(), sampler(2.0, 1.0).flatten()]))
    assert abs(float(correlation[0, 1])) < 0.06


def test_brownian_noise_per_image_seeds_are_independent_of_the_batch() -> None:
    batch = torch.zeros(2, 3, 4)
    pair = S.BrownianTreeNoiseSampler(batch, 0.1, 10.0, seed=[11, 12])(5.0, 4.0)
    single = S.BrownianTreeNoiseSampler(batch[1:], 0.1, 10.0, seed=[12])(5.0, 4.0)
    assert torch.equal(pair[1], single[0])
    assert not torch.equal(pair[0], pair[1])


class GuidedDenoiser:
    """Exposes an "unconditional" prediction, as the engine's CFG denoiser does."""

    def __init__(self, uncond_shift: float) -> None:
        self.uncond_shift = uncond_shift
        self.last_uncond_denoised: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        denoised = denoiser(x, sigma)
        self.last_uncond_denoised = denoised + self.uncond_shift
        return denoised


def test_ddim_cfgpp_is_ddim_when_the_unconditional_prediction_agrees() -> None:
    x = start(16)
    ddim = S.sample_ddim(denoiser, x, schedule(8))
    same = S.sample_ddim_cfgpp(GuidedDenoiser(0.0), x, schedule(8))
    assert torch.allclose(same, ddim, atol=1e-12)
    shifted = S.sample_ddim_cfgpp(GuidedDenoiser(0.3), x, schedule(8))
    # renoising with the shifted eps moves every step's result by -0.3 * sigma_next / sigma
    assert not torch.allclose(shifted, ddim, atol=1e-3)
