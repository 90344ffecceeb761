"""The drawing area of the painting canvas: the picture in half-blocks, the brush, the mouse.

    geometry = PaintGeometry.fit((512, 512), (40, 20), (10, 20))
    geometry.pointer_to_image(12, 5)     # the image point under cell (12, 5): its centre
    geometry.display_pixel((100.0, 7.5)) # which half-block pixel shows an image point

The picture fills the surface at its aspect ratio, centred (as `ImageView` does), always in
half-blocks: a cell shows two display pixels stacked, so the display grid is `columns` x
`2 * rows` and display pixel (i, j) shows the image around
((i + 0.5) * W / columns - 0.5, (j + 0.5) * H / (2 * rows) - 0.5) in pixel-index coordinates.
A mouse position in whole cells means the cell's centre; a terminal reporting pixel mouse
positions gives fractions of a cell, used as they are. The brush is drawn over the picture as
the cursor's display pixel plus a ring of the brush radius; a pending rectangle as its outline.
The surface only draws and reports the mouse: `PaintCanvas` owns the document and the tools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.strip import Strip
from textual.widget import Widget

from sdtui.widgets.graphics import current_graphics
from sdtui.widgets.halfblock import UPPER_HALF_BLOCK, fit_cells, halfblock_cells
from sdtui.widgets.image_canvases import _CellStyles

if TYPE_CHECKING:
    from sdtui.widgets.paint_canvas import PaintCanvas

Point = tuple[float, float]
Pixel = tuple[int, int]


@dataclass(frozen=True)
class PaintGeometry:
    """Where an image of `image_size` sits in a surface: `cells` at `offset`, both in cells."""

    image_size: tuple[int, int]
    cells: tuple[int, int]
    offset: tuple[int, int]

    @classmethod
    def fit(
        cls, image_size: tuple[int, int], area: tuple[int, int], cell_pixels: tuple[int, int]
    ) -> PaintGeometry | None:
        """The image at its aspect ratio, as large as `area` (columns, rows) allows, centred."""
        cells = fit_cells(image_size, area, cell_pixels)
        if cells[0] <= 0:
            return None
        offset = (area[0] - cells[0]) // 2, (area[1] - cells[1]) // 2
        return cls(image_size, cells, offset)

    @property
    def pixels(self) -> Pixel:
        """The display grid: (columns, 2 * rows) half-block pixels."""
        return self.cells[0], 2 * self.cells[1]

    @property
    def scale(self) -> Point:
        """Image pixels per display pixel, across and down."""
        return self.image_size[0] / self.cells[0], self.image_size[1] / (2 * self.cells[1])

    def display_centre(self, pixel: Pixel) -> Point:
        """The image point at the centre of display pixel (i, j)."""
        across, down = self.scale
        return (pixel[0] + 0.5) * across - 0.5, (pixel[1] + 0.5) * down - 0.5

    def display_pixel(self, point: Point) -> Pixel:
        """The display pixel showing an image point (the nearest one for points outside)."""
        across, down = self.scale
        columns, rows = self.pixels
        column = min(columns - 1, max(0, math.floor((point[0] + 0.5) / across)))
        row = min(rows - 1, max(0, math.floor((point[1] + 0.5) / down)))
        return column, row

    def pointer_to_image(self, x: float, y: float) -> Point:
        """The image point under a pointer at (x, y) cells from the surface's top-left."""
        x = x + 0.5 if x == int(x) else x  # a whole cell: its centre
        y = y + 0.5 if y == int(y) else y
        width, height = self.image_size
        columns, rows = self.cells
        return (
            (x - self.offset[0]) * width / columns - 0.5,
            (y - self.offset[1]) * height / rows - 0.5,
        )

    def contains(self, x: float, y: float) -> bool:
        """Whether a pointer at (x, y) cells is over the picture."""
        left, top = self.offset
        return left <= x < left + self.cells[0] and top <= y < top + self.cells[1]


def contrast(cell: int, lower: bool) -> int:
    """Black or white, whichever stands out on one pixel of a packed cell (0xRRGGBB)."""
    rgb = cell & 0xFFFFFF if lower else cell >> 24
    red, green, blue = (rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255
    return 0x000000 if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else 0xFFFFFF


def set_pixel(rows: list[list[int]], pixel: Pixel, rgb: int | None = None) -> None:
    """Colour one display pixel of packed half-block rows (contrasting when `rgb` is None)."""
    column, row = pixel
    cells = rows[row // 2]
    cell, lower = cells[column], row % 2 == 1
    colour = contrast(cell, lower) if rgb is None else rgb
    cells[column] = (cell & ~0xFFFFFF) | colour if lower else (cell & 0xFFFFFF) | (colour << 24)


def ring(geometry: PaintGeometry, centre: Point, radius: float) -> set[Pixel]:
    """Display pixels on the brush's outline: centres within half a pixel of the circle."""
    across, down = geometry.scale
    tolerance = max(across, down) / 2
    middle = geometry.display_pixel(centre)
    reach_x, reach_y = math.ceil(radius / across) + 1, math.ceil(radius / down) + 1
    columns, rows = geometry.pixels
    found = set()
    for row in range(max(0, middle[1] - reach_y), min(rows, middle[1] + reach_y + 1)):
        for column in range(max(0, middle[0] - reach_x), min(columns, middle[0] + reach_x + 1)):
            x, y = geometry.display_centre((column, row))
            if abs(math.hypot(x - centre[0], y - centre[1]) - radius) <= tolerance:
                found.add((column, row))
    return found


def outline(geometry: PaintGeometry, corner: Point, other: Point) -> set[Pixel]:
    """Display pixels on the border of the rectangle between two image points."""
    (left, top), (right, bottom) = geometry.display_pixel(corner), geometry.display_pixel(other)
    left, right = sorted((left, right))
    top, bottom = sorted((top, bottom))
    edges = {(column, row) for column in range(left, right + 1) for row in (top, bottom)}
    return edges | {(column, row) for row in range(top, bottom + 1) for column in (left, right)}


class PaintSurface(Widget, can_focus=True):
    """Draws `canvas.document`'s preview with the brush over it; forwards the mouse."""

    DEFAULT_CSS = "PaintSurface { width: 1fr; height: 1fr; }"

    def __init__(self, canvas: PaintCanvas, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.canvas = canvas
        self._picture_key: Any = None
        self._picture: list[list[int]] = []
        self._lines_key: Any = None
        self._lines: list[Strip] = []
        self._styles = _CellStyles()  # kept between frames: strokes change few cells
        self._row_strips: dict[tuple, Strip] = {}

    @property
    def geometry(self) -> PaintGeometry | None:
        """Where the picture is now; None with no document or no room."""
        document = self.canvas.document
        if document is None:
            return None
        area = self.content_size
        return PaintGeometry.fit(
            document.size, (area.width, area.height), current_graphics().cell_pixels
        )

    # -- mouse -----------------------------------------------------------------------------

    def on_mouse_down(self, event: events.MouseDown) -> None:
        geometry = self.geometry
        if geometry is None or not geometry.contains(event.pointer_x, event.pointer_y):
            return
        event.stop()
        point = geometry.pointer_to_image(event.pointer_x, event.pointer_y)
        if self.canvas.press(point, erase=event.button == 3):
            self.capture_mouse()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        geometry = self.geometry
        if geometry is not None:
            self.canvas.drag(geometry.pointer_to_image(event.pointer_x, event.pointer_y))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        geometry = self.geometry
        if geometry is not None and self.canvas.dragging:
            event.stop()
            point = geometry.pointer_to_image(event.pointer_x, event.pointer_y)
            self.canvas.release(point)
        self.capture_mouse(False)

    # -- drawing ---------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        lines = self._render_lines()
        if 0 <= y < len(lines):
            return lines[y]
        return Strip.blank(self.size.width, self.rich_style)

    def _render_lines(self) -> list[Strip]:
        geometry, document, canvas = self.geometry, self.canvas.document, self.canvas
        if geometry is None or document is None:
            return []
        picture_key = (id(document), document.version, geometry.cells)
        if picture_key != self._picture_key:
            self._picture = halfblock_cells(document.preview(), geometry.cells)
            self._picture_key = picture_key
        overlay = (canvas.cursor, document.radius, canvas.anchor, canvas.show_cursor)
        key = (picture_key, geometry.offset, self.size.width, overlay)
        if key != self._lines_key:
            self._lines = self._strips(geometry, self._overlaid(geometry))
            self._lines_key = key
        return self._lines

    def _overlaid(self, geometry: PaintGeometry) -> list[list[int]]:
        """The picture's packed cells with the brush ring, cursor and rectangle drawn on."""
        rows = [list(row) for row in self._picture]
        canvas, document = self.canvas, self.canvas.document
        assert document is not None
        if canvas.anchor is not None:
            for pixel in outline(geometry, canvas.anchor, canvas.cursor):
                set_pixel(rows, pixel)
        if canvas.show_cursor:
            for pixel in ring(geometry, canvas.cursor, document.radius):
                set_pixel(rows, pixel)
            set_pixel(rows, geometry.display_pixel(canvas.cursor))
        return rows

    def _strips(self, geometry: PaintGeometry, rows: list[list[int]]) -> list[Strip]:
        """One strip per line; a picture row whose cells did not change keeps its strip."""
        width, blank = self.size.width, self.rich_style
        left, top = geometry.offset
        right = max(0, width - left - len(rows[0]))
        if len(self._styles) > 100_000:
            self._styles.clear()
        previous_rows, self._row_strips = self._row_strips, {}
        lines = [Strip.blank(width, blank) for _ in range(top)]
        for row in rows:
            key = (left, right, blank, tuple(row))
            strip = previous_rows.get(key) or self._strip(row, left, right, blank)
            self._row_strips[key] = strip
            lines.append(strip)
        return lines

    def _strip(self, row: list[int], left: int, right: int, blank: Style) -> Strip:
        styles = self._styles
        segments = [Segment(" " * left, blank)] if left else []
        previous, count = row[0], 0
        for cell in row:  # runs of equal cells become one segment
            if cell == previous:
                count += 1
                continue
            segments.append(Segment(UPPER_HALF_BLOCK * count, styles[previous]))
            previous, count = cell, 1
        segments.append(Segment(UPPER_HALF_BLOCK * count, styles[previous]))
        if right:
            segments.append(Segment(" " * right, blank))
        return Strip(segments, left + len(row) + right)
