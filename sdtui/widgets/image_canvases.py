"""The widgets that draw an image on exactly `cells` cells, one per graphics mode.

    canvas = make_canvas("kitty")           # or "sixel", "halfblock"
    canvas.show(pil_image, (columns, rows))

`ImageView` sizes and centres a canvas; a canvas only draws. Half-blocks are drawn at once
(a few thousand styled cells). Kitty (a PNG sent to the terminal, cells of Unicode
placeholders referring to it) and Sixel (pixels encoded as text) are encoded in a worker
thread, so swapping images never blocks the app: the previous image stays until the new one
is ready (when it has the same size; blank otherwise). Every canvas keeps its last drawings
per (image, cells, background) in a `DrawingCache`, so showing an image again is free.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from PIL import Image
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from sdtui.widgets.graphics import current_graphics
from sdtui.widgets.halfblock import UPPER_HALF_BLOCK, Rgb, halfblock_cells, resized, to_rgb

logger = logging.getLogger(__name__)

Cells = tuple[int, int]


class DrawingCache:
    """The last `size` drawings, keyed by image identity and a key; images are held weakly."""

    def __init__(self, size: int = 8, evict: Callable[[Any], None] | None = None) -> None:
        self.size = size
        self._evict = evict or (lambda drawing: None)
        self._entries: OrderedDict[tuple[int, Any], tuple[weakref.ref, Any]] = OrderedDict()

    def get(self, image: Image.Image, key: Any) -> Any:
        entry = self._entries.get((id(image), key))
        if entry is None or entry[0]() is not image:
            return None
        self._entries.move_to_end((id(image), key))
        return entry[1]

    def put(self, image: Image.Image, key: Any, drawing: Any) -> None:
        self._entries[(id(image), key)] = (weakref.ref(image), drawing)
        while len(self._entries) > self.size:
            self._evict(self._entries.popitem(last=False)[1][1])

    def forget(self, image: Image.Image) -> None:
        for entry_key in [key for key in self._entries if key[0] == id(image)]:
            self._evict(self._entries.pop(entry_key)[1])

    def clear(self) -> None:
        while self._entries:
            self._evict(self._entries.popitem()[1][1])


class Canvas(Widget):
    """Draws an image on `cells` cells; subclasses say how (`_draw`, or `_encode` + `_finish`)."""

    DEFAULT_CSS = "Canvas { width: 1; height: 1; }"
    IN_BACKGROUND: ClassVar[bool] = False  # encode in a worker thread
    MAX_CELLS: ClassVar[int] = 100_000  # columns or rows this way of drawing can address

    def __init__(self) -> None:
        super().__init__()
        self.cache = DrawingCache(evict=self._release)
        self.drawing: Any = None
        self.pending = False  # a drawing is being encoded for the last `show`
        self._request = 0
        self._cells: Cells = (0, 0)

    def show(self, image: Image.Image, cells: Cells) -> None:
        key = (cells, self._background())
        self.styles.width, self.styles.height = cells
        self._request += 1
        drawing = self.cache.get(image, key)
        if drawing is None and not self.IN_BACKGROUND:
            drawing = self._draw(image, cells, key[1])
            self.cache.put(image, key, drawing)
        if drawing is not None:
            self._use(drawing, cells)
            return
        if cells != self._cells:
            self._use(None, cells)  # the previous drawing would not fit
        self.pending = True
        work = partial(self._encode_in_thread, self._request, image, key)
        self.run_worker(work, group="encode", thread=True, exit_on_error=False)

    def on_unmount(self) -> None:
        self._request += 1
        self.cache.clear()

    def _use(self, drawing: Any, cells: Cells) -> None:
        self.drawing, self._cells, self.pending = drawing, cells, False
        self.refresh()

    def _encode_in_thread(self, request: int, image: Image.Image, key: tuple) -> None:
        if request != self._request:
            return  # superseded before it started
        try:
            payload = self._encode(image, *key)
        except Exception:
            logger.exception("cannot encode the image for the terminal")
            payload = None
        with contextlib.suppress(RuntimeError):  # the app has stopped
            self.app.call_from_thread(self._encoded, request, image, key, payload)

    def _encoded(self, request: int, image: Image.Image, key: tuple, payload: Any) -> None:
        if request != self._request:
            return
        if payload is None:
            self.pending = False
            return
        drawing = self._finish(payload, key[0])
        self.cache.put(image, key, drawing)
        self._use(drawing, key[0])

    def _background(self) -> Rgb:
        colour = self.background_colors[1]
        return colour.r, colour.g, colour.b

    def _picture(
        self, image: Image.Image, cells: Cells, background: Rgb, limit: bool
    ) -> Image.Image:
        """RGB at the cells' pixel size (with `limit`, no larger than the image itself)."""
        cell_width, cell_height = current_graphics().cell_pixels
        size = cells[0] * cell_width, cells[1] * cell_height
        if limit and (size[0] > image.width or size[1] > image.height):
            size = image.size
        return to_rgb(resized(image, size), background)

    def _draw(self, image: Image.Image, cells: Cells, background: Rgb) -> Any:
        raise NotImplementedError

    def _encode(self, image: Image.Image, cells: Cells, background: Rgb) -> Any:
        raise NotImplementedError

    def _finish(self, payload: Any, cells: Cells) -> Any:
        return payload

    def _release(self, drawing: Any) -> None:
        pass


_HEX = tuple(f"{value:02x}" for value in range(256))


def _colour(rgb: int) -> Color:
    """Color.from_rgb of a 0xRRGGBB int, without its per-call overhead."""
    red, green, blue = (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255
    name = f"#{_HEX[red]}{_HEX[green]}{_HEX[blue]}"
    return Color(name, ColorType.TRUECOLOR, None, ColorTriplet(red, green, blue))


class _CellStyles(dict[int, Style]):
    """The style of each packed half-block cell, made on first use."""

    def __missing__(self, cell: int) -> Style:
        style = self[cell] = Style.from_color(_colour(cell >> 24), _colour(cell & 0xFFFFFF))
        return style


class HalfBlockCanvas(Canvas):
    """Two pixels per cell: "▀" in the upper pixel's colour on the lower pixel's colour."""

    def _draw(self, image: Image.Image, cells: Cells, background: Rgb) -> list[Strip]:
        styles = _CellStyles()
        lines = []
        for row in halfblock_cells(image, cells, background):
            segments = []
            previous, count = row[0], 0
            for cell in row:  # runs of equal cells become one segment
                if cell == previous:
                    count += 1
                    continue
                segments.append(Segment(UPPER_HALF_BLOCK * count, styles[previous]))
                previous, count = cell, 1
            segments.append(Segment(UPPER_HALF_BLOCK * count, styles[previous]))
            lines.append(Strip(segments, cells[0]))
        return lines

    def render_line(self, y: int) -> Strip:
        if self.drawing is not None and 0 <= y < len(self.drawing):
            return self.drawing[y]
        return Strip.blank(self.size.width, self.rich_style)


def make_canvas(mode: str) -> Canvas:
    """The canvas for a concrete graphics mode ("kitty", "sixel" or "halfblock")."""
    if mode == "kitty":
        from sdtui.widgets.terminal_graphics import KittyCanvas

        return KittyCanvas()
    if mode == "sixel":
        from sdtui.widgets.terminal_graphics import SixelCanvas

        return SixelCanvas()
    return HalfBlockCanvas()
