"""Adapters from a UNet-like noise model to a k-diffusion denoiser D(x, sigma) -> denoised.

A DDPM-trained model sees x_vp = alpha * x0 + sigma_vp * eps at an integer timestep t. The
samplers work in k-diffusion's scaling x = x0 + sigma * eps, so x_vp = x / sqrt(1 + sigma^2)
and sigma -> t goes through the model's `DiscreteSchedule` (log-linear interpolation, or the
nearest timestep when `quantize`, A1111's "Enable quantization in K samplers").

- eps-prediction (SD 1.x, SD 2.x base, SDXL): denoised = x - sigma * eps.
- v-prediction (SD 2.x 768-v): v = alpha * eps - sigma_vp * x0, so
  denoised = x / (1 + sigma^2) - v * sigma / sqrt(1 + sigma^2).
- LCM's consistency boundary condition (c_skip, c_out with sigma_data 0.5 and timestep
  scaling 10) is applied on top when `lcm_boundary` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from sdtui.core.discrete import DiscreteSchedule

PREDICTIONS = ("epsilon", "v_prediction")
EpsModel = Callable[..., torch.Tensor]  # eps_model(x_scaled, t, **cond) -> eps (or v)


def _expand(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(x.shape[0])
    return sigma.reshape(-1, *[1] * (x.ndim - 1))


def lcm_boundary_scalings(
    t: torch.Tensor, sigma_data: float = 0.5, timestep_scaling: float = 10.0
) -> tuple[torch.Tensor, torch.Tensor]:
    scaled = t * timestep_scaling
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


@dataclass
class DiscreteDenoiser:
    """D(x, sigma, **cond) for an eps- or v-predicting model on discrete timesteps."""

    model: EpsModel
    schedule: DiscreteSchedule
    prediction: str = "epsilon"
    quantize: bool = False
    lcm_boundary: bool = False

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(
                f"unknown prediction type {self.prediction!r}; known: {', '.join(PREDICTIONS)}"
            )

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.schedule.sigma_to_t(sigma.float().cpu(), quantize=self.quantize)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        s = _expand(sigma, x)
        t = self.sigma_to_t(sigma).to(x.device)
        out = self.model(x / (s**2 + 1) ** 0.5, t, **cond)
        if self.prediction == "epsilon":
            denoised = x - s * out
        else:
            denoised = x / (s**2 + 1) - out * s / (s**2 + 1) ** 0.5
        if self.lcm_boundary:
            c_skip, c_out = (_expand(c, x) for c in lcm_boundary_scalings(t.to(x.dtype)))
            denoised = c_skip * x / (s**2 + 1) ** 0.5 + c_out * denoised
        return denoised


def eps_denoiser(model: EpsModel, schedule: DiscreteSchedule, **options: Any) -> DiscreteDenoiser:
    return DiscreteDenoiser(model, schedule, "epsilon", **options)


def v_denoiser(model: EpsModel, schedule: DiscreteSchedule, **options: Any) -> DiscreteDenoiser:
    return DiscreteDenoiser(model, schedule, "v_prediction", **options)
