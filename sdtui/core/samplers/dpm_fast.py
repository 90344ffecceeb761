"""DPM-Solver (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic
Model Sampling in Around 10 Steps"), noise-prediction form, in the sigma view.

With t = -log(sigma) and eps = (x - D(x, sigma)) / sigma, DPM-Solver-1/2/3 are the
exponential-integrator steps of orders 1-3 (Algorithms 1 and 2 of the paper). "DPM fast"
spends the step budget on uniformly spaced t with orders 3, ..., 3 then 2/1 (the paper's
fast schedule); "DPM adaptive" picks steps with an embedded 2/3 (or 1/2) pair and a PID step
size controller, ignoring the step count. Both integrate from sigmas[0] to the smallest
positive sigma and return x there (not a final clean prediction), as k-diffusion and A1111
do. With eta > 0 each step is ancestral (A1111 runs both with eta = 1).
"""

from __future__ import annotations

import math

import torch

from sdtui.core.samplers.common import (
    Callback,
    Denoiser,
    NoiseSampler,
    check_sigmas,
    default_noise_sampler,
    denoise,
    get_ancestral_step,
    report,
)


def _sigma(t: torch.Tensor) -> torch.Tensor:
    return (-t).exp()


def _t(sigma: torch.Tensor) -> torch.Tensor:
    return -torch.as_tensor(sigma).log()


class _Solver:
    """DPM-Solver steps with a per-step cache of eps evaluations (keyed by name)."""

    def __init__(self, model: Denoiser) -> None:
        self.model, self.cache, self.calls = model, {}, 0

    def eps(self, key: str, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if key not in self.cache:
            self.cache[key] = (x - denoise(self.model, x, _sigma(t))) / _sigma(t)
            self.calls += 1
        return self.cache[key]

    def step_1(self, x, t, t_next):
        eps = self.eps("eps", x, t)
        return x - _sigma(t_next) * torch.expm1(t_next - t) * eps

    def step_2(self, x, t, t_next, r1=0.5):
        h = t_next - t
        eps = self.eps("eps", x, t)
        s1 = t + r1 * h
        u1 = x - _sigma(s1) * torch.expm1(r1 * h) * eps
        eps_r1 = self.eps(f"eps_r{r1}", u1, s1)
        correction = _sigma(t_next) / (2 * r1) * torch.expm1(h) * (eps_r1 - eps)
        return x - _sigma(t_next) * torch.expm1(h) * eps - correction

    def step_3(self, x, t, t_next, r1=1 / 3, r2=2 / 3):
        h = t_next - t
        eps = self.eps("eps", x, t)
        s1, s2 = t + r1 * h, t + r2 * h
        u1 = x - _sigma(s1) * torch.expm1(r1 * h) * eps
        eps_r1 = self.eps(f"eps_r{r1}", u1, s1)
        phi_r2 = torch.expm1(r2 * h) / (r2 * h) - 1
        u2 = x - _sigma(s2) * torch.expm1(r2 * h) * eps
        u2 = u2 - _sigma(s2) * (r2 / r1) * phi_r2 * (eps_r1 - eps)
        eps_r2 = self.eps(f"eps_r{r2}", u2, s2)
        phi = torch.expm1(h) / h - 1
        second = _sigma(t_next) / r2 * phi * (eps_r2 - eps)
        return x - _sigma(t_next) * torch.expm1(h) * eps - second

    def step(self, order: int, x, t, t_next):
        return (self.step_1, self.step_2, self.step_3)[order - 1](x, t, t_next)


def _range(sigmas: torch.Tensor, sampler: str) -> tuple[torch.Tensor, torch.Tensor]:
    check_sigmas(sigmas, sampler)
    positive = sigmas[sigmas > 0].double()
    return _t(positive.max()), _t(positive.min())


def _ancestral_target(t, t_next, t_end, eta):
    """The deterministic target t_next_ and the noise size sigma_up for an ancestral step."""
    if not eta:
        return t_next, torch.zeros_like(t_next)
    sigma_down, _ = get_ancestral_step(_sigma(t), _sigma(t_next), eta)
    t_down = torch.minimum(t_end, _t(sigma_down))
    return t_down, (_sigma(t_next) ** 2 - _sigma(t_down) ** 2).clamp(min=0) ** 0.5


def fast_orders(n: int) -> list[int]:
    """Orders summing to n model calls: 3s, then the remainder (2, 1 when n % 3 == 0)."""
    m = n // 3 + 1
    return [3] * (m - 2) + [2, 1] if n % 3 == 0 else [3] * (m - 1) + [n % 3]


@torch.no_grad()
def sample_dpm_fast(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 0.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    t_start, t_end = _range(sigmas, "DPM fast")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    orders = fast_orders(len(sigmas) - 1)
    ts = torch.linspace(float(t_start), float(t_end), len(orders) + 1, dtype=torch.float64)
    for i, order in enumerate(orders):
        t, t_next = ts[i], ts[i + 1]
        t_target, sigma_up = _ancestral_target(t, t_next, t_end, eta)
        solver = _Solver(model)
        x_start, x = x, solver.step(order, x, t, t_target).to(x.dtype)
        denoised = x_start - _sigma(t) * solver.cache["eps"]
        if sigma_up > 0:
            x = x + noise_sampler(_sigma(t), _sigma(t_next)) * s_noise * sigma_up
        report(callback, i, len(orders), x, denoised, _sigma(t), _sigma(t_next))
    return x


class PIDController:
    """Step size control (Söderlind's PID digital filter with an arctan limiter)."""

    def __init__(self, h, pcoeff, icoeff, dcoeff, order, accept_safety, eps=1e-8) -> None:
        self.h, self.accept_safety, self.eps = h, accept_safety, eps
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2 * dcoeff) / order
        self.b3 = dcoeff / order
        self.inverse_errors: list[float] = []

    def propose(self, error: float) -> bool:
        inverse = 1 / (error + self.eps)
        if not self.inverse_errors:
            self.inverse_errors = [inverse] * 3
        self.inverse_errors[0] = inverse
        e0, e1, e2 = self.inverse_errors
        factor = 1 + math.atan(e0**self.b1 * e1**self.b2 * e2**self.b3 - 1)
        accept = factor >= self.accept_safety
        if accept:
            self.inverse_errors = [e0, e0, e1]
        self.h *= factor
        return accept


@torch.no_grad()
def sample_dpm_adaptive(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 0.0,
    s_noise: float = 1.0,
    order: int = 3,
    rtol: float = 0.05,
    atol: float = 0.0078,
    h_init: float = 0.05,
    pcoeff: float = 0.0,
    icoeff: float = 1.0,
    dcoeff: float = 0.0,
    accept_safety: float = 0.81,
) -> torch.Tensor:
    """Adaptive DPM-Solver: embedded orders (2, 3) or (1, 2), error measured against
    atol + rtol * |x|, steps proposed by a PID controller. `step` in the reports counts
    accepted steps; `total` is only the nominal len(sigmas) - 1."""
    if order not in (2, 3):
        raise ValueError(f"DPM adaptive order must be 2 or 3, got {order}")
    t, t_end = _range(sigmas, "DPM adaptive")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    controller = PIDController(h_init, pcoeff, icoeff, dcoeff, 1.5 if eta else order, accept_safety)
    x_previous, accepted = x, 0
    while t < t_end - 1e-5:
        t_next = torch.minimum(t_end, t + controller.h)
        t_target, sigma_up = _ancestral_target(t, t_next, t_end, eta)
        solver = _Solver(model)
        if order == 2:
            x_low, x_high = solver.step_1(x, t, t_target), solver.step_2(x, t, t_target)
        else:
            x_low = solver.step_2(x, t, t_target, r1=1 / 3)
            x_high = solver.step_3(x, t, t_target)
        delta = torch.maximum(
            torch.full_like(x, atol), rtol * torch.maximum(x_low.abs(), x_previous.abs())
        )
        error = float(torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5)
        if controller.propose(error):
            denoised = x - _sigma(t) * solver.cache["eps"]
            x_previous = x_low.to(x.dtype)
            x = x_high.to(x.dtype)
            if sigma_up > 0:
                x = x + noise_sampler(_sigma(t), _sigma(t_next)) * s_noise * sigma_up
            report(callback, accepted, len(sigmas) - 1, x, denoised, _sigma(t), _sigma(t_next))
            t, accepted = t_next, accepted + 1
    return x
