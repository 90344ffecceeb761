"""What an image of the shapes dataset shows, measured from its pixels.

    found = measure(image)                 # Measured(background="blue", colour="red", ...)
    found.matches(spec)                    # {"background": True, "colour": True, ...}

Every pixel is classified as its nearest named colour (`COLOURS`, RGB distance). The
background is the most common colour of the border ring; the shape's colour is the most
common colour among the other pixels (anti-aliased edges between two colours are a
minority); the shape's pixels are those of that colour, and their centroid names the grid
cell (thirds of the image). The shape kind is the outline (circle, square, triangle of the
same area at the centroid) that overlaps those pixels best, and the size compares that
outline's radius with the midpoint of the small and large radii. An image with
fewer than `MIN_SHAPE_SHARE` of its pixels off the background has no shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from sdtui.training.shapes_dataset import (
    COLOURS,
    RADIUS,
    ShapeSpec,
    nearest_colour,
    position_at,
    render,
)

BORDER = 4  # pixels of the ring that decides the background
MIN_SHAPE_SHARE = 0.004  # of the image's pixels (~65 of 128x128; a small shape has ~290)
ATTRIBUTES = ("background", "colour", "position", "shape", "size")
# area / radius**2 of each kind as `shapes_dataset.render` draws it
AREA_PER_RADIUS_SQUARED = {"circle": np.pi, "square": 1.8**2, "triangle": 3 * 3**0.5 / 4 * 1.2**2}


@dataclass(frozen=True)
class Measured:
    background: str
    colour: str | None
    position: str | None
    shape: str | None
    size: str | None
    centroid: tuple[float, float] | None
    area: int

    def matches(self, spec: ShapeSpec) -> dict[str, bool]:
        return {name: getattr(self, name) == getattr(spec, name) for name in ATTRIBUTES}


def _mode(labels: np.ndarray) -> int:
    return int(np.bincount(labels.ravel(), minlength=len(COLOURS)).argmax())


def _kind_and_radius(mask: np.ndarray, centroid: tuple[float, float]) -> tuple[str, float]:
    """The shape kind whose outline, drawn at the centroid with the mask's area, overlaps the
    mask best (intersection over union), and that outline's radius."""
    width = mask.shape[1]
    area = float(mask.sum())
    best: tuple[float, str, float] = (-1.0, "circle", 0.0)
    for kind, share in AREA_PER_RADIUS_SQUARED.items():
        radius = float(np.sqrt(area / share))
        spec = ShapeSpec(kind, "white", "black", "centre", "small")
        outline = np.asarray(render(spec, centroid, radius, width))[..., 0] > 127
        union = np.logical_or(outline, mask).sum()
        iou = float(np.logical_and(outline, mask).sum() / max(1, union))
        if iou > best[0]:
            best = (iou, kind, radius)
    return best[1], best[2]


def measure(image: Image.Image) -> Measured:
    pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    labels = nearest_colour(pixels)
    names = list(COLOURS)
    ring = np.ones((height, width), dtype=bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    background = _mode(labels[ring])
    off = labels != background
    if off.sum() < MIN_SHAPE_SHARE * height * width:
        return Measured(names[background], None, None, None, None, None, int(off.sum()))
    colour = _mode(labels[off])
    ys, xs = np.nonzero(labels == colour)
    centroid = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
    kind, radius = _kind_and_radius(labels == colour, centroid)
    threshold = (RADIUS["small"] + RADIUS["large"]) / 2 * min(height, width)
    return Measured(
        background=names[background],
        colour=names[colour],
        position=position_at(centroid[0] * 128 / width, centroid[1] * 128 / height, 128),
        shape=kind,
        size="large" if radius > threshold else "small",
        centroid=centroid,
        area=len(xs),
    )
