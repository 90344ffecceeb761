"""The contract every registered sampler keeps (the engine relies on it)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sdtui.core.schedules import karras
from sdtui.plugins import PluginHost
from sdtui.registry import UnknownNameError

HOST = PluginHost(load_entry_points=False)
SAMPLERS = HOST.samplers
NAMES = SAMPLERS.names()
SHAPE = (2, 4, 8, 8)
# Samplers whose step count is not len(sigmas) - 1 (their own step plans).
OWN_STEP_PLAN = {"DPM fast", "DPM adaptive", "Restart"}


class ToyDenoiser:
    """A smooth denoiser that counts its calls and, like the engine's CFG denoiser, exposes
    the unconditional prediction (for DDIM CFG++)."""

    def __init__(self) -> None:
        self.calls = 0
        self.last_uncond_denoised: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        assert sigma.shape == (x.shape[0],), f"sigma must be per sample, got {sigma.shape}"
        self.calls += 1
        s = sigma.view(-1, 1, 1, 1).to(x.dtype)
        denoised = (x * 0.8 + 0.1 * torch.tanh(x)) / (1 + s**2) + 0.2 * s**2 / (1 + s**2)
        self.last_uncond_denoised = denoised * 0.9
        return denoised


def schedule(steps: int = 8) -> torch.Tensor:
    return karras(steps, 0.03, 14.6)


def run(name: str, sigmas: torch.Tensor | None = None, seed: int = 123, **options):
    sigmas = schedule() if sigmas is None else sigmas
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    model = ToyDenoiser()
    x = SAMPLERS.get(name).sample(model, noise * sigmas[0], sigmas, seed=seed, **options)
    return x, model


def test_every_a1111_sampler_is_registered() -> None:
    expected = {
        "Euler", "Euler a", "Heun", "DPM2", "DPM2 a", "LMS", "DPM++ 2M", "DPM++ SDE",
        "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE", "DPM fast",
        "DPM adaptive", "Restart", "DDIM", "DDIM CFG++", "PLMS", "UniPC", "LCM",
    }  # fmt: skip
    assert set(NAMES) == expected
    assert HOST.failures == []


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_finiteness(name: str) -> None:
    x, model = run(name)
    assert x.shape == SHAPE and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert model.calls >= 1


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name: str) -> None:
    first, _ = run(name, seed=7)
    second, _ = run(name, seed=7)
    assert torch.equal(first, second)
    if SAMPLERS.get(name).stochastic and name not in (
        "DDIM",
        "DDIM CFG++",
    ):  # DDIM draws noise only with eta
        other, _ = run(name, seed=8, sigmas=karras(24, 0.03, 14.6))
        again, _ = run(name, seed=7, sigmas=karras(24, 0.03, 14.6))
        assert not torch.equal(other, again)


@pytest.mark.parametrize("name", ["Euler a", "DPM++ 2M SDE"])
def test_per_image_seeds_make_each_image_independent_of_the_batch(name: str) -> None:
    sigmas = schedule(6)
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    sampler = SAMPLERS.get(name)
    pair = sampler.sample(ToyDenoiser(), noise * sigmas[0], sigmas, seed=[5, 6])
    alone = sampler.sample(ToyDenoiser(), noise[1:] * sigmas[0], sigmas, seed=[6])
    assert torch.allclose(pair[1], alone[0], atol=1e-6)
    assert not torch.allclose(pair[0], alone[0])


@pytest.mark.parametrize("name", NAMES)
def test_explicit_noise_sampler_is_used(name: str) -> None:
    calls = []

    def noise_sampler(sigma, sigma_next):
        calls.append((float(sigma), float(sigma_next)))
        return torch.zeros(SHAPE)

    run(name, sigmas=karras(24, 0.03, 14.6), noise_sampler=noise_sampler, eta=None)
    info = SAMPLERS.get(name)
    if info.stochastic and name not in ("DDIM", "DDIM CFG++"):
        assert calls, f"{name} is stochastic but never asked for noise"
    else:
        assert not calls


@pytest.mark.parametrize("name", NAMES)
def test_one_step_schedule(name: str) -> None:
    x, _ = run(name, sigmas=schedule(1))
    assert x.shape == SHAPE and torch.isfinite(x).all()


@pytest.mark.parametrize("name", NAMES)
def test_partial_denoise_from_mid_schedule(name: str) -> None:
    sigmas = schedule(20)[12:]  # as img2img at denoising strength 0.4
    x, _ = run(name, sigmas=sigmas)
    assert x.shape == SHAPE and torch.isfinite(x).all()


@pytest.mark.parametrize("name", NAMES)
def test_callback_reports_each_step(name: str) -> None:
    infos = []
    sigmas = schedule(8)
    run(name, sigmas=sigmas, callback=infos.append)
    assert infos
    assert [info.step for info in infos] == list(range(len(infos)))
    if name not in OWN_STEP_PLAN:
        assert len(infos) == len(sigmas) - 1
        assert all(info.total == len(sigmas) - 1 for info in infos)
        assert [info.sigma for info in infos] == pytest.approx(sigmas[:-1].tolist())
        assert [info.sigma_next for info in infos] == pytest.approx(sigmas[1:].tolist())
    elif name != "DPM adaptive":
        assert len(infos) == infos[0].total
    for info in infos:
        assert info.x.shape == SHAPE and info.denoised.shape == SHAPE


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("name", NAMES)
def test_a_raising_callback_stops_the_sampler(name: str) -> None:
    def interrupt(info) -> None:
        raise Interrupted

    sigmas = schedule(10)
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    model = ToyDenoiser()
    with pytest.raises(Interrupted):
        SAMPLERS.get(name).sample(model, noise * sigmas[0], sigmas, callback=interrupt)
    assert model.calls <= 3  # stopped after the first step


def test_names_and_aliases_resolve() -> None:
    assert SAMPLERS.resolve_name("k_euler_a") == "Euler a"
    assert SAMPLERS.resolve_name("k_euler_ancestral") == "Euler a"
    assert SAMPLERS.resolve_name("k_dpmpp_2m") == "DPM++ 2M"
    assert SAMPLERS.resolve_name("dpm++ 2m sde heun") == "DPM++ 2M SDE Heun"
    assert SAMPLERS.resolve_name("k_dpm_ad") == "DPM adaptive"
    assert SAMPLERS.resolve_name("ddim_cfgpp") == "DDIM CFG++"


def test_unknown_sampler_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as caught:
        SAMPLERS.get("Eular")
    assert "Eular" in str(caught.value) and "Euler a" in str(caught.value)
    assert "DPM++ 2M" in str(caught.value)


def test_unknown_option_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(TypeError, match="s_churn"):
        run("Euler", s_chrun=1.0)


def test_options_of_other_samplers_are_ignored() -> None:
    plain, _ = run("Euler")
    with_extras, _ = run("Euler", eta=0.5, order=2, variant="bh2", solver_type="heun")
    assert torch.equal(plain, with_extras)


def test_a1111_defaults() -> None:
    expected_schedule = {
        "DPM++ 2M": "Karras", "DPM++ SDE": "Karras", "DPM++ 2M SDE": "Exponential",
        "DPM++ 2M SDE Heun": "Exponential", "DPM++ 2S a": "Karras",
        "DPM++ 3M SDE": "Exponential", "Euler a": None, "Euler": None, "LMS": None,
        "Heun": None, "DPM2": "Karras", "DPM2 a": "Karras", "DPM fast": None,
        "DPM adaptive": None, "Restart": "Karras",
    }  # fmt: skip
    for name, label in expected_schedule.items():
        assert SAMPLERS.get(name).default_schedule == label, name
    discarding = {s.name for s in SAMPLERS if s.discard_penultimate_sigma}
    assert discarding == {"DPM2", "DPM2 a", "DPM++ 3M SDE"}
    assert {s.name for s in SAMPLERS if s.uses_ensd} >= {"Euler a", "DPM++ 2S a"}
    schedule_names = set(HOST.schedules.names())
    for sampler in SAMPLERS:
        assert sampler.default_schedule in schedule_names | {None}


def test_eta_defaults_differ_between_ancestral_and_ddim() -> None:
    ancestral_default, _ = run("Euler a")
    ancestral_one, _ = run("Euler a", eta=1.0)
    assert torch.equal(ancestral_default, ancestral_one)
    ddim_default, _ = run("DDIM")
    ddim_zero, _ = run("DDIM", eta=0.0)
    assert torch.equal(ddim_default, ddim_zero)


def test_ddim_cfgpp_needs_the_unconditional_prediction() -> None:
    sigmas = schedule(4)
    plain_model = lambda x, sigma: x / (1 + sigma.view(-1, 1, 1, 1) ** 2)  # noqa: E731
    with pytest.raises(ValueError, match="last_uncond_denoised"):
        SAMPLERS.get("DDIM CFG++").sample(plain_model, torch.ones(SHAPE), sigmas)


def test_plugin_module_does_not_import_torch() -> None:
    code = "import sys, sdtui_plugins.builtin.samplers; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
