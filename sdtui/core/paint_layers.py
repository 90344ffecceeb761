"""PaintDocument: a colour layer and a mask painted over an image, with undo, at its resolution.

    doc = PaintDocument(init_image, mode="inpaint")
    doc.radius, doc.colour = 8, (255, 0, 0)
    doc.begin_stroke((10, 10)); doc.stroke_to((40, 12)); doc.end_stroke()  # one undo step
    doc.fill_rect((0, 0), (15, 15)); doc.undo(); doc.redo(); doc.clear()
    doc.composite()                          # sketch: the colour layer over the image (RGB)
    doc.mask()                               # L, white = inpaint
    doc.inpaint_sketch_inputs(mask_blur=4)   # (image, mask) as A1111's inpaint sketch makes them
    doc.preview()                            # what the canvas shows (mask as a tinted overlay)

Modes, as A1111's img2img sub-tabs: "sketch" paints colour; "inpaint" paints the mask;
"inpaint_sketch" paints colour, and the mask is every pixel the colour changed, at
`mask_transparency` (0-100, A1111's "Mask transparency"). The eraser paints transparency
(colour) or unmasks (mask). Undo is per stroke / rectangle / clear and keeps only the changed
bounding box of each step (within `max_undo_bytes`). Points are (x, y) in pixel-index
coordinates (pixel (x, y) is centred at (x, y)), floats allowed. PIL and numpy, no Textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from sdtui.core.paint_brush import (
    PALETTE,
    Box,
    Point,
    Rgb,
    changed_box,
    segment_coverage,
    union,
)

PaintMode = Literal["sketch", "inpaint", "inpaint_sketch"]
PAINT_MODES: tuple[PaintMode, ...] = ("sketch", "inpaint", "inpaint_sketch")
MASK_TINT: Rgb = (255, 0, 255)  # the overlay that shows the mask in "inpaint" mode
MASK_OPACITY = 0.5
MAX_UNDO_BYTES = 256 * 1024 * 1024


@dataclass
class _Step:
    """One undoable edit: the layers' pixels in `box` as they were on the other side of it."""

    box: Box
    colour: np.ndarray
    mask: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.colour.nbytes + self.mask.nbytes


@dataclass
class _Stroke:
    colour: np.ndarray  # both layers as they were when the stroke began
    mask: np.ndarray
    last: Point
    box: Box | None = None  # where it has painted so far


class PaintDocument:
    """The layers painted over one image, the brush, and the undo history."""

    def __init__(
        self,
        image: Image.Image,
        mode: PaintMode = "inpaint",
        *,
        colour: Rgb = PALETTE[0],
        radius: float | None = None,
        max_undo_bytes: int = MAX_UNDO_BYTES,
    ) -> None:
        if mode not in PAINT_MODES:
            raise ValueError(f"unknown paint mode {mode!r}; known: {', '.join(PAINT_MODES)}")
        self._base = np.array(image.convert("RGB"), dtype=np.uint8)
        height, width = self._base.shape[:2]
        self._colour = np.zeros((height, width, 4), np.uint8)
        self._mask = np.zeros((height, width), np.uint8)
        self._mode: PaintMode = mode
        self._transparency = 0.0
        self.colour: Rgb = colour
        self.radius: float = (
            radius if radius is not None else max(2, round(max(width, height) / 64))
        )
        self.eraser = False
        self.max_undo_bytes = max_undo_bytes
        self.version = 0  # counts every change of what `preview` shows
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._stroke: _Stroke | None = None
        self._preview = np.empty_like(self._base)
        self._dirty: Box | None = (0, 0, width, height)

    # -- state -----------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image and of both layers."""
        return self._base.shape[1], self._base.shape[0]

    @property
    def image(self) -> Image.Image:
        """The image painted over (RGB), as given."""
        return Image.fromarray(self._base)

    @property
    def mode(self) -> PaintMode:
        return self._mode

    @mode.setter
    def mode(self, value: PaintMode) -> None:
        if value not in PAINT_MODES:
            raise ValueError(f"unknown paint mode {value!r}; known: {', '.join(PAINT_MODES)}")
        self.end_stroke()
        self._mode = value
        self._touch((0, 0, *self.size))

    @property
    def mask_transparency(self) -> float:
        """A1111's "Mask transparency" (0-100) of the inpaint-sketch mask."""
        return self._transparency

    @mask_transparency.setter
    def mask_transparency(self, value: float) -> None:
        self._transparency = min(100.0, max(0.0, float(value)))
        self._touch((0, 0, *self.size))

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) or self._stroke is not None

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def stroke_open(self) -> bool:
        return self._stroke is not None

    @property
    def is_blank(self) -> bool:
        """Nothing painted (in any layer)."""
        return not self._colour[..., 3].any() and not self._mask.any()

    @property
    def undo_bytes(self) -> int:
        return sum(step.nbytes for step in self._undo) + sum(step.nbytes for step in self._redo)

    # -- painting --------------------------------------------------------------------------

    def begin_stroke(self, point: Point) -> None:
        """Start a stroke with a dot at `point` (an open stroke is ended first)."""
        self.end_stroke()
        self._stroke = _Stroke(self._colour.copy(), self._mask.copy(), point)
        self._paint_segment(point, point)

    def stroke_to(self, point: Point) -> None:
        """Continue the stroke to `point`: a thick line from the last point, round caps."""
        if self._stroke is None:
            self.begin_stroke(point)
            return
        self._paint_segment(self._stroke.last, point)
        self._stroke.last = point

    def end_stroke(self) -> bool:
        """Close the open stroke as one undo step; False when it changed nothing (or none)."""
        stroke, self._stroke = self._stroke, None
        if stroke is None or stroke.box is None:
            return False
        return self._record(stroke.box, stroke.colour, stroke.mask, offset=False)

    def stroke(self, points: list[Point]) -> bool:
        """A whole stroke through `points` (one undo step)."""
        if not points:
            return False
        self.begin_stroke(points[0])
        for point in points[1:]:
            self.stroke_to(point)
        return self.end_stroke()

    def fill_rect(self, corner: Point, other: Point) -> bool:
        """Paint the box between two corners (inclusive, rounded to pixels): one undo step."""
        self.end_stroke()
        width, height = self.size
        left, right = sorted((round(corner[0]), round(other[0])))
        top, bottom = sorted((round(corner[1]), round(other[1])))
        box = (max(0, left), max(0, top), min(width, right + 1), min(height, bottom + 1))
        if box[0] >= box[2] or box[1] >= box[3]:
            return False
        before_colour, before_mask = self._patches(box)
        self._write(box, np.ones((box[3] - box[1], box[2] - box[0]), bool))
        return self._record(box, before_colour, before_mask, offset=True)

    def clear(self) -> bool:
        """Erase both layers: one undo step (False when there was nothing to clear)."""
        self.end_stroke()
        box = union(changed_box(self._mask, np.zeros_like(self._mask)), self._alpha_box())
        if box is None:
            return False
        before_colour, before_mask = self._patches(box)
        left, top, right, bottom = box
        self._colour[top:bottom, left:right] = 0
        self._mask[top:bottom, left:right] = 0
        self._touch(box)
        return self._record(box, before_colour, before_mask, offset=True)

    def pick(self, point: Point) -> Rgb:
        """Eyedropper: the colour layer over the image at `point` becomes the brush colour."""
        width, height = self.size
        x = min(width - 1, max(0, round(point[0])))
        y = min(height - 1, max(0, round(point[1])))
        alpha = int(self._colour[y, x, 3])
        base, paint = self._base[y, x].astype(int), self._colour[y, x, :3].astype(int)
        mixed = (paint * alpha + base * (255 - alpha) + 127) // 255
        self.colour = (int(mixed[0]), int(mixed[1]), int(mixed[2]))
        return self.colour

    # -- undo ------------------------------------------------------------------------------

    def undo(self) -> bool:
        self.end_stroke()
        if not self._undo:
            return False
        step = self._undo.pop()
        self._swap(step)
        self._redo.append(step)
        return True

    def redo(self) -> bool:
        self.end_stroke()
        if not self._redo:
            return False
        step = self._redo.pop()
        self._swap(step)
        self._undo.append(step)
        return True

    # -- results ---------------------------------------------------------------------------

    def composite(self) -> Image.Image:
        """The colour layer over the image (RGB): the init image of "sketch"."""
        base = Image.fromarray(self._base).convert("RGBA")
        return Image.alpha_composite(base, Image.fromarray(self._colour)).convert("RGB")

    def mask(self) -> Image.Image:
        """The inpainting mask (L, white = inpaint) of the current mode; black for "sketch"."""
        if self._mode == "inpaint":
            return Image.fromarray(self._mask.copy())
        if self._mode == "sketch":
            return Image.new("L", self.size, 0)
        return self.inpaint_sketch_inputs(0)[1]

    def inpaint_sketch_inputs(self, mask_blur: float = 0) -> tuple[Image.Image, Image.Image]:
        """(image, mask) as A1111's inpaint sketch builds them from the sketch and the original.

        The mask is every pixel the sketch changed, dimmed by the mask transparency; the
        image is the sketch blurred by `mask_blur`, composited over the original through the
        equally blurred mask (modules/img2img.py, mode 3).
        """
        sketch, original = self.composite(), self.image
        changed = np.any(np.asarray(sketch) != self._base, axis=-1)
        mask = Image.fromarray((changed * 255).astype(np.uint8))
        mask = ImageEnhance.Brightness(mask).enhance(1 - self._transparency / 100)
        blur = ImageFilter.GaussianBlur(mask_blur)
        image = Image.composite(sketch.filter(blur), original, mask.filter(blur))
        return image.convert("RGB"), mask

    def preview(self) -> Image.Image:
        """What the canvas shows (RGB): the sketch, or the mask as a translucent overlay."""
        if self._dirty is not None:
            left, top, right, bottom = self._dirty
            self._preview[top:bottom, left:right] = self._render(self._dirty)
            self._dirty = None
        return Image.fromarray(self._preview)

    # -- inside ----------------------------------------------------------------------------

    def _render(self, box: Box) -> np.ndarray:
        left, top, right, bottom = box
        base = self._base[top:bottom, left:right].astype(np.float32)
        layer = self._colour[top:bottom, left:right].astype(np.float32)
        alpha = layer[..., 3:] / 255.0
        sketch = layer[..., :3] * alpha + base * (1.0 - alpha)
        if self._mode == "inpaint":
            weight = self._mask[top:bottom, left:right, None].astype(np.float32) / 255.0
            weight *= MASK_OPACITY
            sketch = sketch * (1.0 - weight) + np.asarray(MASK_TINT, np.float32) * weight
        elif self._mode == "inpaint_sketch":
            sketch = base + (sketch - base) * (1.0 - self._transparency / 100.0)
        return np.clip(np.rint(sketch), 0, 255).astype(np.uint8)

    def _paint_segment(self, start: Point, end: Point) -> None:
        assert self._stroke is not None
        found = segment_coverage(self._base.shape[:2], start, end, self.radius)
        if found is None:
            return
        box, covered = found
        self._write(box, covered)
        self._stroke.box = union(self._stroke.box, box)

    def _write(self, box: Box, covered: np.ndarray) -> None:
        """Paint the `covered` pixels of `box` with the brush, in the current mode's layer."""
        left, top, right, bottom = box
        if self._mode == "inpaint":
            self._mask[top:bottom, left:right][covered] = 0 if self.eraser else 255
        else:
            value = (0, 0, 0, 0) if self.eraser else (*self.colour, 255)
            self._colour[top:bottom, left:right][covered] = value
        self._touch(box)

    def _patches(self, box: Box) -> tuple[np.ndarray, np.ndarray]:
        left, top, right, bottom = box
        return (
            self._colour[top:bottom, left:right].copy(),
            self._mask[top:bottom, left:right].copy(),
        )

    def _record(self, box: Box, colour: np.ndarray, mask: np.ndarray, *, offset: bool) -> bool:
        """Push the step that restores `colour`/`mask` (whole layers, or patches of `box`
        with `offset`), shrunk to where they differ from now; False when nothing changed."""
        left, top, right, bottom = box
        if not offset:
            colour = colour[top:bottom, left:right]
            mask = mask[top:bottom, left:right]
        now_colour, now_mask = self._patches(box)
        changed = union(changed_box(colour, now_colour), changed_box(mask, now_mask))
        if changed is None:
            return False
        x0, y0, x1, y1 = changed
        step = _Step(
            (left + x0, top + y0, left + x1, top + y1),
            colour[y0:y1, x0:x1].copy(),
            mask[y0:y1, x0:x1].copy(),
        )
        self._undo.append(step)
        self._redo.clear()
        budget = self.max_undo_bytes
        while len(self._undo) > 1 and sum(s.nbytes for s in self._undo) > budget:
            self._undo.pop(0)
        return True

    def _swap(self, step: _Step) -> None:
        """Exchange the layers' pixels in the step's box with the step's."""
        left, top, right, bottom = step.box
        colour, mask = self._patches(step.box)
        self._colour[top:bottom, left:right] = step.colour
        self._mask[top:bottom, left:right] = step.mask
        step.colour, step.mask = colour, mask
        self._touch(step.box)

    def _alpha_box(self) -> Box | None:
        alpha = self._colour[..., 3]
        return changed_box(alpha, np.zeros_like(alpha))

    def _touch(self, box: Box) -> None:
        self._dirty = union(self._dirty, box)
        self.version += 1
