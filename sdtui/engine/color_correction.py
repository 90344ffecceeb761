"""A1111's img2img colour correction (`processing.setup_color_correction` /
`apply_color_correction`), written with numpy.

    correction = ColorCorrection.of(init_image)  # the colours to keep
    image = correction.apply(generated)

The reference is the input in 8-bit CIELAB as OpenCV's `cvtColor(COLOR_RGB2LAB)` computes
it (D65, L x 255 / 100, a and b + 128, OpenCV's fixed-point tables). A result is converted
the same way, each of its L, a, b channels is histogram-matched to the reference's
(scikit-image's `match_histograms(channel_axis=2)`: the source quantiles interpolated on
the reference's, truncated back to 8 bits), converted back with OpenCV's bit-exact
integer `COLOR_LAB2RGB`, and then blended under the result with blendmodes' LUMINOSITY
(`blendLayers(corrected, result, LUMINOSITY)`): the corrected image's hue and saturation
with the result's own luminosity (0.299 R + 0.587 G + 0.114 B), out-of-gamut colours
pulled back towards that luminosity, truncated to 8 bits as blendmodes 2022 does.

The OpenCV tables are rebuilt here from its formulas in float32 / float64 arithmetic
(OpenCV uses its own soft-float); a table entry could differ in a rare last-bit rounding
case, which moves that value by one level.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

# OpenCV's constants (color_lab.cpp): sRGB -> XYZ and back, the D65 white point.
RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
XYZ_TO_RGB = np.array(
    [
        [3.240479, -1.53715, -0.498535],
        [-0.969256, 1.875991, 0.041556],
        [0.055648, -0.204043, 1.057311],
    ]
)
D65 = np.array([0.950456, 1.0, 1.088754])

XYZ_SHIFT = 12  # lab_shift
GAMMA_SHIFT = 3
LAB_SHIFT2 = XYZ_SHIFT + GAMMA_SHIFT
CUBE_ROOT_TABLE_SIZE = 256 * 3 // 2 * (1 << GAMMA_SHIFT)
BASE = 1 << 14  # LUT_BASE of the integer Lab -> RGB conversion
INVERSE_GAMMA_SHIFT = 12
MIN_AB = -8145  # abToXZ_b's first index
F32 = np.float32


def _descale(x: np.ndarray, n: int) -> np.ndarray:
    """OpenCV's CV_DESCALE: x / 2^n rounded, with an arithmetic shift."""
    return (x + (1 << (n - 1))) >> n


def _c_divide(a: np.ndarray, b: int) -> np.ndarray:
    """C's integer division (truncates towards zero)."""
    return np.sign(a) * (np.abs(a) // b)


def _gamma(x: np.ndarray) -> np.ndarray:
    """sRGB decoding in double from float32 inputs, rounded to float32 (applyGamma)."""
    x = x.astype(np.float64)
    linear = np.where(x <= 809 / 20000, x / (323 / 25), ((x + 0.055) / 1.055) ** 2.4)
    return linear.astype(F32)


def _inverse_gamma(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    encoded = np.where(x <= 7827 / 2500000, x * (323 / 25), np.power(x, 1 / 2.4) * 1.055 - 0.055)
    return encoded.astype(F32)


@functools.cache
def _to_lab_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB2Lab_b's tables: the gamma table (x 8), the cube-root table (x 2^15) and the
    RGB -> XYZ / white matrix (x 2^12)."""
    levels = np.arange(256)
    gamma = np.rint(F32(255 << GAMMA_SHIFT) * _gamma(levels.astype(F32) / F32(255)))
    x = F32(1) / F32(255 << GAMMA_SHIFT) * np.arange(CUBE_ROOT_TABLE_SIZE).astype(F32)
    threshold = F32(216) / F32(24389)
    linear = (
        x.astype(np.float64) * np.float64(F32(841) / F32(108)) + np.float64(F32(16) / F32(116))
    ).astype(F32)
    cube_root = np.cbrt(x.astype(np.float64)).astype(F32)
    f = np.where(x < threshold, linear, cube_root)
    cube_root_table = np.rint(F32(1 << LAB_SHIFT2) * f)
    matrix = np.rint((1 << XYZ_SHIFT) * RGB_TO_XYZ / D65[:, None])
    return gamma.astype(np.int64), cube_root_table.astype(np.int64), matrix.astype(np.int64)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's 8-bit `cvtColor(rgb, COLOR_RGB2LAB)`: uint8 [..., 3] -> uint8 [..., 3]."""
    gamma, cube_root, matrix = _to_lab_tables()
    linear = gamma[np.asarray(rgb, dtype=np.uint8)[..., :3]]  # [..., 3], x 2040
    xyz = _descale(linear @ matrix.T, XYZ_SHIFT)
    fx, fy, fz = (cube_root[xyz[..., i]] for i in range(3))
    lightness = _descale(296 * fy - 1336934, LAB_SHIFT2)  # (116 * 255 + 50) / 100, 16 * 255 / 100
    a = _descale(500 * (fx - fy) + (128 << LAB_SHIFT2), LAB_SHIFT2)
    b = _descale(200 * (fy - fz) + (128 << LAB_SHIFT2), LAB_SHIFT2)
    return np.clip(np.stack([lightness, a, b], axis=-1), 0, 255).astype(np.uint8)


@functools.cache
def _to_rgb_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lab2RGBinteger's tables: L -> (y, f(y)) (x 2^14), f -> x or z, the XYZ -> RGB
    matrix (x 2^12, white point folded in) and the inverse gamma table (4096 entries)."""
    levels = np.arange(256)
    low = levels <= 20
    y_low = np.rint(F32(1) * (levels * BASE * 180).astype(F32) / F32(17 * 29**3))
    f_low = np.rint(F32(BASE) * (F32(16) / F32(116) + (levels * 5).astype(F32) / F32(3 * 17 * 29)))
    fy = (levels * 100 * BASE).astype(F32) / F32(255 * 116) + F32(16 * BASE) / F32(116)
    y_high = np.rint(fy * fy * fy / F32(BASE * BASE))
    y = np.where(low, y_low, y_high).astype(np.int64)
    f = np.where(low, f_low, np.rint(fy)).astype(np.int64)
    i = np.arange(MIN_AB, BASE * 9 // 4 + MIN_AB, dtype=np.int64)
    offset = 262144 // 116 * 108 // 841  # LUT_BASE * 16 / 116 * 108 / 841 in C
    cube = (i * i // BASE) * i // BASE
    to_xz = np.where(i <= 3390, _c_divide(i * 108, 841) - offset, cube)
    matrix = np.rint((1 << XYZ_SHIFT) * XYZ_TO_RGB * D65[None, :]).astype(np.int64)
    inverse = np.arange(1 << INVERSE_GAMMA_SHIFT).astype(F32) * (F32(1) / F32(4096))
    encode = np.rint(F32(255) * _inverse_gamma(inverse)).astype(np.int64)
    return np.stack([y, f], axis=-1), to_xz, matrix, encode


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """OpenCV's 8-bit `cvtColor(lab, COLOR_LAB2RGB)` (its bit-exact integer path)."""
    yf, to_xz, matrix, encode = _to_rgb_tables()
    lab = np.asarray(lab, dtype=np.int64)
    y, fy = yf[lab[..., 0], 0], yf[lab[..., 0], 1]
    a_part = ((5 * lab[..., 1] * 53687 + (1 << 7)) >> 13) - 128 * BASE // 500
    b_part = ((lab[..., 2] * 41943 + (1 << 4)) >> 9) - 128 * BASE // 200 + 1
    x, z = to_xz[fy + a_part - MIN_AB], to_xz[fy - b_part - MIN_AB]
    xyz = np.stack([x, y, z], axis=-1)
    shift = XYZ_SHIFT + (14 - INVERSE_GAMMA_SHIFT)
    rgb = np.clip(_descale(xyz @ matrix.T, shift), 0, (1 << INVERSE_GAMMA_SHIFT) - 1)
    return np.clip(encode[rgb], 0, 255).astype(np.uint8)


def match_histograms(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """scikit-image's `match_histograms(image, reference, channel_axis=2)` for uint8
    images: each channel's cumulative histogram mapped onto the reference's."""
    matched = np.empty(image.shape, dtype=np.uint8)
    for channel in range(image.shape[-1]):
        source = image[..., channel].reshape(-1)
        template = reference[..., channel].reshape(-1)
        source_counts = np.bincount(source)
        template_counts = np.bincount(template)
        template_values = np.nonzero(template_counts)[0]
        source_quantiles = np.cumsum(source_counts) / source.size
        template_quantiles = np.cumsum(template_counts[template_values]) / template.size
        values = np.interp(source_quantiles, template_quantiles, template_values)
        matched[..., channel] = values[source].reshape(image.shape[:-1])  # truncates
    return matched


def _luminosity(colours: np.ndarray) -> np.ndarray:
    return colours[..., 0] * 0.299 + colours[..., 1] * 0.587 + colours[..., 2] * 0.114


def blend_luminosity(background: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """blendmodes' LUMINOSITY of two opaque uint8 RGB images: the background's colour at
    the foreground's luminosity (W3C SetLum with ClipColor), truncated to uint8."""
    colours = background.astype(np.float64) / 255
    target = _luminosity(foreground.astype(np.float64) / 255)
    colours = colours + (target - _luminosity(colours))[..., None]
    lum = _luminosity(colours)[..., None]
    low, high = colours.min(axis=-1, keepdims=True), colours.max(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        raised = lum + (colours - lum) * lum / (lum - low)
        colours = np.where(low < 0, raised, colours)
        lowered = lum + (colours - lum) * (1 - lum) / (high - lum)  # high as before the first
        colours = np.where(high > 1, lowered, colours)
    return (np.clip(colours, 0, 1) * 255).astype(np.uint8)


@dataclass(frozen=True)
class ColorCorrection:
    """The input's colours in OpenCV's 8-bit CIELAB (A1111's `setup_color_correction`)."""

    reference: np.ndarray  # uint8 [height, width, 3]

    @classmethod
    def of(cls, image: Image.Image) -> ColorCorrection:
        return cls(rgb_to_lab(np.asarray(image.convert("RGB"))))

    def apply(self, image: Image.Image) -> Image.Image:
        """A1111's `apply_color_correction`: the result's histograms matched to the
        input's in CIELAB, under the result's own luminosity."""
        original = np.asarray(image.convert("RGB"))
        matched = match_histograms(rgb_to_lab(original), self.reference)
        corrected = lab_to_rgb(matched)
        return Image.fromarray(blend_luminosity(corrected, original), "RGB")


def color_corrections(images: Sequence[Image.Image]) -> list[ColorCorrection]:
    return [ColorCorrection.of(image) for image in images]
