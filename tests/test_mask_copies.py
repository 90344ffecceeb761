"""A1111's save_mask and save_mask_composite: the extra files beside an inpainted image.

The mask copy is the mask the overlay used (A1111's mask_for_overlay: blurred, white where
repainted) as RGB; the composite is the result before the overlay, transparent where that
mask is black. Both come after the image itself (A1111 saves them after it) and carry its
infotext.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from sdtui.engine.img2img import img2img
from sdtui.engine.masking import mask_composite, overlay_mask, overlay_of
from sdtui.engine.options import EngineOptions
from sdtui.params.schema import img2img_defaults
from sdtui.params.settings_schema import SETTINGS
from sdtui.params.validate import resolve
from sdtui.services.generation import RunSettings
from tests.test_color_correction import noisy
from tests.test_img2img_timesteps import host, tiny

COPIES = frozenset({"mask", "mask composite"})


def box_mask() -> Image.Image:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 12, 44, 40))
    return mask


def inpaint(area: str, keep: frozenset[str] = COPIES) -> tuple[list, list]:
    params = dataclasses.replace(
        img2img_defaults(), prompt="x", width=64, height=64, steps=2, seed=5, variation_seed=0,
        sampler="Euler", denoising_strength=0.75, inpaint_area=area, mask_blur=4,
        inpaint_full_res_padding=8,
    )  # fmt: skip
    events: list = []
    options = EngineOptions(
        host().samplers, host().schedules, keep_copies=keep,
        on_image=lambda result: events.append(("image", result, "")),
        on_intermediate=lambda result, suffix: events.append(("copy", result, suffix)),
    )  # fmt: skip
    results = img2img(tiny(), resolve(params), options, [noisy(3).resize((64, 64))], box_mask())
    return results, events


@pytest.mark.parametrize("area", ["Whole picture", "Only masked"])
def test_the_mask_and_the_composite_follow_the_image_with_its_infotext(area: str) -> None:
    (result,), events = inpaint(area)
    assert [(kind, suffix) for kind, _, suffix in events] == [
        ("image", ""),
        ("copy", "-mask"),
        ("copy", "-mask-composite"),
    ]
    mask_copy, composite = events[1][1], events[2][1]
    assert mask_copy.infotext == composite.infotext == result.infotext
    mask = np.asarray(mask_copy.image)
    assert mask_copy.image.mode == "RGB" and mask.shape == (64, 64, 3)
    # the blurred box: white inside, black far outside, grey along the blurred edge
    assert mask[26, 32].tolist() == [255] * 3 and mask[2, 2].tolist() == [0] * 3
    assert 0 < mask[9, 32, 0] < 255  # A1111 doubles the blurred mask: its edge is white
    pixels = np.asarray(composite.image)
    assert composite.image.mode == "RGBA"
    assert np.array_equal(pixels[..., 3], mask[..., 0])  # transparent where not repainted
    # inside the mask the composite shows the result: the overlay left those pixels alone
    final = np.asarray(result.image)
    assert np.array_equal(pixels[26, 32, :3], final[26, 32])


def test_no_copies_unless_asked_and_none_without_a_mask() -> None:
    _, events = inpaint("Whole picture", keep=frozenset())
    assert [kind for kind, _, _ in events] == ["image"]
    events = []
    params = dataclasses.replace(
        img2img_defaults(), prompt="x", width=64, height=64, steps=2, seed=5, sampler="Euler"
    )
    options = EngineOptions(
        host().samplers, host().schedules, keep_copies=COPIES,
        on_intermediate=lambda result, suffix: events.append(suffix),
    )  # fmt: skip
    img2img(tiny(), resolve(params), options, [noisy(3).resize((64, 64))])
    assert events == []


def test_the_mask_is_recovered_exactly_from_its_overlay() -> None:
    rng = np.random.default_rng(0)
    mask = Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), "L")
    overlay = overlay_of(noisy(1).resize((16, 16)), mask)
    assert np.array_equal(np.asarray(overlay_mask(overlay)), np.asarray(mask))


def test_the_composite_is_the_image_where_white_and_clear_where_black() -> None:
    image = Image.new("RGB", (4, 1), (200, 100, 50))
    mask = Image.fromarray(np.array([[0, 255, 128, 255]], dtype=np.uint8), "L")
    pixels = np.asarray(mask_composite(image, mask))
    assert pixels[0, 0].tolist() == [0, 0, 0, 0]
    assert pixels[0, 1].tolist() == [200, 100, 50, 255]
    assert pixels[0, 2, 3] == 128
    assert pixels[0, 3].tolist() == [200, 100, 50, 255]


def test_the_settings_turn_the_copies_on() -> None:
    settings = {name: setting.default for name, setting in SETTINGS.items()}
    assert RunSettings.from_settings(settings).keep_copies == frozenset()
    settings.update(save_mask=True, save_mask_composite=True)
    assert RunSettings.from_settings(settings).keep_copies == COPIES
