"""The discrete noise schedule of a DDPM-trained model, seen as sigmas.

Stable Diffusion was trained with 1000 timesteps and "scaled linear" betas from 0.00085 to
0.012. In the sigma (variance-exploding) view used by k-diffusion-style samplers,
`sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t)`; `sigma_to_t` and `t_to_sigma`
interpolate between the discrete timesteps linearly in log-sigma.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SD_BETA_START = 0.00085
SD_BETA_END = 0.012
SD_TIMESTEPS = 1000


def scaled_linear_betas(
    start: float = SD_BETA_START, end: float = SD_BETA_END, steps: int = SD_TIMESTEPS
) -> torch.Tensor:
    return torch.linspace(start**0.5, end**0.5, steps, dtype=torch.float64) ** 2


def alphas_cumprod_from_betas(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1.0 - betas, dim=0)


@dataclass(frozen=True)
class DiscreteSchedule:
    """Sigmas of a model's training timesteps, ascending (t = 0 is the least noisy)."""

    sigmas: torch.Tensor  # float32, shape [timesteps]

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: torch.Tensor) -> DiscreteSchedule:
        # As in A1111: alphas_cumprod computed in float64, kept as a float32 buffer, and
        # the sigmas derived from that float32 buffer.
        alphas_cumprod = alphas_cumprod.to(torch.float32)
        return cls(((1 - alphas_cumprod) / alphas_cumprod) ** 0.5)

    @classmethod
    def stable_diffusion(cls) -> DiscreteSchedule:
        return cls.from_alphas_cumprod(alphas_cumprod_from_betas(scaled_linear_betas()))

    @property
    def log_sigmas(self) -> torch.Tensor:
        return self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    @property
    def timesteps(self) -> int:
        return len(self.sigmas)

    def sigma_to_t(self, sigma: torch.Tensor, quantize: bool = False) -> torch.Tensor:
        """Fractional timestep of each sigma (log-linear interpolation, clamped)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        log_sigmas = self.log_sigmas.to(sigma.device)
        log_sigma = sigma.log()
        dists = log_sigma - log_sigmas[:, None] if sigma.ndim else log_sigma - log_sigmas
        if quantize:
            return dists.abs().argmin(dim=0).view(sigma.shape)
        low = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=len(log_sigmas) - 2)
        high = low + 1
        weight = ((log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[high])).clamp(0, 1)
        return ((1 - weight) * low + weight * high).view(sigma.shape)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32)
        log_sigmas = self.log_sigmas.to(t.device)
        low, high, weight = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - weight) * log_sigmas[low] + weight * log_sigmas[high]).exp()
