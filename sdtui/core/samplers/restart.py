"""Restart sampling (Xu et al. 2023, "Restart Sampling for Improving Generative Processes").

Heun steps follow the schedule; at chosen points the sampler adds noise to jump back up to
a higher sigma and re-integrates that stretch with Heun `times` more times. As A1111 sets it
up when no restart list is given: with 20+ sigmas, the main schedule is rebuilt as a Karras
schedule with fewer steps, and one restart segment (9 steps, once; with 36+ sigmas,
len(sigmas) // 4 steps, twice) goes from the step nearest sigma 0.1 up to sigma 2.
"""

from __future__ import annotations

import itertools

import torch

from sdtui.core.samplers.common import (
    Callback,
    Denoiser,
    NoiseSampler,
    check_sigmas,
    default_noise_sampler,
    denoise,
    report,
    to_d,
)
from sdtui.core.schedules import karras

# restart list: {sigma where the restart starts: (steps + 1, times, sigma to jump up to)}
RestartList = dict[float, tuple[int, int, float]]


def default_restart_plan(sigmas: torch.Tensor) -> tuple[torch.Tensor, RestartList]:
    if len(sigmas) < 20:
        return sigmas, {}
    steps, times = 9, 1
    if len(sigmas) >= 36:
        steps, times = len(sigmas) // 4, 2
    rebuilt = karras(len(sigmas) - steps * times, float(sigmas[-2]), float(sigmas[0]))
    return rebuilt.to(sigmas), {0.1: (steps + 1, times, 2.0)}


def restart_step_list(sigmas: torch.Tensor, restart_list: RestartList) -> list[tuple]:
    """The (sigma, sigma_next) pairs to integrate, restart segments included."""
    at_index = {int((sigmas - key).abs().argmin()): value for key, value in restart_list.items()}
    steps = []
    for i in range(len(sigmas) - 1):
        steps.append((sigmas[i], sigmas[i + 1]))
        if i + 1 not in at_index:
            continue
        restart_steps, times, sigma_max = at_index[i + 1]
        low, high = i + 1, int((sigmas - sigma_max).abs().argmin())
        if high < low:
            segment = karras(restart_steps, float(sigmas[low]), float(sigmas[high]))[:-1]
            segment = segment.to(sigmas)
            steps.extend(list(itertools.pairwise(segment)) * times)
    return steps


@torch.no_grad()
def sample_restart(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    callback: Callback | None = None,
    noise_sampler: NoiseSampler | None = None,
    s_noise: float = 1.0,
    restart_list: RestartList | None = None,
) -> torch.Tensor:
    check_sigmas(sigmas, "Restart")
    noise_sampler = noise_sampler or default_noise_sampler(x)
    if restart_list is None:
        sigmas, restart_list = default_restart_plan(sigmas)
    steps = restart_step_list(sigmas, restart_list)
    last_sigma = None
    for i, (sigma, sigma_next) in enumerate(steps):
        if last_sigma is not None and last_sigma < sigma:  # jump back up: add noise
            x = x + noise_sampler(last_sigma, sigma) * s_noise * (sigma**2 - last_sigma**2) ** 0.5
        denoised = denoise(model, x, sigma)
        d = to_d(x, sigma, denoised)
        if sigma_next == 0:
            x = x + d * (sigma_next - sigma)
        else:
            x_2 = x + d * (sigma_next - sigma)
            d_2 = to_d(x_2, sigma_next, denoise(model, x_2, sigma_next))
            x = x + (d + d_2) / 2 * (sigma_next - sigma)
        last_sigma = sigma_next
        report(callback, i, len(steps), x, denoised, sigma, sigma_next)
    return x
