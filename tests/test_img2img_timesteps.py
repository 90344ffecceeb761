"""img2img and hires fix with A1111's timestep samplers (DDIM, PLMS, UniPC), worked by hand.

A1111 1.10 (`modules/sd_samplers_timesteps.py`, CompVisSampler.sample_img2img):

    steps, t_enc = setup_img2img_steps(p, steps)
    timesteps = clip(range(0, 1000, 1000 // steps) + 1, 0, 999)     # 1, 101, ..., 901
    timesteps_sched = timesteps[:t_enc]
    xi = x * sqrt(alphas_cumprod[timesteps[t_enc]]) + noise * sqrt(1 - alphas_cumprod[...])

so at 10 steps and strength 0.5 (t_enc 5) the sampler's schedule is timesteps 401, 301,
201, 101, 1 -- DDIM and PLMS loop `range(len(timesteps) - 1)` (`sd_samplers_timesteps_impl`),
4 model calls ending at timestep 1; UniPC integrates on to timestep 0 -- but the latents it
starts from are noised to timestep 501, one above its first. The k-diffusion samplers start at
the sigma they noise to (`sigmas[steps - t_enc - 1:]`). The oracle is SD's scaled-linear
beta schedule computed here in float64.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import pytest
import torch
from PIL import Image

from sdtui.core.discrete import DiscreteSchedule
from sdtui.engine import img2img as img2img_module
from sdtui.engine.img2img import img2img
from sdtui.engine.options import EngineOptions
from sdtui.engine.sampling import plan_sigmas
from sdtui.engine.upscale import (
    img2img_noise_level,
    img2img_sigmas,
    img2img_steps,
    noised_latents,
)
from sdtui.models.loader import load_checkpoint
from sdtui.params.schema import img2img_defaults
from sdtui.params.validate import resolve
from sdtui.plugins import PluginHost
from tests.tiny_models import write_tiny_checkpoint

TIMESTEP_SAMPLERS = ("DDIM", "PLMS", "UniPC")


@cache
def host() -> PluginHost:
    return PluginHost(load_entry_points=False)


@cache
def alphas_cumprod() -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0)


def sigma(t: int) -> float:
    alpha = float(alphas_cumprod()[t])
    return ((1 - alpha) / alpha) ** 0.5


def schedule(name: str, steps: int) -> torch.Tensor:
    sampler = host().samplers.get(name)
    model = DiscreteSchedule.stable_diffusion()
    return plan_sigmas(sampler, "Automatic", steps, model, host().schedules).sigmas


def approx(values: list[float]) -> Any:
    return pytest.approx(values, rel=1e-4)


@pytest.mark.parametrize("name", TIMESTEP_SAMPLERS)
def test_img2img_at_half_strength_runs_a1111s_timesteps(name: str) -> None:
    total, t_enc = img2img_steps(10, 0.5, fix_steps=False)
    assert (total, t_enc) == (10, 5)
    sigmas = schedule(name, total)
    run = img2img_sigmas(host().samplers.get(name), sigmas, total, t_enc)
    tail = [0] if name == "UniPC" else []
    assert run.tolist() == approx([sigma(t) for t in (401, 301, 201, 101, 1, *tail)])
    assert img2img_noise_level(sigmas, total, t_enc) == pytest.approx(sigma(501), rel=1e-4)


@pytest.mark.parametrize("name", TIMESTEP_SAMPLERS)
def test_hires_fix_runs_a1111s_timesteps(name: str) -> None:
    total, t_enc = img2img_steps(10, 0.5)  # hires steps 10: a schedule of 20, t_enc 9
    assert (total, t_enc) == (20, 9)
    sigmas = schedule(name, total)  # timesteps 1, 51, ..., 951
    run = img2img_sigmas(host().samplers.get(name), sigmas, total, t_enc)
    tail = [sigma(0)] if name == "UniPC" else []
    assert run.tolist() == approx([sigma(t) for t in range(401, 0, -50)] + tail)
    assert img2img_noise_level(sigmas, total, t_enc) == pytest.approx(sigma(451), rel=1e-4)


@pytest.mark.parametrize("name", TIMESTEP_SAMPLERS)
def test_txt2img_runs_a1111s_timesteps(name: str) -> None:
    """20 steps: timesteps 951, 901, ..., 1; A1111's DDIM / PLMS make 19 model calls and
    stop at timestep 1, UniPC goes on to timestep 0."""
    sigmas = schedule(name, 20)
    tail = [sigma(0)] if name == "UniPC" else []
    assert sigmas.tolist() == approx([sigma(t) for t in range(951, 0, -50)] + tail)


def test_the_model_sees_the_latents_noised_to_the_timestep_above_the_first() -> None:
    generator = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(2, 1, 4, 8, 8, generator=generator, dtype=torch.float64)
    first, level = sigma(401), sigma(501)
    x = noised_latents(latents, noise, level, first)
    model_input = x / (1 + first**2) ** 0.5  # what the denoiser gives the UNet at `first`
    alpha = float(alphas_cumprod()[501])
    expected = latents * alpha**0.5 + noise * (1 - alpha) ** 0.5  # A1111's xi
    assert torch.allclose(model_input, expected, atol=1e-6)


def test_k_diffusion_samplers_start_where_they_noise() -> None:
    sigmas = schedule("Euler", 10)
    run = img2img_sigmas(host().samplers.get("Euler"), sigmas, 10, 5)
    assert torch.equal(run, sigmas[4:])  # A1111's sigmas[steps - t_enc - 1:]
    level = img2img_noise_level(sigmas, 10, 5)
    assert level == float(sigmas[4])
    latents, noise = torch.ones(1, 4, 2, 2), torch.full((1, 4, 2, 2), 2.0)
    assert torch.equal(noised_latents(latents, noise, level, level), latents + noise * level)


class Started(Exception):
    """Raised by the spy once the img2img pass's start is known (no sampling needed)."""


@cache
def tiny() -> Any:
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="sdtui-timesteps-"))
    return load_checkpoint(write_tiny_checkpoint(folder / "sd1.safetensors", "sd1"))


def start_of(monkeypatch, sampler: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigmas, x) the engine's img2img pass starts from, 10 steps at strength 0.5, with the
    noise multiplier 0 so x is the init latents as the sampler sees them."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def spy(run: Any, used: Any, sigmas: torch.Tensor, x: torch.Tensor, *args: Any, **kw: Any):
        seen.append((sigmas, x))
        raise Started

    monkeypatch.setattr(img2img_module, "denoise_pass", spy)
    base = dict(prompt="x", width=64, height=64, steps=10, seed=3, variation_seed=0)
    params = dataclasses.replace(
        img2img_defaults(), **base, sampler=sampler, denoising_strength=0.5,
        initial_noise_multiplier=0.0,
    )  # fmt: skip
    options = EngineOptions(host().samplers, host().schedules)
    with pytest.raises(Started):
        img2img(tiny(), resolve(params), options, [Image.new("RGB", (64, 64), "teal")])
    return seen[0]


def test_the_engine_starts_ddim_from_a1111s_noise_level(monkeypatch) -> None:
    ddim_sigmas, ddim_x = start_of(monkeypatch, "DDIM")
    euler_sigmas, euler_x = start_of(monkeypatch, "Euler")
    assert ddim_sigmas.tolist() == approx([sigma(t) for t in (401, 301, 201, 101, 1)])
    assert len(euler_sigmas) == 7  # t_enc + 1 steps
    # without noise, Euler starts from the init latents; DDIM from them at timestep 501's
    # scale, seen at timestep 401: x / sqrt(1 + sigma_401^2) = sqrt(alpha_501) x init
    scale = ((1 + sigma(401) ** 2) / (1 + sigma(501) ** 2)) ** 0.5
    assert torch.allclose(ddim_x, euler_x * scale, rtol=1e-5, atol=1e-6)
