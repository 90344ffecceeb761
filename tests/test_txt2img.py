"""txt2img end to end on tiny random models: determinism, batches, infotext, every sampler."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest

from sdtui.engine.options import EngineOptions
from sdtui.engine.txt2img import ModelFacts, txt2img
from sdtui.models.loader import load_checkpoint
from sdtui.params.codec import params_from_infotext
from sdtui.params.schema import GenerationParams
from sdtui.params.validate import resolve
from sdtui.plugins import PluginHost
from tests.tiny_models import write_tiny_checkpoint


@cache
def host() -> PluginHost:
    return PluginHost(load_entry_points=False)


@cache
def tiny(family: str):
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="sdtui-txt2img-"))
    return load_checkpoint(write_tiny_checkpoint(folder / f"{family}.safetensors", family))


def run(params: GenerationParams, family: str = "sd1", **options):
    """txt2img at 64 px, 3 steps, seed 11 unless `params` set them; the rest resolved from
    the settings' defaults as every request is."""
    small = dict(width=64, height=64, steps=3, seed=11, variation_seed=0)
    unset = GenerationParams()
    changes = {k: v for k, v in small.items() if getattr(params, k) == getattr(unset, k)}
    params = resolve(dataclasses.replace(params, **changes))
    options = EngineOptions(samplers=host().samplers, schedules=host().schedules, **options)
    return txt2img(tiny(family), params, options)


def pixels(result) -> np.ndarray:
    return np.asarray(result.image)


def test_same_seed_same_image_and_batch_independence() -> None:
    prompt = "a red circle"
    single = run(GenerationParams(prompt=prompt, seed=12))
    batch = run(GenerationParams(prompt=prompt, seed=11, batch_size=2))
    again = run(GenerationParams(prompt=prompt, seed=12))
    assert [r.params.seed for r in batch] == [11, 12]
    assert np.array_equal(pixels(single[0]), pixels(again[0]))
    # the same image; batched matmuls may round the last bit differently
    difference = np.abs(pixels(batch[1]).astype(int) - pixels(single[0]).astype(int))
    assert difference.max() <= 1
    assert not np.array_equal(pixels(batch[0]), pixels(batch[1]))


def test_infotext_says_what_ran_and_reads_back() -> None:
    (result,) = run(
        GenerationParams(
            prompt="a cat", negative_prompt="dog", sampler="k_dpmpp_2m", cfg_scale=5.0
        ),
        model_facts=ModelFacts(name="tiny", short_hash="0123456789"),
    )
    last = result.infotext.splitlines()[-1]
    assert last.startswith(
        "Steps: 3, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 11"
    )
    assert "Size: 64x64, Model hash: 0123456789, Model: tiny" in last and "RNG: CPU" in last
    parsed = params_from_infotext(result.infotext).apply_to(GenerationParams())
    again = run(dataclasses.replace(parsed, model=None))
    assert np.array_equal(pixels(again[0]), pixels(result))


def test_euler_automatic_keeps_automatic_in_the_infotext() -> None:
    (result,) = run(GenerationParams(prompt="x", sampler="Euler"))
    assert "Sampler: Euler, Schedule type: Automatic," in result.infotext


def test_prompt_changes_the_image() -> None:
    a = run(GenerationParams(prompt="a red circle"))[0]
    b = run(GenerationParams(prompt="a blue square"))[0]
    assert not np.array_equal(pixels(a), pixels(b))


def test_interrupt_stops_between_steps() -> None:
    class Stop(Exception):
        pass

    class Context:
        def __init__(self) -> None:
            self.steps: list[int] = []

        def check(self) -> None:
            if len(self.steps) == 2:
                raise Stop

        def progress(self, step: int, total: int, **_) -> None:
            self.steps.append(step)

    context = Context()
    with pytest.raises(Stop):
        run(GenerationParams(prompt="x", steps=5), context=context)
    assert context.steps == [1, 2]


def sampler_names() -> list[str]:
    return host().samplers.names()


@pytest.mark.parametrize("sampler", sampler_names())
def test_every_sampler_runs_end_to_end(sampler: str) -> None:
    (result,) = run(GenerationParams(prompt="x", sampler=sampler, steps=2))
    assert result.image.size == (64, 64)
    assert f"Sampler: {sampler}," in result.infotext


@pytest.mark.parametrize("family", ["sd2", "sdxl", "sd1-inpaint", "sdxl-refiner"])
def test_other_families(family: str) -> None:
    (result,) = run(GenerationParams(prompt="a cat AND a dog:0.5", steps=2), family=family)
    assert result.image.size == (64, 64)


def test_an_inpainting_model_writes_the_conditional_mask_weight() -> None:
    """A1111's txt2img sets is_using_inpainting_conditioning for a 9-channel model, so the
    infotext has "Conditional mask weight" (the setting's float); other models have none."""
    (inpaint,) = run(GenerationParams(prompt="x", steps=1), family="sd1-inpaint")
    assert "Denoising strength" not in inpaint.infotext
    assert ", Conditional mask weight: 1.0," in inpaint.infotext
    params = GenerationParams(prompt="x", steps=1, inpainting_mask_weight=0.5)
    (half,) = run(params, family="sd1-inpaint")
    assert ", Conditional mask weight: 0.5," in half.infotext
    assert params_from_infotext(half.infotext).values["inpainting_mask_weight"] == 0.5
    (plain,) = run(GenerationParams(prompt="x", steps=1))
    assert "Conditional mask weight" not in plain.infotext


@pytest.mark.parametrize("upscaler", ["Latent", "Latent (nearest-exact)", "Lanczos", "None"])
def test_hires_fix_upscales_and_writes_its_keys(upscaler: str) -> None:
    params = GenerationParams(
        prompt="x",
        enable_hires=True,
        hires_upscaler=upscaler,
        hires_steps=2,
        denoising_strength=0.5,
    )
    (result,) = run(params, upscalers=host().upscalers)
    assert result.image.size == (128, 128)
    last = result.infotext.splitlines()[-1]
    assert "Size: 64x64" in last and "Denoising strength: 0.5" in last
    assert f"Hires upscale: 2, Hires steps: 2, Hires upscaler: {upscaler}" in last
    assert params_from_infotext(result.infotext).values["enable_hires"] is True


def test_hires_resize_to_another_aspect_crops() -> None:
    params = GenerationParams(
        prompt="x", enable_hires=True, hires_resize_width=128, hires_resize_height=96, hires_steps=1
    )
    (result,) = run(params)
    assert result.image.size == (128, 96)
    assert "Hires resize: 128x96" in result.infotext


def test_hires_targets_follow_a1111() -> None:
    from sdtui.engine.upscale import hires_target, img2img_steps

    assert hires_target(512, 768, 1.5, 0, 0)[:2] == (768, 1152)
    assert hires_target(512, 768, 2, 1024, 0)[:2] == (1024, 1536)
    assert hires_target(512, 768, 2, 0, 1024)[:2] == (682, 1024)
    assert hires_target(512, 512, 2, 1024, 768) == (1024, 1024, 0, 32)
    assert img2img_steps(10, 0.5) == (20, 9) and img2img_steps(10, 1.0) == (10, 9)


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_hires_on_an_inpainting_model_conditions_on_the_image_below_weight_1(
    upscaler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A1111's hires pass on an inpainting model: at "Conditional mask weight" 1 the image
    is blanked out (txt2img's grey); below 1 it conditions on the upscaled image, decoded
    latents in [-1, 1] for latent upscale, the upscaled pictures in [0, 1] (A1111 1.10 does
    not convert them) for a pixel upscaler."""
    import torch

    import sdtui.engine.txt2img as engine

    seen = []

    def spy(vae, source, mask, weight, size):
        seen.append((source.clone(), mask, weight, size))
        return real(vae, source, mask, weight, size)

    real = engine.inpainting_conditioning
    monkeypatch.setattr(engine, "inpainting_conditioning", spy)
    base = GenerationParams(
        prompt="x", steps=1, enable_hires=True, hires_upscaler=upscaler, hires_steps=1,
        denoising_strength=0.6, hires_scale=1.5, width=32, height=32,
    )  # fmt: skip
    inpaint = {"family": "sd1-inpaint", "upscalers": host().upscalers}
    (full,) = run(dataclasses.replace(base, inpainting_mask_weight=1.0), **inpaint)
    assert seen == []  # weight 1: the grey conditioning, as before
    (half,) = run(dataclasses.replace(base, inpainting_mask_weight=0.25), **inpaint)
    ((source, mask, weight, size),) = seen
    assert mask is None and weight == 0.25 and size == (6, 6)
    assert source.shape == (1, 3, 48, 48)
    if upscaler == "Lanczos":  # the upscaled 8-bit picture, in [0, 1]
        assert source.min() >= 0 and source.max() <= 1
        assert torch.allclose(source * 255, (source * 255).round(), atol=1e-3)
    else:
        assert source.min() < 0  # raw VAE output: [-1, 1], not quantised
    assert not np.array_equal(pixels(full), pixels(half))


def test_a_copy_before_highres_fix_is_the_first_pass() -> None:
    """A1111's save_images_before_highres_fix: the first pass's picture, with the final
    image's infotext, for every image of the batch."""
    base = GenerationParams(prompt="x", steps=2, batch_size=2, width=32, height=32)
    first = run(base)
    copies = []
    hires = dataclasses.replace(
        base, enable_hires=True, hires_upscaler="Latent", hires_steps=1, denoising_strength=0.5
    )
    final = run(
        hires,
        keep_copies=frozenset({"highres fix"}),
        on_intermediate=lambda result, suffix: copies.append((result, suffix)),
    )
    assert [suffix for _, suffix in copies] == ["-before-highres-fix"] * 2
    for plain, (copy, _), done in zip(first, copies, final, strict=True):
        assert np.array_equal(pixels(copy), pixels(plain))
        assert copy.infotext == done.infotext and done.image.size == (64, 64)


def test_sdxl_time_ids_carry_the_crop_and_the_refiner_scores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A1111's sdxl_crop_top / _left and sdxl_refiner_low / high_aesthetic_score settings
    reach the UNet's added time ids."""
    import torch

    import sdtui.engine.passes as passes
    from sdtui.engine.unet import sdxl_time_ids

    rows = sdxl_time_ids(64, 48, torch.tensor([False, True]), crop=(16, 8))
    assert rows.tolist() == [[48, 64, 16, 8, 48, 64]] * 2
    refiner = sdxl_time_ids(64, 48, torch.tensor([False, True]), refiner=True, scores=(1.5, 9))
    assert refiner.tolist() == [[48, 64, 0, 0, 9], [48, 64, 0, 0, 1.5]]
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return sdxl_time_ids(*args, **kwargs)

    monkeypatch.setattr(passes, "sdxl_time_ids", spy)
    params = GenerationParams(prompt="x", steps=1, width=32, height=32)
    run(params, family="sdxl-refiner", sdxl_crop=(16, 8), refiner_aesthetic=(1.5, 9.0))
    assert seen and all(k["crop"] == (16, 8) and k["scores"] == (1.5, 9.0) for k in seen)


def test_comma_backtrack_reaches_the_prompt_encoder() -> None:
    """A1111's comma_padding_backtrack (EngineOptions.comma_backtrack, from settings) decides
    where a long prompt's first chunk ends: "a" x 70, a comma, "b" x 10 is split after the
    comma at 20 and after the fourth "b" at 0, so the conditioning and the image differ."""
    prompt = GenerationParams(prompt="a " * 70 + ", " + "b " * 10)
    default = run(prompt)[0]
    assert np.array_equal(pixels(run(prompt, comma_backtrack=20)[0]), pixels(default))
    assert not np.array_equal(pixels(run(prompt, comma_backtrack=0)[0]), pixels(default))
