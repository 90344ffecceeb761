"""Tiling: circular padding on every Conv2d for the run, restored exactly afterwards.

Oracles: with circular padding a convolutional network commutes with circular shifts
(shift the input, get the shifted output), which zero padding breaks at the borders; and
in a tiled image the wrap-around seam (last column -> first) looks like any pair of
neighbouring columns.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sdtui.engine.txt2img as engine
from sdtui.engine.tiling import CircularPadding, circular_padding
from sdtui.params.codec import params_from_infotext
from tests.model_switch_helpers import generate, pixels, tiny


def padding_modes(*modules: torch.nn.Module) -> list[str]:
    return [
        layer.padding_mode
        for module in modules
        for layer in module.modules()
        if isinstance(layer, torch.nn.Conv2d)
    ]


def test_circular_padding_sets_every_conv_and_restores_each_mode() -> None:
    block = torch.nn.Sequential(
        torch.nn.Conv2d(1, 1, 3, padding=1),
        torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"),
        torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.ReLU()),
    )
    padding = CircularPadding()
    assert padding.apply(block, None) == 3
    assert padding_modes(block) == ["circular"] * 3
    padding.restore()
    assert padding_modes(block) == ["zeros", "reflect", "zeros"]
    with pytest.raises(RuntimeError), circular_padding(block):
        assert padding_modes(block) == ["circular"] * 3
        raise RuntimeError("boom")
    assert padding_modes(block) == ["zeros", "reflect", "zeros"]


def test_tiled_unet_and_vae_commute_with_circular_shifts() -> None:
    model = tiny("sd1")
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([500, 500])

    def unet(x: torch.Tensor) -> torch.Tensor:
        return model.unet(x, t, encoder_hidden_states=context).sample

    def vae(x: torch.Tensor) -> torch.Tensor:
        return model.vae.decode(x).sample

    with torch.no_grad():
        # the tiny UNet downsamples once: shifts by 2 latent pixels commute
        shifted_unet = unet(torch.roll(z, (2, -2), (2, 3))) - torch.roll(unet(z), (2, -2), (2, 3))
        shifted_vae = vae(torch.roll(z, 3, 3)) - torch.roll(vae(z), 24, 3)
        assert shifted_unet.abs().max() > 1e-2 and shifted_vae.abs().max() > 1e-2
        with circular_padding(model.unet, model.vae):
            shifted_unet = unet(torch.roll(z, (2, -2), (2, 3))) - torch.roll(
                unet(z), (2, -2), (2, 3)
            )
            shifted_vae = vae(torch.roll(z, 3, 3)) - torch.roll(vae(z), 24, 3)
        assert shifted_unet.abs().max() < 1e-5 and shifted_vae.abs().max() < 1e-5
    assert set(padding_modes(model.unet, model.vae)) == {"zeros"}


class RolledNoise:
    """An ImageRNG whose initial noise is rolled by `shift` latent columns."""

    def __init__(self, rng, shift: int) -> None:
        self.rng, self.shift = rng, shift

    def first(self) -> torch.Tensor:
        return torch.roll(self.rng.first(), self.shift, dims=3)

    def noise_sampler(self, *args) -> torch.Tensor:
        return self.rng.noise_sampler(*args)


def rolled_run(monkeypatch, shift: int, **changes):
    original = engine.pass_rng
    monkeypatch.setattr(engine, "pass_rng", lambda *args: RolledNoise(original(*args), shift))
    try:
        return generate(tiny("sd1"), prompt="a tiled floor", steps=3, **changes)
    finally:
        monkeypatch.setattr(engine, "pass_rng", original)


def test_a_tiled_image_shifts_with_its_noise(monkeypatch) -> None:
    """The whole pipeline is shift-equivariant with tiling: rolling the initial noise by 2
    latent columns rolls the image by 16 pixels (up to 8-bit rounding)."""
    for tiling, equal in ((True, True), (False, False)):
        (plain,) = rolled_run(monkeypatch, 0, tiling=tiling)
        (moved,) = rolled_run(monkeypatch, 2, tiling=tiling)
        difference = np.abs(pixels(moved) - np.roll(pixels(plain), 16, axis=1))
        assert bool(difference.max() <= 1) is equal, (tiling, difference.max())


def seam_ratio(image: np.ndarray) -> float:
    """Mean |last column - first column| over the mean difference of neighbouring columns."""
    image = image.astype(float)
    neighbours = np.abs(np.diff(image, axis=1)).mean()
    return float(np.abs(image[:, -1] - image[:, 0]).mean() / neighbours)


@pytest.mark.parametrize("seed", [1, 3])
def test_tiled_images_wrap_around_without_a_seam(seed: int) -> None:
    (tiled,) = generate(tiny("sd1"), prompt="a cat", seed=seed, steps=3, tiling=True)
    (plain,) = generate(tiny("sd1"), prompt="a cat", seed=seed, steps=3)
    image = pixels(tiled)
    assert seam_ratio(image) < 1.5 and seam_ratio(image.transpose(1, 0, 2)) < 1.5
    assert seam_ratio(pixels(plain)) > 1.5  # the same oracle sees the seam without tiling
    assert "Tiling: True" in tiled.infotext and "Tiling" not in plain.infotext
    assert params_from_infotext(tiled.infotext).values["tiling"] is True


def test_padding_is_restored_after_a_run_and_after_an_error() -> None:
    model = tiny("sd1")
    before = padding_modes(model.unet, model.vae)

    class Stop(Exception):
        pass

    class Context:
        def check(self) -> None:
            assert set(padding_modes(model.unet, model.vae)) == {"circular"}
            raise Stop

        def progress(self, *args, **kwargs) -> None:
            pass

    generate(model, prompt="x", steps=2, tiling=True)
    assert padding_modes(model.unet, model.vae) == before
    with pytest.raises(Stop):
        generate(model, prompt="x", steps=2, tiling=True, context=Context())
    assert padding_modes(model.unet, model.vae) == before
