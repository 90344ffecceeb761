"""img2img and inpainting end to end on tiny random models, against independent oracles:
the VAE round trip, A1111's step rule, seeded noise, the unmasked pixels of the input."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest
import torch
from PIL import Image

from sdtui.engine import img2img as img2img_module
from sdtui.engine.images import decode_latents, encode_images, to_tensor
from sdtui.engine.img2img import LatentMaskDenoiser, img2img
from sdtui.engine.masking import fill
from sdtui.engine.options import EngineOptions
from sdtui.engine.upscale import img2img_sigmas, img2img_steps
from sdtui.models.loader import load_checkpoint
from sdtui.params.codec import RunFacts, infotext_from_params, params_from_infotext
from sdtui.params.schema import MASKED_CONTENT, img2img_defaults
from sdtui.params.validate import resolve
from sdtui.plugins import PluginHost
from tests.tiny_models import write_tiny_checkpoint

BOX = (24, 24, 40, 40)  # the masked square; latent cells 3-4
REACH = 10  # mask blur 4 spreads 2 * int(2.5 * 4 + 0.5) / 2 = 10 pixels


@cache
def host() -> PluginHost:
    return PluginHost(load_entry_points=False)


@cache
def tiny(family: str):
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="sdtui-img2img-"))
    return load_checkpoint(write_tiny_checkpoint(folder / f"{family}.safetensors", family))


def source(width: int = 64, height: int = 64, seed: int = 0) -> Image.Image:
    values = np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(values, "RGB")


def square_mask(size: tuple[int, int] = (64, 64), box: tuple[int, ...] = BOX) -> Image.Image:
    mask = Image.new("L", size)
    mask.paste(255, box)
    return mask


def request(**changes):
    base = dict(prompt="a cat", width=64, height=64, steps=3, seed=7, variation_seed=0)
    return resolve(dataclasses.replace(img2img_defaults(), **{**base, **changes}))


def run(params, images, mask=None, family: str = "sd1", **options):
    model = tiny(family)
    options = EngineOptions(samplers=host().samplers, schedules=host().schedules, **options)
    return img2img(model, params, options, images, mask)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def round_trip(image: Image.Image, family: str = "sd1") -> Image.Image:
    vae = tiny(family).vae
    return decode_latents(vae, encode_images(vae, to_tensor(image)[None]).float())[0]


def outside(box: tuple[int, ...], reach: int, size: int = 64) -> np.ndarray:
    keep = np.ones((size, size), dtype=bool)
    left, top, right, bottom = box
    keep[max(top - reach, 0) : bottom + reach, max(left - reach, 0) : right + reach] = False
    return keep


class Steps:
    """A job context counting the steps that run."""

    def __init__(self) -> None:
        self.totals: list[int] = []

    def check(self) -> None:
        pass

    def progress(self, step: int, total: int, **_) -> None:
        self.totals.append(total)


# -- img2img ---------------------------------------------------------------------------------


def test_denoising_zero_returns_the_vae_round_trip() -> None:
    image = source()
    (result,) = run(request(denoising_strength=0.0), [image])
    assert np.array_equal(pixels(result.image), pixels(round_trip(image)))
    assert "Denoising strength: 0," in result.infotext


def test_step_rule_is_a1111s() -> None:
    assert img2img_steps(20, 0.5, fix_steps=False) == (20, 10)
    assert img2img_steps(20, 0.5, fix_steps=True) == (40, 19)
    assert img2img_steps(20, 1.0, fix_steps=False) == (20, 19)
    sigmas = torch.arange(21.0).flip(0)  # 20 steps
    euler = host().samplers.get("Euler")
    assert torch.equal(img2img_sigmas(euler, sigmas, 20, 10), sigmas[9:])  # 11 steps
    for strength, fixed, ran in ((0.5, False, 3), (0.5, True, 4), (1.0, False, 4)):
        steps = Steps()
        params = request(steps=4, sampler="Euler", denoising_strength=strength)
        run(dataclasses.replace(params, img2img_fix_steps=fixed), [source()], context=steps)
        assert set(steps.totals) == {ran}, (strength, fixed)


def test_batches_seeds_and_resize_modes() -> None:
    results = run(request(batch_size=2, resize_mode="Crop and resize"), [source(96, 64)])
    assert [r.params.seed for r in results] == [7, 8]
    assert all(r.image.size == (64, 64) for r in results)
    assert not np.array_equal(pixels(results[0].image), pixels(results[1].image))
    (latent,) = run(request(resize_mode="Just resize (latent upscale)"), [source(32, 32)])
    assert latent.image.size == (64, 64)


# -- inpainting ------------------------------------------------------------------------------


@pytest.mark.parametrize("area", ["Whole picture", "Only masked"])
@pytest.mark.parametrize("content", MASKED_CONTENT)
def test_unmasked_pixels_are_the_inputs_exactly(content: str, area: str) -> None:
    image = source()
    params = request(steps=2, inpainting_fill=content, inpaint_area=area)
    (result,) = run(params, [image], square_mask())
    keep = outside(BOX, REACH)
    assert result.image.size == (64, 64)
    assert np.array_equal(pixels(result.image)[keep], pixels(image)[keep])
    left, top, right, bottom = BOX
    assert not np.array_equal(
        pixels(result.image)[top:bottom, left:right], pixels(image)[top:bottom, left:right]
    )


def test_only_masked_repaints_at_the_target_size_and_pastes_back() -> None:
    image = source(96, 64)
    mask = square_mask((96, 64), (60, 8, 76, 24))
    params = request(width=64, height=64, steps=2, inpaint_area="Only masked")
    (result,) = run(params, [image], mask)
    assert result.image.size == (96, 64)  # the input's size, the crop pasted into it
    keep = outside((60, 8, 76, 24), REACH, 96)[:64]
    assert np.array_equal(pixels(result.image)[keep], pixels(image)[keep])
    assert "Inpaint area: Only masked, Masked area padding: 32" in result.infotext


def capture_start(monkeypatch) -> dict:
    """Replace sampling with a spy: the init latents and mask of the masked denoiser."""
    seen: dict = {}

    def spy(run, sampler, sigmas, x, encode, size, seeds, rng, refine, **options):
        denoiser = options["wrap"](lambda x, sigma: x, sampler)
        seen.update(init=denoiser.init, repaint=denoiser.repaint, x=x)
        return x

    monkeypatch.setattr(img2img_module, "denoise_pass", spy)
    return seen


@pytest.mark.parametrize("content", MASKED_CONTENT)
def test_masked_content_sets_the_init_latents(monkeypatch, content: str) -> None:
    seen = capture_start(monkeypatch)
    image, mask = source(), square_mask()
    run(request(inpainting_fill=content, mask_blur=0), [image], mask)
    repaint = torch.zeros(1, 1, 8, 8)
    repaint[..., 3:5, 3:5] = 1  # pixels 24-39 are latent cells 3 and 4
    assert torch.equal(seen["repaint"], repaint)
    vae = tiny("sd1").vae
    encoded = image if content == "original" else fill(image, mask)
    latents = encode_images(vae, to_tensor(encoded)[None]).float()
    keep, under = repaint == 0, (repaint == 1).expand(1, 4, 8, 8)
    init = seen["init"]
    assert torch.allclose(init[keep.expand(1, 4, 8, 8)], latents[keep.expand(1, 4, 8, 8)])
    if content == "latent nothing":
        assert (init[under] == 0).all()
    elif content == "latent noise":  # CPU noise of the seed, as A1111's create_random_tensors
        noise = torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(7))[None]
        assert torch.equal(init[under], noise[under])
    else:
        assert torch.allclose(init[under], latents[under])
    if content == "fill":  # the masked area starts from the colours around it
        plain = encode_images(vae, to_tensor(image)[None]).float()
        assert not torch.allclose(init[under], plain[under])


def test_latent_mask_denoiser_keeps_the_init_latents() -> None:
    init, repaint = torch.full((1, 4, 2, 2), 3.0), torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    x, sigma = torch.randn(1, 4, 2, 2), torch.tensor(2.0)

    def model(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x * 0.5

    after = LatentMaskDenoiser(model, init, repaint, before=False)(x, sigma)
    assert torch.equal(after, x * 0.5 * repaint + init * (1 - repaint))
    before = LatentMaskDenoiser(model, init, repaint, before=True)(x, sigma)
    blended = x * repaint + init * 5**0.5 * (1 - repaint)  # init at sqrt(1 + sigma^2)
    eps = (blended - model(blended, sigma)) / sigma  # the eps A1111's sampler steps with
    assert torch.allclose((x - before) / sigma, eps)


def test_a_timestep_sampler_inpaints_too() -> None:
    image = source()
    (result,) = run(request(sampler="DDIM", steps=2), [image], square_mask())
    keep = outside(BOX, REACH)
    assert np.array_equal(pixels(result.image)[keep], pixels(image)[keep])


def test_inpainting_model_sees_the_mask_and_the_masked_image(monkeypatch) -> None:
    model = tiny("sd1-inpaint")
    inputs: list[torch.Tensor] = []
    hook = model.unet.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    try:
        params = request(steps=1, mask_blur=0, inpainting_mask_weight=1.0)
        (result,) = run(params, [source()], square_mask(), family="sd1-inpaint")
    finally:
        hook.remove()
    sample = inputs[0]
    assert sample.shape[1] == 9
    repaint = torch.zeros(8, 8)
    repaint[3:5, 3:5] = 1
    assert all(torch.equal(row, repaint) for row in sample[:, 4])
    blanked = to_tensor(source()) * (1 - to_tensor(square_mask().convert("RGB")).add(1).div(2))
    latents = encode_images(model.vae, blanked[None]).float()[0]
    assert torch.allclose(sample[0, 5:], latents, atol=1e-5)
    assert "Conditional mask weight: 1.0," in result.infotext


# -- infotext --------------------------------------------------------------------------------


def test_infotext_keys_round_trip() -> None:
    params = request(
        denoising_strength=0.6, mask_blur=6, mask_mode="Inpaint not masked",
        inpainting_fill="latent noise", inpaint_area="Only masked", inpaint_full_res_padding=16,
        initial_noise_multiplier=0.9, inpainting_mask_weight=0.5,
    )  # fmt: skip
    facts = RunFacts(seed=7, img2img=True, masked=True, inpainting_conditioning=True)
    text = infotext_from_params(params, facts)
    for key in (
        "Denoising strength: 0.6", "Conditional mask weight: 0.5", "Mask blur: 6",
        "Mask mode: Inpaint not masked", "Inpaint area: Only masked", "Masked area padding: 16",
        "Masked content: latent noise", "Noise multiplier: 0.9",
    ):  # fmt: skip
        assert key in text
    parsed = params_from_infotext(text).apply_to(img2img_defaults())
    for name in (
        "denoising_strength", "mask_blur", "mask_mode", "inpainting_fill", "inpaint_area",
        "inpaint_full_res_padding", "initial_noise_multiplier", "inpainting_mask_weight",
    ):  # fmt: skip
        assert getattr(parsed, name) == getattr(params, name), name


def test_defaults_leave_the_inpainting_keys_out() -> None:
    text = infotext_from_params(request(), RunFacts(seed=7, img2img=True, masked=True))
    assert "Denoising strength: 0.75" in text and "Mask blur: 4" in text
    for key in ("Mask mode", "Masked content", "Inpaint area", "Noise multiplier", "Conditional"):
        assert key not in text
    assert "Mask blur" not in infotext_from_params(request(), RunFacts(seed=7, img2img=True))
    masked = RunFacts(seed=7, img2img=True, masked=True)
    assert "Mask blur: 0" in infotext_from_params(request(mask_blur=0), masked)
    assert "Denoising strength" not in infotext_from_params(request(), RunFacts(seed=7))
