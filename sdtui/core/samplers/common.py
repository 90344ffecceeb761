"""Helpers shared by the samplers: the step report, ancestral step sizes, churn, noise.

Conventions (k-diffusion's): `model(x, sigma)` is a denoiser that takes a latent and a
per-sample sigma tensor of shape [batch] and returns the predicted clean latent. `x` starts
as noise * sigmas[0]; `sigmas` is a descending 1-D tensor, usually ending in 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseSampler = Callable[[Any, Any], torch.Tensor]
Callback = Callable[["StepInfo"], None]


@dataclass(frozen=True)
class StepInfo:
    """What a sampler reports after each step (for progress, previews and interrupts)."""

    step: int  # 0-based index of the step just finished
    total: int  # number of steps the sampler will take
    x: torch.Tensor  # the latent after the step
    denoised: torch.Tensor  # the model's latest prediction of the clean latent
    sigma: float  # noise level the step started from
    sigma_next: float  # noise level the step went to


def report(
    callback: Callback | None,
    step: int,
    total: int,
    x: torch.Tensor,
    denoised: torch.Tensor,
    sigma: Any,
    sigma_next: Any,
) -> None:
    """Call `callback` (if any); whatever it raises (an interrupt) propagates."""
    if callback is not None:
        callback(StepInfo(step, total, x, denoised, float(sigma), float(sigma_next)))


def denoise(model: Denoiser, x: torch.Tensor, sigma: Any) -> torch.Tensor:
    """Call the denoiser with sigma broadcast to one value per sample (at least float32,
    so half-precision latents do not round the noise level)."""
    dtype = torch.promote_types(x.dtype, torch.float32)
    sigma = torch.as_tensor(sigma, dtype=dtype, device=x.device)
    return model(x, sigma.expand(x.shape[0]))


def to_d(x: torch.Tensor, sigma: Any, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE's derivative dx/dsigma = (x - D(x, sigma)) / sigma."""
    return (x - denoised) / sigma


def get_ancestral_step(
    sigma: torch.Tensor, sigma_next: torch.Tensor, eta: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a step sigma -> sigma_next into a deterministic step down to `sigma_down`
    followed by fresh noise of size `sigma_up` (sigma_down^2 + sigma_up^2 = sigma_next^2).
    eta = 1 is ancestral sampling (DDPM); eta = 0 is the deterministic ODE step."""
    if not eta:
        return sigma_next, torch.zeros_like(sigma_next)
    variance = (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2).clamp(min=0)
    sigma_up = torch.minimum(sigma_next, eta * variance**0.5)
    sigma_down = (sigma_next**2 - sigma_up**2).clamp(min=0) ** 0.5
    return sigma_down, sigma_up


def default_noise_sampler(x: torch.Tensor) -> NoiseSampler:
    """Fresh standard normal noise like `x` at every call (from torch's global RNG)."""
    return lambda sigma, sigma_next: torch.randn_like(x)


def churn(
    x: torch.Tensor,
    sigma: torch.Tensor,
    steps: int,
    noise_sampler: NoiseSampler,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float | None = None,
    s_noise: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Karras et al. 2022 (EDM) "churn": raise the noise level of x from sigma to
    sigma_hat = sigma * (1 + gamma) before the step. s_tmax of None or 0 means infinity."""
    s_tmax = s_tmax or math.inf
    in_range = s_tmin <= float(sigma) <= s_tmax
    gamma = min(s_churn / steps, 2**0.5 - 1) if s_churn and in_range else 0.0
    if gamma <= 0:
        return x, sigma
    sigma_hat = sigma * (gamma + 1)
    noise = noise_sampler(sigma, sigma_hat) * s_noise
    return x + noise * (sigma_hat**2 - sigma**2) ** 0.5, sigma_hat


def check_sigmas(sigmas: torch.Tensor, sampler: str) -> None:
    if sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError(
            f"{sampler}: sigmas must be a 1-D tensor of at least 2 values (steps + 1), "
            f"got shape {tuple(sigmas.shape)}"
        )
