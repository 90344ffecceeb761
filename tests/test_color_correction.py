"""A1111's img2img colour correction (sdtui.engine.color_correction).

Oracles: OpenCV's published 8-bit CIELAB values of the primaries; scikit-image (a dev
dependency) for the CIELAB formulas and for `match_histograms`; blendmodes' LUMINOSITY
worked by hand. Tolerances: OpenCV's 8-bit RGB -> Lab works in fixed point from a gamma
table of 2040 levels, so it differs from the exact formula (skimage, rounded) by up to 3
levels in a and 2 in L and b for the darkest colours and by at most 1 level for 99% of
colours; its integer Lab -> RGB is within 2 levels of skimage's float conversion for
colours that came from RGB.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage.color import lab2rgb, rgb2lab
from skimage.exposure import match_histograms as skimage_match

from sdtui.engine.color_correction import (
    ColorCorrection,
    blend_luminosity,
    lab_to_rgb,
    match_histograms,
    rgb_to_lab,
)
from sdtui.engine.img2img import img2img
from sdtui.engine.options import EngineOptions
from sdtui.params.schema import img2img_defaults
from sdtui.params.validate import resolve
from tests.test_img2img_timesteps import host, tiny  # one tiny checkpoint for these files


def pixels(*colours: tuple[int, int, int]) -> np.ndarray:
    return np.array([colours], dtype=np.uint8)


def colour_grid(step: int = 15) -> np.ndarray:
    levels = np.arange(0, 256, step)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    return grid.reshape(1, -1, 3).astype(np.uint8)


def skimage_lab8(rgb: np.ndarray) -> np.ndarray:
    lab = rgb2lab(rgb.astype(np.float64) / 255)
    return np.stack([lab[..., 0] * 255 / 100, lab[..., 1] + 128, lab[..., 2] + 128], axis=-1)


def test_rgb_to_lab_gives_opencvs_values_for_the_primaries() -> None:
    rgb = pixels((255, 255, 255), (0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    expected = [[255, 128, 128], [0, 128, 128], [136, 208, 195], [224, 42, 211], [82, 207, 20]]
    assert rgb_to_lab(rgb)[0].tolist() == expected


def test_rgb_to_lab_follows_the_cielab_formula_within_opencvs_rounding() -> None:
    rgb = colour_grid()
    difference = np.abs(rgb_to_lab(rgb).astype(np.float64) - skimage_lab8(rgb))
    assert difference.max(axis=(0, 1)).tolist() <= [2.0, 3.0, 2.0]
    assert (difference.max(axis=-1) <= 1.0).mean() > 0.99


def test_lab_to_rgb_inverts_the_formula_within_two_levels() -> None:
    lab = rgb_to_lab(colour_grid())
    exact = np.stack([lab[..., 0] * 100.0 / 255, lab[..., 1] - 128.0, lab[..., 2] - 128.0], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about clipped negative Z
        expected = lab2rgb(exact) * 255
    assert np.abs(lab_to_rgb(lab) - expected).max() <= 2.0
    grey = pixels(*[(level, level, level) for level in range(0, 256, 5)])
    assert np.abs(lab_to_rgb(rgb_to_lab(grey)).astype(int) - grey).max() <= 1


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_match_histograms_is_scikit_images(height: int, width: int, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    reference = rng.integers(40, 200, (size, size + 2, 3), dtype=np.uint8)
    expected = skimage_match(image, reference, channel_axis=2)
    assert expected.dtype == np.uint8
    assert np.array_equal(match_histograms(image, reference), expected)


def test_blend_luminosity_keeps_the_backgrounds_colour_at_the_foregrounds_lightness() -> None:
    # in gamut: (200, 100, 50) has luminosity 124.2; at 100 it is (175.8, 75.8, 25.8),
    # which blendmodes truncates
    assert blend_luminosity(pixels((200, 100, 50)), pixels((100, 100, 100))).tolist() == [
        [[175, 75, 25]]
    ]
    # out of gamut: red at black's luminosity is black; blue at white's is white
    # (ClipColor), truncated after float rounding
    dark, light = blend_luminosity(
        pixels((255, 0, 0), (0, 0, 255)), pixels((0, 0, 0), (255, 255, 255))
    )[0]
    assert dark.tolist() == [0, 0, 0]
    assert light.min() >= 254


def noisy(seed: int, tint: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (32, 32, 3)) + np.array(tint)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def test_correction_pulls_a_colour_cast_back_and_keeps_the_lightness() -> None:
    reference = noisy(1)
    cast = noisy(2, tint=(-30, 0, 50))  # bluer
    corrected = ColorCorrection.of(reference).apply(cast)
    lab = {name: rgb_to_lab(np.asarray(image)).astype(float) for name, image in
           (("reference", reference), ("cast", cast), ("corrected", corrected))}  # fmt: skip
    for channel in (1, 2):  # a and b: the cast is mostly gone
        before = abs(lab["cast"][..., channel].mean() - lab["reference"][..., channel].mean())
        after = abs(lab["corrected"][..., channel].mean() - lab["reference"][..., channel].mean())
        assert after < before / 3
    luminosity = np.array([0.299, 0.587, 0.114])
    kept = np.asarray(corrected) @ luminosity - np.asarray(cast) @ luminosity
    assert np.abs(kept).mean() < 1.5  # the result's own luminosity, not the reference's


def run(color_correction: bool, mask: Image.Image | None = None, **options_kw) -> list:
    params = dataclasses.replace(
        img2img_defaults(), prompt="x", width=64, height=64, steps=2, seed=5, variation_seed=0,
        sampler="Euler", denoising_strength=0.5, img2img_color_correction=color_correction,
    )  # fmt: skip
    options = EngineOptions(host().samplers, host().schedules, **options_kw)
    return img2img(tiny(), resolve(params), options, [noisy(3).resize((64, 64))], mask)


def test_img2img_corrects_each_decoded_image_before_the_overlay() -> None:
    (plain,) = run(False)
    (corrected,) = run(True, init_image_hash="0" * 32)
    expected = ColorCorrection.of(noisy(3).resize((64, 64))).apply(plain.image)
    assert np.array_equal(np.asarray(corrected.image), np.asarray(expected))
    assert "Init image hash: " + "0" * 32 in corrected.infotext
    assert "color" not in corrected.infotext.casefold()  # A1111 writes no key for it
    # with a mask, the overlay comes last: unmasked pixels are exactly the input's
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    (masked,) = run(True, mask)
    source, result = np.asarray(noisy(3).resize((64, 64))), np.asarray(masked.image)
    assert np.array_equal(result[:4], source[:4])  # the mask, blurred by 4, starts at 16
    # save_images_before_color_correction: the overlaid image without the correction
    copies = []
    (kept,) = run(
        True, mask, keep_copies=frozenset({"color correction"}),
        on_intermediate=lambda result, suffix: copies.append((result, suffix)),
    )  # fmt: skip
    (uncorrected,) = run(False, mask)
    ((copy, suffix),) = copies
    assert suffix == "-before-color-correction" and copy.infotext == kept.infotext
    assert np.array_equal(np.asarray(copy.image), np.asarray(uncorrected.image))
    assert np.array_equal(np.asarray(kept.image), result)


@pytest.mark.parametrize("setting", [True, False])
def test_correction_comes_from_the_setting(setting: bool) -> None:
    params = resolve(img2img_defaults(), {"img2img_color_correction": setting})
    assert params.img2img_color_correction is setting


class LoopContext:
    """Just enough of a ScriptContext for Loopback: each run returns its input."""

    def __init__(self, init: Image.Image) -> None:
        from types import SimpleNamespace

        self.job = SimpleNamespace(init_images=[init])
        self.inputs: list[dict] = []

    def plan(self, runs: list) -> None:
        pass

    def process(self, params, save: bool = True, **inputs):
        from types import SimpleNamespace

        self.inputs.append(inputs)
        image = inputs.get("init_images", self.job.init_images)[0]
        return [SimpleNamespace(image=image.copy(), infotext="x\nSteps: 1, Seed: 1, Size: 8x8")]

    def save_image(self, image, first, *, infotext=None):
        return dataclasses.replace(first, image=image) if dataclasses.is_dataclass(first) else first

    def save_grid(self, image, first) -> None:
        pass


@pytest.mark.parametrize("correction", [True, False])
def test_loopback_matches_every_loop_to_the_first_input(correction: bool) -> None:
    from sdtui_plugins.builtin.scripts.loopback import Loopback

    from sdtui.services.scripts import ScriptRequest

    init = noisy(4)
    context = LoopContext(init)
    params = dataclasses.replace(resolve(img2img_defaults()), img2img_color_correction=correction)
    options = {"loops": 3, "final_denoising_strength": 0.5, "denoising_curve": "Linear"}
    Loopback().run(context, ScriptRequest(params, options, "img2img"))
    references = [inputs.get("color_references") for inputs in context.inputs]
    assert references == ([[init]] * 3 if correction else [None] * 3)
