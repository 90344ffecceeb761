"""img2img's geometry and masks against hand-computed boxes and A1111's definitions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from sdtui.engine.img2img_inputs import latent_mask, prepare_inputs
from sdtui.engine.masking import (
    CROP_AND_RESIZE,
    JUST_RESIZE,
    RESIZE_AND_FILL,
    apply_overlay,
    binary_mask,
    blur_mask,
    crop_region,
    expand_crop_region,
    fill,
    flatten,
    overlay_of,
    resize_image,
    scale_size,
)
from sdtui.params.schema import img2img_defaults

LANCZOS = Image.Resampling.LANCZOS


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    values = np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(values, "RGB")


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int], value: int = 255):
    mask = Image.new("L", size)
    mask.paste(value, box)
    return mask


def array(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def params(**changes):
    return dataclasses.replace(img2img_defaults(), **changes)


# -- resize modes ----------------------------------------------------------------------------


def test_just_resize_stretches() -> None:
    image = noise_image(96, 48)
    out = resize_image(JUST_RESIZE, image, 64, 64)
    assert np.array_equal(array(out), array(image.resize((64, 64), LANCZOS)))


def test_crop_and_resize_without_scaling_is_a_centre_crop() -> None:
    image = noise_image(128, 64)  # already 64 high: the 64 x 64 crop at x = 32
    out = resize_image(CROP_AND_RESIZE, image, 64, 64)
    assert np.array_equal(array(out), array(image.crop((32, 0, 96, 64))))


@pytest.mark.parametrize(
    ("size", "scaled", "box"),
    [((200, 100), (128, 64), (32, 0, 96, 64)), ((100, 200), (64, 128), (0, 32, 64, 96))],
)
def test_crop_and_resize_covers_then_crops_evenly(size, scaled, box) -> None:
    image = noise_image(*size)
    out = resize_image(CROP_AND_RESIZE, image, 64, 64)
    expected = image.resize(scaled, LANCZOS).crop(box)
    assert np.array_equal(array(out), array(expected))


def test_resize_and_fill_fits_and_stretches_the_edges_over_the_bars() -> None:
    # 200 x 100 into 64 x 64: the image at 64 x 32 in rows 16-47, bars of 16 rows
    top, bottom = (200, 10, 10), (10, 10, 200)
    image = noise_image(200, 100)
    image.paste(top, (0, 0, 200, 20))
    image.paste(bottom, (0, 80, 200, 100))
    out = array(resize_image(RESIZE_AND_FILL, image, 64, 64))
    assert np.array_equal(out[16:48], array(image.resize((64, 32), LANCZOS)))
    assert (np.abs(out[:16] - top) <= 1).all() and (np.abs(out[48:] - bottom) <= 1).all()


def test_resize_and_fill_tall_fills_left_and_right() -> None:
    left, right = (10, 200, 10), (200, 200, 10)
    image = noise_image(100, 200)
    image.paste(left, (0, 0, 20, 200))
    image.paste(right, (80, 0, 100, 200))
    out = array(resize_image(RESIZE_AND_FILL, image, 64, 64))
    assert np.array_equal(out[:, 16:48], array(image.resize((32, 64), LANCZOS)))
    assert (np.abs(out[:, :16] - left) <= 1).all() and (np.abs(out[:, 48:] - right) <= 1).all()


def test_latent_resize_leaves_the_image_and_resize_by_rounds_to_8() -> None:
    image = noise_image(80, 48)
    inputs = prepare_inputs(
        params(width=64, height=64, resize_mode="Just resize (latent upscale)"), [image]
    )
    assert inputs.images[0].size == (80, 48)
    assert scale_size(100, 75, 1.5) == (144, 112) and scale_size(64, 48, 1.0) == (64, 48)


def test_flatten_puts_transparency_on_white() -> None:
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    flat = array(flatten(image))
    assert tuple(flat[0, 0]) == (255, 0, 0) and tuple(flat[3, 3]) == (255, 255, 255)


# -- masks -----------------------------------------------------------------------------------


def test_binary_mask_reads_alpha_or_grey() -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 100))
    rgba.paste((0, 0, 0, 200), (2, 2, 6, 6))
    values = array(binary_mask(rgba))
    assert (values[2:6, 2:6] == 255).all() and values.sum() == 16 * 255
    grey = Image.new("RGB", (8, 8), (90, 90, 90))
    assert (array(binary_mask(grey)) == 90).all()


def test_mask_blur_is_opencvs_gaussian() -> None:
    # sigma 4: 2 * int(10.5) + 1 = 21 taps exp(-k^2 / 32), k = -10..10, summing to 9.906:
    # 255 / 9.906 = 25.7 at the centre, 255 * exp(-100 / 32) / 9.906 = 1.13 ten pixels out
    line = box_mask((64, 8), (32, 0, 33, 8))
    row = array(blur_mask(line, 4))[3]
    assert row[32] == 26 and row[22] == row[42] == 1 and row[21] == row[43] == 0
    assert np.array_equal(row[22:33], row[32:43][::-1])
    assert np.array_equal(array(blur_mask(line, 0)), array(line))


def test_crop_region_pads_and_expands_to_the_target_aspect() -> None:
    mask = box_mask((64, 64), (10, 30, 20, 34))
    box = crop_region(mask, 4)
    assert box == (6, 26, 24, 38)
    assert expand_crop_region(box, 64, 32, 64, 64) == (3, 26, 27, 38)
    assert crop_region(Image.new("L", (8, 8)), 4) is None


@pytest.mark.parametrize(
    ("box", "target", "image", "expected"),
    [
        ((50, 10, 64, 20), (32, 64), (64, 64), (50, 1, 64, 29)),  # grows evenly
        ((0, 50, 10, 60), (16, 32), (64, 64), (0, 44, 10, 64)),  # shifted up from the edge
        ((2, 0, 6, 8), (32, 8), (64, 8), (0, 0, 32, 8)),  # shifted right from the edge
    ],
)
def test_expand_crop_region_stays_inside(box, target, image, expected) -> None:
    assert expand_crop_region(box, *target, *image) == expected


def test_fill_takes_the_colours_around_the_mask_and_keeps_the_rest() -> None:
    image = Image.new("RGB", (64, 64), (220, 20, 20))
    image.paste((20, 20, 220), (32, 0, 64, 64))
    mask = box_mask((64, 64), (4, 20, 20, 44))
    filled = array(fill(image, mask))
    outside = array(mask) == 0
    assert np.array_equal(filled[outside], array(image)[outside])
    inside = filled[20:44, 4:20]
    assert (inside[..., 0] > 150).all() and (inside[..., 2] < 100).all()


def test_overlay_puts_back_exactly_the_unmasked_pixels() -> None:
    source, result = noise_image(32, 32, 1), noise_image(32, 32, 2)
    mask = box_mask((32, 32), (8, 8, 24, 24))
    mask.paste(128, (0, 0, 4, 4))
    out = array(apply_overlay(result, overlay_of(source, mask)))
    values = array(mask)
    assert np.array_equal(out[values == 0], array(source)[values == 0])
    assert np.array_equal(out[values == 255], array(result)[values == 255])


# -- prepared inputs ----------------------------------------------------------------------------


def test_only_masked_crops_the_padded_box_at_the_target_aspect() -> None:
    image = noise_image(64, 64)
    mask = box_mask((64, 64), (8, 40, 16, 48))
    request = params(width=32, height=32, mask_blur=0, inpaint_area="Only masked")
    inputs = prepare_inputs(dataclasses.replace(request, inpaint_full_res_padding=4), [image], mask)
    assert inputs.paste_to == (4, 36, 16, 16)
    expected = image.crop((4, 36, 20, 52)).resize((32, 32), LANCZOS)
    assert np.array_equal(array(inputs.images[0]), array(expected))
    assert inputs.mask.size == (32, 32) and inputs.overlays[0].size == (64, 64)
    wide = prepare_inputs(
        dataclasses.replace(request, width=64, inpaint_full_res_padding=4), [image], mask
    )
    assert wide.paste_to == (0, 36, 32, 16)


def test_whole_picture_overlay_is_the_doubled_mask() -> None:
    mask = box_mask((24, 8), (8, 0, 16, 8), 100)  # grey levels stay: 0, 100, 255
    mask.paste(255, (16, 0, 24, 8))
    inputs = prepare_inputs(params(width=24, height=8, mask_blur=0), [noise_image(24, 8)], mask)
    alpha = array(inputs.overlays[0].getchannel("A"))  # 255 - min(2 * mask, 255)
    assert (alpha[:, :8] == 255).all() and (alpha[:, 8:16] == 55).all()
    assert (alpha[:, 16:] == 0).all()


def test_inverted_stretched_and_empty_masks() -> None:
    image = noise_image(64, 64)
    small = box_mask((32, 32), (0, 0, 16, 32))  # left half, at half size
    request = params(width=64, height=64, mask_blur=0, mask_mode="Inpaint not masked")
    values = array(prepare_inputs(request, [image], small).mask)
    assert (values[:, :24] == 0).all() and (values[:, 40:] == 255).all()
    empty = params(width=64, height=64, inpaint_area="Only masked")
    dropped = prepare_inputs(empty, [image], Image.new("L", (64, 64)))
    assert dropped.dropped and dropped.mask is None and dropped.overlays is None


def test_latent_mask_is_the_rounded_downscale() -> None:
    mask = box_mask((64, 64), (16, 16, 40, 40))
    expected = np.zeros((8, 8))
    expected[2:5, 2:5] = 1
    assert np.array_equal(latent_mask(mask, 8, 8)[0, 0].numpy(), expected)


def test_a_mask_with_latent_resize_needs_the_target_size() -> None:
    request = params(width=64, height=64, resize_mode="Just resize (latent upscale)")
    with pytest.raises(ValueError, match="needs the image at 64x64"):
        prepare_inputs(request, [noise_image(80, 48)], Image.new("L", (80, 48), 255))
