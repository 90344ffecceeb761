"""A1111's "Extra noise" (img2img_extra_noise), worked by hand.

A1111 1.10 adds the pass's own noise once more after noising the init latents:

    k-diffusion (sd_samplers_kdiffusion.sample_img2img):
        xi = x + noise * sigma_sched[0];           xi += noise * extra
    timestep samplers (sd_samplers_timesteps.sample_img2img):
        xi = x * sqrt(a) + noise * sqrt(1 - a);    xi += noise * extra * sqrt(a)

where `noise` is already scaled by the noise multiplier (img2img), and hires fix's second
pass goes through the same sample_img2img. The oracle noise is A1111's CPU noise for the
seed, torch.randn from a generator seeded with it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from PIL import Image

from sdtui.engine import img2img as img2img_module
from sdtui.engine import txt2img as txt2img_module
from sdtui.engine.img2img import img2img
from sdtui.engine.options import EngineOptions
from sdtui.engine.txt2img import txt2img
from sdtui.params.codec import RunFacts, infotext_from_params, params_from_infotext
from sdtui.params.schema import GenerationParams, img2img_defaults
from sdtui.params.validate import resolve
from tests.test_img2img_timesteps import host, tiny  # one tiny checkpoint for both files

SEED = 3


def seed_noise(height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SEED)
    return torch.randn((1, 4, height // 8, width // 8), generator=generator)


class Started(Exception):
    """Raised by the spy once the pass's starting latents are known."""


def img2img_start(monkeypatch, sampler: str, extra: float, multiplier: float) -> Any:
    """(sigmas, x) img2img's pass starts from: 10 steps at strength 0.5, 64 px."""
    seen: list[Any] = []

    def spy(run: Any, used: Any, sigmas: torch.Tensor, x: torch.Tensor, *args: Any, **kw: Any):
        seen.append((sigmas, x))
        raise Started

    monkeypatch.setattr(img2img_module, "denoise_pass", spy)
    params = dataclasses.replace(
        img2img_defaults(), prompt="x", width=64, height=64, steps=10, seed=SEED,
        variation_seed=0, sampler=sampler, denoising_strength=0.5,
        initial_noise_multiplier=multiplier, img2img_extra_noise=extra,
    )  # fmt: skip
    with pytest.raises(Started):
        options = EngineOptions(host().samplers, host().schedules)
        img2img(tiny(), resolve(params), options, [Image.new("RGB", (64, 64), "teal")])
    return seen[0]


def test_k_diffusion_start_gets_noise_times_extra_more(monkeypatch) -> None:
    _, plain = img2img_start(monkeypatch, "Euler", 0.0, 1.0)
    _, extra = img2img_start(monkeypatch, "Euler", 0.25, 1.0)
    _, halved = img2img_start(monkeypatch, "Euler", 0.25, 0.5)
    _, halved_plain = img2img_start(monkeypatch, "Euler", 0.0, 0.5)
    noise = seed_noise(64, 64)
    assert torch.allclose(extra - plain, noise * 0.25, atol=1e-5)
    # the noise multiplier scales the noise before the extra is added (A1111's x *= m)
    assert torch.allclose(halved - halved_plain, noise * 0.5 * 0.25, atol=1e-5)


def test_timestep_sampler_start_gets_sqrt_alpha_times_extra_more(monkeypatch) -> None:
    """DDIM at 10 steps, strength 0.5 noises to timestep 501 and starts at 401; the model's
    input x / sqrt(1 + sigma_401^2) must gain noise x extra x sqrt(alpha_501)."""
    sigmas, plain = img2img_start(monkeypatch, "DDIM", 0.0, 1.0)
    _, extra = img2img_start(monkeypatch, "DDIM", 0.5, 1.0)
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alpha_501 = float(torch.cumprod(1 - betas, dim=0)[501])
    model_input_gain = (extra - plain) / (1 + float(sigmas[0]) ** 2) ** 0.5
    expected = seed_noise(64, 64) * 0.5 * alpha_501**0.5
    assert torch.allclose(model_input_gain, expected.float(), atol=1e-5)


def test_hires_fix_second_pass_gets_the_extra_noise_too(monkeypatch) -> None:
    """The first pass is skipped (zero latents); the hires pass (latent upscale to 64 px)
    starts from zeros + noise x (sigma + extra)."""
    seen: list[torch.Tensor] = []

    def spy(run: Any, used: Any, sigmas: torch.Tensor, x: torch.Tensor, *args: Any, **kw: Any):
        if x.shape[-1] == 4:  # the first pass, 32 px
            return torch.zeros_like(x)
        seen.append(x)
        raise Started

    monkeypatch.setattr(txt2img_module, "denoise_pass", spy)
    for extra in (0.0, 0.4):
        params = GenerationParams(
            prompt="x", width=32, height=32, steps=4, seed=SEED, variation_seed=0,
            sampler="Euler", enable_hires=True, hires_scale=2.0, hires_upscaler="Latent",
            denoising_strength=0.5, img2img_extra_noise=extra,
        )  # fmt: skip
        with pytest.raises(Started):
            txt2img(tiny(), resolve(params), EngineOptions(host().samplers, host().schedules))
    assert torch.allclose(seen[1] - seen[0], seed_noise(64, 64) * 0.4, atol=1e-5)


def facts(img2img: bool) -> RunFacts:
    return RunFacts(seed=SEED, img2img=img2img, schedule_label="Automatic")


def test_infotext_writes_extra_noise_only_above_zero_and_reads_it_back() -> None:
    base = resolve(dataclasses.replace(img2img_defaults(), prompt="a cat", seed=SEED))
    with_extra = dataclasses.replace(base, img2img_extra_noise=0.15)
    text = infotext_from_params(with_extra, facts(img2img=True))
    assert "Extra noise: 0.15" in text
    assert params_from_infotext(text).values["img2img_extra_noise"] == 0.15
    plain = infotext_from_params(base, facts(img2img=True))
    assert "Extra noise" not in plain
    # a missing key means A1111 added none
    assert params_from_infotext(plain).values["img2img_extra_noise"] == 0.0
    # txt2img: only hires fix's pass adds it
    txt = resolve(GenerationParams(prompt="a cat", seed=SEED, img2img_extra_noise=0.15))
    assert "Extra noise" not in infotext_from_params(txt, facts(img2img=False))
    hires = dataclasses.replace(txt, enable_hires=True, hires_upscaler="Latent")
    assert "Extra noise: 0.15" in infotext_from_params(hires, facts(img2img=False))


def test_extra_noise_comes_from_the_setting_and_is_an_xyz_axis() -> None:
    from sdtui_plugins.builtin.scripts.xyz_axes import AXES

    assert resolve(GenerationParams()).img2img_extra_noise == 0.0
    assert resolve(GenerationParams(), {"img2img_extra_noise": 0.3}).img2img_extra_noise == 0.3
    axis = {axis.label: axis for axis in AXES}["Extra noise"]
    assert axis.apply(GenerationParams(), 0.2, [0.2]).img2img_extra_noise == 0.2
