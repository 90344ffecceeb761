"""Sigma schedules ("Schedule type" in A1111): steps -> steps + 1 descending sigmas ending in 0.

Each function takes the step count, the model's sigma range and, where the schedule is
defined over the model's own timesteps, its `DiscreteSchedule`. Algorithms as published
(Karras et al. 2022; Align Your Steps, NVIDIA 2024; KL-optimal, Sabour et al. 2024) and as
A1111 configures them.
"""

from __future__ import annotations

import math

import torch

from sdtui.core.discrete import DiscreteSchedule

# Align Your Steps: NVIDIA's optimised 10-step sigmas (11 values) for SD1.5 and SDXL.
AYS_SD1 = (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029)
AYS_SDXL = (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029)


def append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def karras(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    ramp = torch.linspace(0, 1, steps)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def exponential(steps: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    return append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps).exp())


def polyexponential(
    steps: int, sigma_min: float, sigma_max: float, rho: float = 1.0
) -> torch.Tensor:
    ramp = torch.linspace(1, 0, steps) ** rho
    log_min, log_max = math.log(sigma_min), math.log(sigma_max)
    return append_zero(torch.exp(ramp * (log_max - log_min) + log_min))


def uniform(steps: int, model: DiscreteSchedule) -> torch.Tensor:
    """Evenly spaced timesteps from the last to the first (k-diffusion's default, and
    A1111's "Automatic" for samplers without a preferred schedule)."""
    t = torch.linspace(model.timesteps - 1, 0, steps)
    return append_zero(model.t_to_sigma(t))


def sgm_uniform(steps: int, sigma_min: float, sigma_max: float, model: DiscreteSchedule):
    start = model.sigma_to_t(torch.tensor(sigma_max))
    end = model.sigma_to_t(torch.tensor(sigma_min))
    t = torch.linspace(float(start), float(end), steps + 1)[:-1]
    return append_zero(model.t_to_sigma(t))


def kl_optimal(steps: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Evenly spaced in arctan(sigma). As in A1111, the steps + 1 sigmas end at sigma_min,
    not 0: the last step leaves sigma_min of noise (kept so A1111 infotexts reproduce)."""
    alpha_min, alpha_max = math.atan(sigma_min), math.atan(sigma_max)
    fraction = torch.arange(steps + 1, dtype=torch.float32) / steps
    return torch.tan(fraction * alpha_min + (1 - fraction) * alpha_max)


def simple(steps: int, model: DiscreteSchedule) -> torch.Tensor:
    stride = model.timesteps / steps
    picked = [float(model.sigmas[-(1 + int(i * stride))]) for i in range(steps)]
    return append_zero(torch.tensor(picked))


def normal(steps: int, sigma_min: float, sigma_max: float, model: DiscreteSchedule):
    start = float(model.sigma_to_t(torch.tensor(sigma_max)))
    end = float(model.sigma_to_t(torch.tensor(sigma_min)))
    return append_zero(model.t_to_sigma(torch.linspace(start, end, steps)))


def ddim(steps: int, model: DiscreteSchedule) -> torch.Tensor:
    stride = max(model.timesteps // steps, 1)
    picked = [float(model.sigmas[t]) for t in range(1, model.timesteps, stride)]
    return append_zero(torch.tensor(picked[::-1]))


def beta(
    steps: int, model: DiscreteSchedule, beta_alpha: float = 0.6, beta_beta: float = 0.6
) -> torch.Tensor:
    """Timesteps at the quantiles of a Beta(alpha, beta) distribution (Lee et al. 2024),
    mapped through the model's sigmas as A1111 1.10 does."""
    last = model.timesteps - 1
    quantiles = [1 - i / steps for i in range(steps)]
    timesteps = [round(beta_ppf(q, beta_alpha, beta_beta) * last) for q in quantiles]
    return append_zero(torch.tensor([float(model.sigmas[t]) for t in timesteps]))


def align_your_steps(steps: int, sdxl: bool = False) -> torch.Tensor:
    table = AYS_SDXL if sdxl else AYS_SD1
    if steps == len(table):
        return append_zero(torch.tensor(table))
    return append_zero(loglinear_interpolate(torch.tensor(table), steps))


def loglinear_interpolate(sigmas: torch.Tensor, count: int) -> torch.Tensor:
    """Resample a descending sigma list to `count` values, linearly in log-sigma."""
    log_ascending = sigmas.flip(0).double().log()
    positions = torch.linspace(0, len(sigmas) - 1, count, dtype=torch.float64)
    low = positions.floor().long().clamp(max=len(sigmas) - 2)
    weight = positions - low
    values = (1 - weight) * log_ascending[low] + weight * log_ascending[low + 1]
    return values.exp().flip(0).to(torch.float32)


# -- the Beta distribution's quantile function, without scipy -----------------------------


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction for the regularized incomplete beta (modified Lentz method)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def beta_cdf(x: float, a: float, b: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(log_front + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):  # the continued fraction converges fast on this side
        return front * _incomplete_beta_fraction(a, b, x) / a
    return 1.0 - front * _incomplete_beta_fraction(b, a, 1.0 - x) / b


def beta_ppf(q: float, a: float, b: float) -> float:
    """Inverse of beta_cdf by bisection (the cdf is monotonic)."""
    if q <= 0:
        return 0.0
    if q >= 1:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if beta_cdf(middle, a, b) < q else (low, middle)
    return (low + high) / 2
