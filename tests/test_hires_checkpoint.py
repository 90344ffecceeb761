"""Hires checkpoint: the second pass of hires fix runs on another checkpoint (A1111's
`hr_checkpoint_name`), end to end from the engine to `sdtui generate`."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from sdtui.cli import main
from sdtui.engine.model_switch import Checkpoint, OtherModels
from sdtui.params.codec import params_from_infotext
from sdtui.params.image_metadata import read_image_metadata
from tests.model_switch_helpers import Loads, counting, generate, pixels, tiny
from tests.tiny_models import write_tiny_checkpoint

TITLE = "tiny-hires [abcdef0123]"
HIRES = dict(
    prompt="a fox",
    steps=3,
    enable_hires=True,
    hires_scale=1.5,
    hires_steps=2,
    denoising_strength=0.6,
    hires_checkpoint="tiny-hires",
)


def hires_models(model, loads: Loads | None = None, base=None) -> OtherModels:
    load = loads.loader("hires", model) if loads else (lambda: model)
    reload = loads.loader("base", base) if loads and base is not None else None
    return OtherModels(hires=Checkpoint(TITLE, load), reload=reload)


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_the_second_pass_runs_on_the_hires_checkpoint(upscaler: str) -> None:
    base, hires = tiny("sd1", 0), tiny("sd1", 5)
    modules = (base.unet, hires.unet, base.vae.decoder, hires.vae.decoder, hires.vae.encoder)
    with counting(*modules) as calls:
        (result,) = generate(
            base, hires_upscaler=upscaler, other_models=hires_models(hires), **HIRES
        )
    assert (calls[0], calls[1]) == (3, 2)  # 3 first-pass steps on base, 2 hires on the other
    assert calls[3] == 1  # the final image comes from the hires checkpoint's VAE
    # a pixel upscaler decodes the first pass with the base VAE, encodes with the hires one
    assert (calls[2], calls[4]) == ((1, 1) if upscaler == "Lanczos" else (0, 0))
    assert result.image.size == (96, 96)
    assert f"Hires checkpoint: {TITLE}," in result.infotext
    assert params_from_infotext(result.infotext).values["hires_checkpoint"] == TITLE


def test_the_same_model_as_hires_checkpoint_changes_nothing_but_the_infotext() -> None:
    base = tiny("sd1", 0)
    (same,) = generate(base, other_models=hires_models(base), **HIRES)
    (plain,) = generate(base, **{**HIRES, "hires_checkpoint": None})
    assert np.array_equal(pixels(same), pixels(plain))
    assert f"RNG: CPU, Hires checkpoint: {TITLE}, Hires upscale: 1.5," in same.infotext
    assert same.infotext.replace(f"Hires checkpoint: {TITLE}, ", "") == plain.infotext


def test_each_batch_runs_the_first_pass_on_its_own_model() -> None:
    base, hires, loads = tiny("sd1", 0), tiny("sd1", 5), Loads()
    other = hires_models(hires, loads, base)
    with counting(base.unet, hires.unet) as calls:
        _, second = generate(base, batch_count=2, other_models=other, **HIRES)
    assert loads.order == ["base", "hires", "base", "hires"]
    assert calls.order == [0, 0, 0, 1, 1] * 2
    (alone,) = generate(base, seed=22, other_models=hires_models(hires), **HIRES)
    assert np.array_equal(pixels(second), pixels(alone))


def test_hires_checkpoint_without_hires_fix_or_loader() -> None:
    base = tiny("sd1", 0)
    (result,) = generate(base, prompt="x", steps=2, hires_checkpoint="tiny-hires")
    assert "Hires checkpoint" not in result.infotext  # no hires fix: nothing to switch
    with pytest.raises(ValueError, match="hires checkpoint 'tiny-hires' needs a loader"):
        generate(base, **HIRES)


def test_generate_with_a_hires_checkpoint_and_a_refiner(data_dirs, capsys) -> None:
    write_tiny_checkpoint(data_dirs.checkpoints / "base.safetensors", "sd1")
    (data_dirs.checkpoints / "sub").mkdir()
    hires = write_tiny_checkpoint(data_dirs.checkpoints / "sub" / "up.safetensors", "sd1", seed=3)
    refiner = write_tiny_checkpoint(data_dirs.checkpoints / "fine.safetensors", "sd1", seed=4)
    short = {path: hashlib.sha256(path.read_bytes()).hexdigest()[:10] for path in (hires, refiner)}
    argv = ["generate", "--prompt", "a fox", "--model", "base", "--steps", "2"]
    argv += ["--width", "64", "--height", "64", "--device", "cpu", "--enable-hires"]
    argv += ["--hires-scale", "1.25", "--hires-checkpoint", "sub/up.safetensors"]
    argv += ["--refiner-checkpoint", "fine", "--refiner-switch-at", "0.5"]
    assert main([*argv, "--data-dir", str(data_dirs.root)]) == 0
    (path,) = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    infotext = read_image_metadata(path).infotext
    assert "Model: base," in infotext
    assert f"Hires checkpoint: up [{short[hires]}]," in infotext  # A1111's short title
    assert f"Refiner: fine [{short[refiner]}], Refiner switch at: 0.5" in infotext
    argv[argv.index("fine")] = "missing"
    assert main([*argv, "--data-dir", str(data_dirs.root)]) != 0
    assert "no checkpoint matches 'missing'" in capsys.readouterr().err
