"""img2img's image geometry and masks, as A1111 does them (`modules/images.py`,
`modules/masking.py`, `StableDiffusionProcessingImg2Img.init`).

    image = resize_image(CROP_AND_RESIZE, image, 512, 512)
    mask = blur_mask(binary_mask(upload), 4)
    box = expand_crop_region(crop_region(mask, 32), 512, 512, *mask.size)

Resize modes (A1111's index): 0 "Just resize" stretches; 1 "Crop and resize" scales to
cover and crops the overflow evenly (the centre stays); 2 "Resize and fill" scales to fit,
centres, and fills the bars by stretching the image's outermost rows / columns; 3 "Just
resize (latent upscale)" leaves the image as it is (the latents are resized) — a mask given
mode 3 is resized as mode 2, as A1111's `resize_image` does for any mode but 0 and 1.
Enlarging RGB images goes through the img2img upscaler when there is one (A1111's
"Upscaler for img2img"); masks (mode L) always use Lanczos.

Masks are white where to repaint. `blur_mask` is OpenCV's GaussianBlur as A1111 calls it
(kernel 2 * int(2.5 * sigma + 0.5) + 1, sigma = mask blur, first along x, then along y, each
rounded to 8 bits, mirrored borders), written with numpy: values may differ from OpenCV's
fixed-point arithmetic by one level. `fill` is A1111's "fill" masked content: the unmasked
image blurred into the masked area at decreasing radii.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from sdtui.engine.upscale import resize_to
from sdtui.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE

JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL, LATENT_RESIZE = range(4)
BACKGROUND = "#ffffff"  # A1111's img2img_background_color: what transparency becomes
FILL_PASSES = ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1))  # (blur radius, repeats)

Box = tuple[int, int, int, int]  # left, top, right, bottom (right / bottom exclusive)


def _resize(
    image: Image.Image, width: int, height: int, upscaler: Any, tiling: dict[str, Any]
) -> Image.Image:
    if image.mode == "L" or upscaler is None:
        return image.resize((width, height), resample=Image.Resampling.LANCZOS)
    return resize_to(image, width, height, upscaler, **tiling)


def resize_image(
    mode: int,
    image: Image.Image,
    width: int,
    height: int,
    upscaler: Any = None,
    *,
    check: Any = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Image.Image:
    """`image` at width x height by resize mode `mode` (an index; 3 resizes as 2). The
    upscaler works in `tile` px tiles with `overlap` (A1111's ESRGAN_tile settings), calling
    `check` before each."""
    tiling = {"tile": tile, "overlap": overlap, "check": check}
    if mode == JUST_RESIZE:
        return _resize(image, width, height, upscaler, tiling)
    ratio, source_ratio = width / height, image.width / image.height
    if mode == CROP_AND_RESIZE:
        scaled_width = width if ratio > source_ratio else image.width * height // image.height
        scaled_height = height if ratio <= source_ratio else image.height * width // image.width
    else:
        scaled_width = width if ratio < source_ratio else image.width * height // image.height
        scaled_height = height if ratio >= source_ratio else image.height * width // image.width
    resized = _resize(image, scaled_width, scaled_height, upscaler, tiling)
    result = Image.new(image.mode, (width, height))
    result.paste(resized, box=(width // 2 - scaled_width // 2, height // 2 - scaled_height // 2))
    if mode != CROP_AND_RESIZE:
        _fill_bars(result, resized, ratio, source_ratio)
    return result


def _fill_bars(result: Image.Image, resized: Image.Image, ratio: float, source: float) -> None:
    """Resize and fill: stretch the first and last row (column) over the empty bars."""
    width, height = result.size
    if ratio < source:
        bar = height // 2 - resized.height // 2
        if bar > 0:
            top = resized.resize((width, bar), box=(0, 0, width, 0))
            bottom = resized.resize((width, bar), box=(0, resized.height, width, resized.height))
            result.paste(top, box=(0, 0))
            result.paste(bottom, box=(0, bar + resized.height))
    elif ratio > source:
        bar = width // 2 - resized.width // 2
        if bar > 0:
            left = resized.resize((bar, height), box=(0, 0, 0, height))
            right = resized.resize((bar, height), box=(resized.width, 0, resized.width, height))
            result.paste(left, box=(0, 0))
            result.paste(right, box=(bar + resized.width, 0))


def scale_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """A1111's "Resize by": the image's size times `scale`, down to multiples of 8."""
    scaled_width, scaled_height = int(width * scale), int(height * scale)
    return scaled_width - scaled_width % 8, scaled_height - scaled_height % 8


def flatten(image: Image.Image, background: str = BACKGROUND) -> Image.Image:
    """RGB, transparency replaced by `background` (A1111's images.flatten)."""
    if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        flat = Image.new("RGBA", image.size, background)
        flat.paste(image, mask=image)
        image = flat
    return image.convert("RGB")


def binary_mask(mask: Image.Image) -> Image.Image:
    """A mask as L: the alpha channel (over 128 = repaint) when the image has transparency,
    else its grey levels (A1111's create_binary_mask, rounding on)."""
    if mask.mode in ("LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        mask = mask.convert("RGBA")
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        return mask.getchannel("A").point(lambda value: 255 if value > 128 else 0)
    return mask.convert("L")


def _gaussian_kernel(sigma: float) -> np.ndarray:
    size = 2 * int(2.5 * sigma + 0.5) + 1
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    kernel = np.exp(-(offsets**2) / (2 * sigma * sigma))
    return kernel / kernel.sum()


def _blur_axis(values: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    radius = len(kernel) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius)
    padded = np.pad(values.astype(np.float64), pad, mode="reflect")  # OpenCV's REFLECT_101
    out = np.zeros(values.shape, dtype=np.float64)
    length = values.shape[axis]
    for index, weight in enumerate(kernel):
        window = padded[index : index + length] if axis == 0 else padded[:, index : index + length]
        out += weight * window
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def blur_mask(mask: Image.Image, blur_x: float, blur_y: float | None = None) -> Image.Image:
    """A1111's mask blur: a Gaussian of sigma `blur_x` along x, then `blur_y` along y."""
    values = np.asarray(mask.convert("L"))
    for axis, sigma in ((1, blur_x), (0, blur_x if blur_y is None else blur_y)):
        if sigma > 0:
            values = _blur_axis(values, _gaussian_kernel(sigma), axis)
    return Image.fromarray(values, "L")


def crop_region(mask: Image.Image, padding: int = 0) -> Box | None:
    """The box around every non-zero pixel, grown by `padding` inside the image; None for
    an empty mask (A1111's get_crop_region_v2)."""
    box = mask.getbbox()
    if box is None or not padding:
        return box
    left, top, right, bottom = box
    width, height = mask.size
    return (
        max(left - padding, 0),
        max(top - padding, 0),
        min(right + padding, width),
        min(bottom + padding, height),
    )


def _grow(low: int, high: int, wanted: float, limit: int) -> tuple[int, int]:
    extra = int(wanted - (high - low))
    low, high = low - extra // 2, high + extra - extra // 2
    if high >= limit:
        low, high = low - (high - limit), limit
    if low < 0:
        low, high = 0, high - low
    return low, min(high, limit)


def expand_crop_region(
    box: Box, width: int, height: int, image_width: int, image_height: int
) -> Box:
    """Grow `box` to the aspect ratio of width x height (A1111's expand_crop_region): the
    short side grows evenly, shifted back inside the image where it would cross an edge."""
    left, top, right, bottom = box
    ratio = width / height
    if (right - left) / (bottom - top) > ratio:
        top, bottom = _grow(top, bottom, (right - left) / ratio, image_height)
    else:
        left, right = _grow(left, right, (bottom - top) * ratio, image_width)
    return left, top, right, bottom


def fill(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill": the unmasked image, blurred at radii 256 ... 0, composited over
    itself, so the masked area takes the colours around it."""
    result = Image.new("RGBA", image.size)
    kept = Image.new("RGBa", image.size)
    kept.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    for radius, repeats in FILL_PASSES:
        blurred = kept.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            result.alpha_composite(blurred)
    return result.convert("RGB")


def overlay_of(image: Image.Image, overlay_mask: Image.Image) -> Image.Image:
    """The input's pixels to paste over a result: RGBA, opaque where the mask is 0,
    transparent where it is 255 (A1111's overlay image)."""
    kept = Image.new("RGBa", image.size)
    kept.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(overlay_mask))
    return kept.convert("RGBA")


def apply_overlay(
    image: Image.Image,
    overlay: Image.Image,
    paste_to: tuple[int, int, int, int] | None = None,
    upscaler: Any = None,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Image.Image:
    """A result with the input's unmasked pixels over it. With `paste_to` (x, y, w, h: Only
    masked), the result is first scaled into that box of the input (crop and resize, by
    `upscaler` in `tile` px tiles)."""
    image = uncrop(image, overlay.size, paste_to, upscaler, tile=tile, overlap=overlap)
    image = image.convert("RGBA")
    image.alpha_composite(overlay)
    return image.convert("RGB")


def uncrop(
    image: Image.Image,
    size: tuple[int, int],
    paste_to: tuple[int, int, int, int] | None,
    upscaler: Any = None,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Image.Image:
    """The result as it lies on the input before the overlay: itself, or with `paste_to`
    (Only masked) scaled into that box of a transparent canvas of the input's `size`."""
    if paste_to is None:
        return image
    x, y, width, height = paste_to
    base = Image.new("RGBA", size)
    scaled = resize_image(
        CROP_AND_RESIZE, image, width, height, upscaler, tile=tile, overlap=overlap
    )
    base.paste(scaled, (x, y))
    return base


def overlay_mask(overlay: Image.Image) -> Image.Image:
    """The mask an overlay was made with (A1111's mask_for_overlay): white where repainted."""
    return ImageOps.invert(overlay.getchannel("A"))


def mask_composite(denoised: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's save_mask_composite image: the result before the overlay, transparent where the
    mask is black, opaque where it is white (RGBA, premultiplied blend as A1111)."""
    return Image.composite(
        denoised.convert("RGBA").convert("RGBa"), Image.new("RGBa", denoised.size), mask
    ).convert("RGBA")
