"""A1111's "timestep" samplers (DDIM, DDIM CFG++, PLMS), written in the sigma view.

With x in k-diffusion scaling (x = x_vp * sqrt(1 + sigma^2)) and eps = (x - D(x, sigma)) /
sigma, DDIM (Song et al. 2021) is x_next = D + sqrt(sigma_next^2 - sigma_up^2) * eps +
sigma_up * z, where DDIM's eta noise works out to exactly the ancestral sigma_up; with
eta = 0 it is Euler's method. PLMS (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion
Models") is DDIM's transfer with eps replaced by an Adams-Bashforth combination of the last
eps, after a first pseudo improved-Euler step.

A1111 runs these over the model's own timesteps (the "DDIM" schedule: 1, 1 + 1000 // steps,
...), starts from unit-variance VP noise (x = noise * sqrt(1 + sigma_max^2) here) and
stops at timestep 0 (sigma_min of the model, not 0). The engine reproduces that by passing
`sigmas = model.sigmas[timesteps].flip + [model.sigma_min]`; a schedule ending in 0 also
works and finishes with a clean prediction.
"""

from __future__ import annotations

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
    to_d,
)

# Adams-Bashforth weights (newest first) for 2, 3 and 4 previous eps.
ADAMS_BASHFORTH = {
    2: (3 / 2, -1 / 2),
    3: (23 / 12, -16 / 12, 5 / 12),
    4: (55 / 24, -59 / 24, 37 / 24, -9 / 24),
}


def _ddim_step(x, sigma, sigma_next, denoised, eps, noise_sampler, eta) -> torch.Tensor:
    sigma_down, sigma_up = get_ancestral_step(sigma, sigma_next, eta)
    x = denoised + eps * sigma_down
    if eta and sigma_next > 0:
        x = x + noise_sampler(sigma, sigma_next) * sigma_up
    return x


@torch.no_grad()
def sample_ddim(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 0.0,
) -> torch.Tensor:
    check_sigmas(sigmas, "DDIM")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        eps = to_d(x, sigma, denoised)
        x = _ddim_step(x, sigma, sigma_next, denoised, eps, noise_sampler, eta)
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


@torch.no_grad()
def sample_ddim_cfgpp(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM CFG++ (Chung et al. 2024): the clean prediction uses classifier-free guidance,
    but the renoising direction is the *unconditional* eps. CFG happens in the engine, so
    `model` must expose, after each call, the unconditional prediction as the attribute
    `last_uncond_denoised` (a tensor like x). A1111 multiplies the CFG scale by 1 / 12.5
    for this sampler (the plugin entry's `cfg_scale_multiplier`); the engine applies it.
    """
    check_sigmas(sigmas, "DDIM CFG++")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        uncond = getattr(model, "last_uncond_denoised", None)
        if uncond is None:
            raise ValueError(
                "DDIM CFG++ needs the unconditional prediction: the denoiser must set "
                "`last_uncond_denoised` on each call (the engine's CFG denoiser does)"
            )
        eps_uncond = to_d(x, sigma, uncond)
        x = _ddim_step(x, sigma, sigma_next, denoised, eps_uncond, noise_sampler, eta)
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x


@torch.no_grad()
def sample_plms(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
) -> torch.Tensor:
    """PLMS: the first step is a pseudo improved Euler (Heun on eps, one extra model call),
    later steps use Adams-Bashforth of order 2, 3, then 4 over the previous steps' eps."""
    check_sigmas(sigmas, "PLMS")
    total = len(sigmas) - 1
    old_eps: list[torch.Tensor] = []  # newest first
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        eps = to_d(x, sigma, denoised)
        if not old_eps:
            x_next = denoised + eps * sigma_next
            if sigma_next > 0:
                eps_next = to_d(x_next, sigma_next, denoise(model, x_next, sigma_next))
                eps_prime = (eps + eps_next) / 2
            else:
                eps_prime = eps
        else:
            history = [eps, *old_eps][:4]
            weights = ADAMS_BASHFORTH[len(history)]
            eps_prime = sum(w * e for w, e in zip(weights, history, strict=True))
        x = x + eps_prime * (sigma_next - sigma)
        old_eps = [eps, *old_eps][:3]
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x
