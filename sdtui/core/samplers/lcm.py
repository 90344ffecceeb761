"""LCM (Luo et al. 2023, "Latent Consistency Models"): multistep consistency sampling.

Each step jumps straight to the model's clean prediction and, unless it is the last,
re-noises it to the next sigma with fresh noise. The consistency boundary condition
(c_skip, c_out) belongs to the denoiser (`sdtui.core.denoisers`, `lcm_boundary=True`).
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
    report,
)


@torch.no_grad()
def sample_lcm(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
) -> torch.Tensor:
    check_sigmas(sigmas, "LCM")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(model, x, sigma)
        x = denoised
        if sigma_next > 0:
            x = x + noise_sampler(sigma, sigma_next) * sigma_next
        report(callback, i, total, x, denoised, sigma, sigma_next)
    return x
