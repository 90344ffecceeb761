"""DPM-Solver++ samplers (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
Diffusion Probabilistic Models"), in the data-prediction form and the sigma (VE) view.

With t = -log(sigma) and h = t_next - t, the exact solution of the probability-flow ODE is
x(t_next) = (sigma_next / sigma) x(t) + integral of the denoised prediction weighted by
e^(t - t_next); the solvers below approximate the denoised prediction over the step by
1 (first order), 2 or 3 (multistep) previous evaluations. The SDE variants (SDE-DPM-Solver++)
also inject noise with weight eta; eta = 0 gives the ODE solvers back.
"""

from __future__ import annotations

import torch

from sdtui.core.samplers.brownian import brownian_noise_sampler
from sdtui.core.samplers.common import (
    Callback,
    Denoiser,
    NoiseSampler,
    check_sigmas,
    default_noise_sampler,
    denoise,
    get_ancestral_step,
    report,
    to_d,
)


def _t(sigma: torch.Tensor) -> torch.Tensor:
    return -sigma.log()


def _sigma(t: torch.Tensor) -> torch.Tensor:
    return (-t).exp()


def _first_order(x: torch.Tensor, sigma, sigma_next, denoised) -> torch.Tensor:
    """DPM-Solver++(1) from sigma to sigma_next (equals a DDIM step); exact at sigma 0."""
    if sigma_next == 0:
        return denoised
    h = _t(sigma_next) - _t(sigma)
    return (sigma_next / sigma) * x - torch.expm1(-h) * denoised


@torch.no_grad()
def sample_dpmpp_2m(
    model: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback | None = None
) -> torch.Tensor:
    """DPM-Solver++(2M): second-order multistep; the first and last steps are first order."""
    check_sigmas(sigmas, "DPM++ 2M")
    total = len(sigmas) - 1
    old_denoised = None
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        if old_denoised is None or sigma_next == 0:
            x = _first_order(x, sigma, sigma_next, denoised)
        else:
            h = _t(sigma_next) - _t(sigma)
            r = (_t(sigma) - _t(sigmas[i - 1])) / h
            corrected = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = _first_order(x, sigma, sigma_next, corrected)
        old_denoised = denoised
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


@torch.no_grad()
def sample_dpmpp_2s_ancestral(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """Ancestral DPM-Solver++(2S): a single-step second-order solve (midpoint in t) down to
    sigma_down, then fresh noise of size sigma_up."""
    check_sigmas(sigmas, "DPM++ 2S a")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        sigma_down, sigma_up = get_ancestral_step(sigma, sigma_next, eta)
        if sigma_down == 0:
            x = x + to_d(x, sigma, denoised) * (sigma_down - sigma)
        else:
            t, t_down = _t(sigma), _t(sigma_down)
            sigma_mid = _sigma(t + (t_down - t) / 2)
            x_2 = _first_order(x, sigma, sigma_mid, denoised)
            x = _first_order(x, sigma, sigma_down, denoise(model, x_2, sigma_mid))
        if sigma_next > 0:
            x = x + noise_sampler(sigma, sigma_next) * s_noise * sigma_up
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


def _sde_step(x, sigma, target, noise_sampler, eta, s_noise, denoised) -> torch.Tensor:
    """First-order solve from sigma to the ancestral sigma_down of `target`, then noise."""
    sigma_down, sigma_up = get_ancestral_step(sigma, target, eta)
    x = _first_order(x, sigma, sigma_down, denoised)
    return x + noise_sampler(sigma, target) * s_noise * sigma_up


@torch.no_grad()
def sample_dpmpp_sde(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    r: float = 0.5,
) -> torch.Tensor:
    """DPM-Solver++ (stochastic, single-step, second order): an ancestral half step to
    t + r h, then the full ancestral step with the two predictions combined. Two model
    calls per step except the last (an Euler step to sigma 0). Brownian noise by default."""
    check_sigmas(sigmas, "DPM++ SDE")
    noise_sampler = noise_sampler or brownian_noise_sampler(x, sigmas)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        if sigma_next == 0:
            x = x + to_d(x, sigma, denoised) * (sigma_next - sigma)
        else:
            t, t_next = _t(sigma), _t(sigma_next)
            sigma_s = _sigma(t + r * (t_next - t))
            x_2 = _sde_step(x, sigma, sigma_s, noise_sampler, eta, s_noise, denoised)
            denoised_2 = denoise(model, x_2, sigma_s)
            weight = 1 / (2 * r)
            combined = (1 - weight) * denoised + weight * denoised_2
            x = _sde_step(x, sigma, sigma_next, noise_sampler, eta, s_noise, combined)
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    solver_type: str = "midpoint",
) -> torch.Tensor:
    """SDE-DPM-Solver++(2M); `solver_type` "midpoint" or "heun" picks the second-order
    correction ("DPM++ 2M SDE" and "DPM++ 2M SDE Heun")."""
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"DPM++ 2M SDE solver_type must be 'midpoint' or 'heun': {solver_type!r}")
    check_sigmas(sigmas, "DPM++ 2M SDE")
    noise_sampler = noise_sampler or brownian_noise_sampler(x, sigmas)
    total = len(sigmas) - 1
    old_denoised, h_last = None, None
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        if sigma_next == 0:
            x, h = denoised, None
        else:
            h = _t(sigma_next) - _t(sigma)
            eta_h = eta * h
            phi = -torch.expm1(-h - eta_h)
            x = (sigma_next / sigma) * (-eta_h).exp() * x + phi * denoised
            if old_denoised is not None:
                difference = (denoised - old_denoised) * (h / h_last)
                if solver_type == "heun":
                    x = x + (phi / (-h - eta_h) + 1) * difference
                else:
                    x = x + 0.5 * phi * difference
            if eta:
                scale = sigma_next * (-torch.expm1(-2 * eta_h)).sqrt() * s_noise
                x = x + noise_sampler(sigma, sigma_next) * scale
        old_denoised, h_last = denoised, h
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


@torch.no_grad()
def sample_dpmpp_3m_sde(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """SDE-DPM-Solver++(3M): third-order multistep (warming up through orders 1 and 2)."""
    check_sigmas(sigmas, "DPM++ 3M SDE")
    noise_sampler = noise_sampler or brownian_noise_sampler(x, sigmas)
    total = len(sigmas) - 1
    history: list[tuple[torch.Tensor, torch.Tensor]] = []  # (denoised, h), newest first
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = _t(sigma_next) - _t(sigma)
            h_eta = h * (eta + 1)
            x = (-h_eta).exp() * x - torch.expm1(-h_eta) * denoised
            phi_2 = torch.expm1(-h_eta) / h_eta + 1
            if len(history) >= 2:
                (denoised_1, h_1), (denoised_2, h_2) = history[0], history[1]
                r0, r1 = h_1 / h, h_2 / h
                d1_0, d1_1 = (denoised - denoised_1) / r0, (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif history:
                x = x + phi_2 * (denoised - history[0][0]) / (history[0][1] / h)
            if eta:
                scale = sigma_next * (-torch.expm1(-2 * h * eta)).sqrt() * s_noise
                x = x + noise_sampler(sigma, sigma_next) * scale
            history = [(denoised, h), *history[:1]]
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x
