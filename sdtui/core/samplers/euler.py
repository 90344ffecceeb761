"""Euler, Heun and DPM2 (Karras et al. 2022, "Elucidating the Design Space of
Diffusion-Based Generative Models"), plus their ancestral variants.

All integrate the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma; Euler and Heun
support EDM's "churn" (s_churn, s_tmin, s_tmax, s_noise). DPM2 is the midpoint method with
the midpoint taken in log-sigma. The ancestral variants take the deterministic step to
sigma_down and add fresh noise of size sigma_up (see `get_ancestral_step`).
"""

from __future__ import annotations

import torch

from sdtui.core.samplers.common import (
    Callback,
    Denoiser,
    NoiseSampler,
    check_sigmas,
    churn,
    default_noise_sampler,
    denoise,
    get_ancestral_step,
    report,
    to_d,
)


@torch.no_grad()
def sample_euler(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float | None = None,
    s_noise: float = 1.0,
) -> torch.Tensor:
    check_sigmas(sigmas, "Euler")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x, sigma_hat = churn(x, sigma, total, noise_sampler, s_churn, s_tmin, s_tmax, s_noise)
        denoised = denoise(model, x, sigma_hat)
        x = x + to_d(x, sigma_hat, denoised) * (sigma_next - sigma_hat)
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


@torch.no_grad()
def sample_heun(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float | None = None,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """Heun's second-order method (EDM Algorithm 2); the last step to sigma 0 is Euler."""
    check_sigmas(sigmas, "Heun")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x, sigma_hat = churn(x, sigma, total, noise_sampler, s_churn, s_tmin, s_tmax, s_noise)
        denoised = denoise(model, x, sigma_hat)
        d = to_d(x, sigma_hat, denoised)
        if sigma_next == 0:
            x = x + d * (sigma_next - sigma_hat)
        else:
            x_2 = x + d * (sigma_next - sigma_hat)
            d_2 = to_d(x_2, sigma_next, denoise(model, x_2, sigma_next))
            x = x + (d + d_2) / 2 * (sigma_next - sigma_hat)
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


def _log_midpoint(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    return (sigma.log() + sigma_next.log()).div(2).exp()


@torch.no_grad()
def sample_dpm_2(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float | None = None,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """Midpoint method, midpoint at the geometric mean of the two sigmas."""
    check_sigmas(sigmas, "DPM2")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        x, sigma_hat = churn(x, sigma, total, noise_sampler, s_churn, s_tmin, s_tmax, s_noise)
        denoised = denoise(model, x, sigma_hat)
        x = _dpm_2_step(model, x, sigma_hat, sigma_next, denoised)
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


def _dpm_2_step(
    model: Denoiser, x: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor, denoised
) -> torch.Tensor:
    d = to_d(x, sigma, denoised)
    if target == 0:
        return x + d * (target - sigma)
    sigma_mid = _log_midpoint(sigma, target)
    x_2 = x + d * (sigma_mid - sigma)
    d_2 = to_d(x_2, sigma_mid, denoise(model, x_2, sigma_mid))
    return x + d_2 * (target - sigma)


@torch.no_grad()
def sample_euler_ancestral(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    check_sigmas(sigmas, "Euler a")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        sigma_down, sigma_up = get_ancestral_step(sigma, sigma_next, eta)
        x = x + to_d(x, sigma, denoised) * (sigma_down - sigma)
        if sigma_next > 0:
            x = x + noise_sampler(sigma, sigma_next) * s_noise * sigma_up
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


@torch.no_grad()
def sample_dpm_2_ancestral(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    check_sigmas(sigmas, "DPM2 a")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        sigma_down, sigma_up = get_ancestral_step(sigma, sigma_next, eta)
        x = _dpm_2_step(model, x, sigma, sigma_down, denoised)
        if sigma_next > 0:
            x = x + noise_sampler(sigma, sigma_next) * s_noise * sigma_up
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x
