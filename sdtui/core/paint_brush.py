"""The brush of the painting canvas: stroke coverage at image resolution, colours, sizes.

    box, covered = segment_coverage((height, width), (0, 0), (20, 0), radius=2)
    parse_colour("#ff8000") == parse_colour("255, 128, 0") == (255, 128, 0)

A stroke is a chain of segments; each covers the pixels whose centre lies within `radius` of
the segment (a thick line with round caps), so consecutive points are joined however far
apart they are. Pixel (x, y) has its centre at (x, y): points are in pixel-index coordinates,
floats allowed. No PIL, no Textual; numpy is imported where it is used, so the widget can
import the palette and colour parsing without it while the app starts.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

Rgb = tuple[int, int, int]
Point = tuple[float, float]
Box = tuple[int, int, int, int]  # left, top, right, bottom; right and bottom exclusive

# Radii in image pixels that `[` and `]` step through.
BRUSH_SIZES: tuple[int, ...] = (
    *(1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64),
    *(80, 96, 112, 128, 160, 192, 256),
)
# Number keys 1-9 and 0; white first, A1111's initial sketch brush colour.
PALETTE: tuple[Rgb, ...] = (
    (255, 255, 255),
    (0, 0, 0),
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 128, 0),
    (128, 128, 128),
)
_TOLERANCE = 1e-9  # squared distances this close to radius² count as inside (float noise)


def segment_coverage(
    shape: tuple[int, int], start: Point, end: Point, radius: float
) -> tuple[Box, np.ndarray] | None:
    """The pixels of an image of `shape` (height, width) within `radius` of a segment.

    Returns the bounding box of the candidates, clipped to the image, and a boolean array of
    that box's size (True: covered); None when nothing of the image is near the segment.
    """
    import numpy as np

    height, width = shape
    (x0, y0), (x1, y1) = start, end
    left = max(0, math.floor(min(x0, x1) - radius))
    top = max(0, math.floor(min(y0, y1) - radius))
    right = min(width, math.ceil(max(x0, x1) + radius) + 1)
    bottom = min(height, math.ceil(max(y0, y1) + radius) + 1)
    if left >= right or top >= bottom:
        return None
    xs = np.arange(left, right, dtype=np.float64)[None, :] - x0
    ys = np.arange(top, bottom, dtype=np.float64)[:, None] - y0
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    if length2 > 0:
        along = np.clip((xs * dx + ys * dy) / length2, 0.0, 1.0)
        xs, ys = xs - along * dx, ys - along * dy
    covered = xs * xs + ys * ys <= radius * radius + _TOLERANCE
    return (left, top, right, bottom), covered


def union(first: Box | None, second: Box | None) -> Box | None:
    if first is None:
        return second
    if second is None:
        return first
    return (
        min(first[0], second[0]),
        min(first[1], second[1]),
        max(first[2], second[2]),
        max(first[3], second[3]),
    )


def changed_box(before: np.ndarray, after: np.ndarray) -> Box | None:
    """The bounding box where two equally shaped arrays (H, W[, C]) differ; None if equal."""
    import numpy as np

    differs = before != after
    if differs.ndim == 3:
        differs = differs.any(axis=2)
    rows = np.flatnonzero(differs.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(differs.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def step_size(radius: float, direction: int) -> int:
    """The next brush radius in BRUSH_SIZES up (direction > 0) or down from `radius`."""
    if direction > 0:
        return next((size for size in BRUSH_SIZES if size > radius), BRUSH_SIZES[-1])
    return next((size for size in reversed(BRUSH_SIZES) if size < radius), BRUSH_SIZES[0])


_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_TRIPLE = re.compile(r"(?:rgb)?\(?\s*(\d{1,3})\s*[, ]\s*(\d{1,3})\s*[, ]\s*(\d{1,3})\s*\)?")
COLOUR_FORMATS = "#rrggbb, #rgb or r,g,b with each 0-255"


class ColourError(ValueError):
    pass


def parse_colour(text: str) -> Rgb:
    """An RGB triple from "#rrggbb", "rrggbb", "#rgb", "r,g,b", "r g b" or "rgb(r, g, b)"."""
    value = text.strip()
    match = _HEX.fullmatch(value)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(digit * 2 for digit in digits)
        red, green, blue = (int(digits[index : index + 2], 16) for index in (0, 2, 4))
        return red, green, blue
    match = _TRIPLE.fullmatch(value.lower())
    if match:
        red, green, blue = (int(part) for part in match.groups())
        if max(red, green, blue) <= 255:
            return red, green, blue
        raise ColourError(f"{text.strip()!r}: each of r, g, b must be 0-255")
    raise ColourError(f"{text.strip()!r} is not a colour; use {COLOUR_FORMATS}")


def hex_colour(colour: Rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)
