"""PaintCanvas in a headless app: mouse drags and keys paint the expected mask pixels.

The expected image points are worked out here from the cell geometry by hand (10x20-pixel
cells, two half-block pixels per cell, the picture centred), and the expected pixels by brute
force from those points (`expected_stroke`), never from the widget's own mapping.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
from PIL import Image
from textual.app import App, ComposeResult

from sdtui.core.paint_brush import PALETTE
from sdtui.keymap import load_keymap
from sdtui.widgets import graphics
from sdtui.widgets.graphics import Graphics
from sdtui.widgets.paint_canvas import PaintCanvas
from tests.test_paint_layers import expected_stroke, white

BASE = (0, 60, 0)
SCREEN = (60, 24)  # the canvas fills it: a 60x23 surface above the one-line tool bar


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    """Half-blocks on 10x20 cells, whatever another test prepared."""
    monkeypatch.setattr(graphics, "_current", Graphics())


class PaintApp(App[None]):
    def __init__(self, image: Image.Image, mode: str = "inpaint") -> None:
        super().__init__()
        self.image, self.mode = image, mode
        self.changes: list[str] = []

    def compose(self) -> ComposeResult:
        yield PaintCanvas(self.image, mode=self.mode, id="canvas")

    def on_paint_canvas_changed(self, message: PaintCanvas.Changed) -> None:
        self.changes.append(message.reason)


def run(
    size: tuple[int, int], test: Callable[[object, PaintApp, PaintCanvas], Awaitable[None]]
) -> None:
    async def main() -> None:
        app = PaintApp(Image.new("RGB", size, BASE))
        async with app.run_test(size=SCREEN) as pilot:
            canvas = app.query_one(PaintCanvas)
            canvas.surface.focus()
            await pilot.pause()
            canvas.document.radius = 2
            await test(pilot, app, canvas)

    asyncio.run(main())


# 80x40 in 60x23 cells of 10x20 px: scale min(600/80, 460/40) = 7.5, so 60 columns and
# 15 rows, centred: rows 4-18. 20x40: scale min(30, 11.5) = 11.5, 23 columns and 23 rows,
# centred: columns 18-40.
GEOMETRIES = {(80, 40): ((60, 15), (0, 4)), (20, 40): ((23, 23), (18, 0))}


def cell_centre(size: tuple[int, int], cell: tuple[int, int]) -> tuple[float, float]:
    """The image point at the centre of a screen cell (pixel (x, y) is centred at (x, y))."""
    (columns, rows), (left, top) = GEOMETRIES[size]
    return (
        (cell[0] - left + 0.5) * size[0] / columns - 0.5,
        (cell[1] - top + 0.5) * size[1] / rows - 0.5,
    )


def mask_pixels(canvas: PaintCanvas) -> set:
    return white(canvas.document.mask())


@pytest.mark.parametrize(
    ("size", "path"),
    [((80, 40), [(10, 6), (40, 6), (40, 12)]), ((20, 40), [(20, 2), (38, 10), (25, 20)])],
)
def test_a_mouse_drag_paints_the_mask_along_its_path(size, path) -> None:
    async def test(pilot, app, canvas) -> None:
        surface = canvas.surface
        await pilot.mouse_down(surface, path[0])
        for cell in path[1:]:
            await pilot.hover(surface, cell)
        await pilot.mouse_up(surface, path[-1])
        await pilot.pause()
        points = [cell_centre(size, cell) for cell in path]
        inside, edge = expected_stroke(size, points, 2)
        assert inside - edge <= mask_pixels(canvas) <= inside
        assert len(inside) > 40  # a line, not three dots
        assert app.changes == ["load", "stroke"]
        assert canvas.document.undo() and not mask_pixels(canvas)  # the drag: one step

    run(size, test)


def test_a_press_on_the_letterbox_paints_nothing() -> None:
    async def test(pilot, app, canvas) -> None:
        await pilot.mouse_down(canvas.surface, (5, 10))  # left of columns 18-40
        await pilot.mouse_up(canvas.surface, (5, 10))
        await pilot.pause()
        assert not mask_pixels(canvas) and app.changes == ["load"]

    run((20, 40), test)


def screen_colours(app: App, x: int, y: int) -> tuple[tuple, tuple]:
    style = app.screen.get_style_at(x, y)
    return tuple(style.color.triplet), tuple(style.bgcolor.triplet)


def test_keys_move_the_cursor_and_paint_with_the_pen() -> None:
    # 80x40 on 60x15 cells: a display pixel is 80/60 = 4/3 image pixels across and
    # 40/30 = 4/3 down. The cursor starts at the image's centre (39.5, 19.5): display pixel
    # (floor(40 / (4/3)), floor(20 / (4/3))) = (30, 15), the lower half of cell row 4 + 7.
    def centre(column: int, row: int) -> tuple[float, float]:
        return (column + 0.5) * 4 / 3 - 0.5, (row + 0.5) * 4 / 3 - 0.5

    async def test(pilot, app, canvas) -> None:
        assert screen_colours(app, 30, 11)[1] == (255, 255, 255)  # the cursor, lower half
        await pilot.press("space", *["right"] * 5, "space")
        await pilot.pause()
        inside, edge = expected_stroke((80, 40), [centre(30, 15), centre(35, 15)], 2)
        assert inside - edge <= mask_pixels(canvas) <= inside
        assert app.changes == ["load", "stroke"]
        assert screen_colours(app, 35, 11)[1] == (255, 255, 255)  # the cursor moved 5 right
        await pilot.press("up")  # now the upper half of the same cell
        await pilot.pause()
        assert screen_colours(app, 35, 11)[0] == (255, 255, 255)
        painted = mask_pixels(canvas)
        await pilot.press("shift+down", "space", "space")  # 8 down: a dot at (35, 22)
        dot, _ = expected_stroke((80, 40), [centre(35, 22)], 2)
        assert mask_pixels(canvas) == painted | dot
        await pilot.press("u")
        assert mask_pixels(canvas) == painted
        await pilot.press("u")
        assert not mask_pixels(canvas)
        await pilot.press("U")
        assert mask_pixels(canvas) == painted
        await pilot.press("ctrl+y")
        assert mask_pixels(canvas) == painted | dot
        await pilot.press("ctrl+z")
        assert mask_pixels(canvas) == painted
        await pilot.press("c")
        assert not mask_pixels(canvas)
        await pilot.press("u")
        assert mask_pixels(canvas) == painted
        expected = ["stroke", "undo", "undo", "redo", "redo", "undo", "clear", "undo"]
        assert app.changes[2:] == expected

    run((80, 40), test)


def test_r_at_two_corners_masks_the_box_between_them() -> None:
    async def test(pilot, app, canvas) -> None:
        start = canvas.cursor  # display pixel (30, 15) of 4/3-pixel display pixels
        await pilot.press("r", *["left"] * 6, *["up"] * 3)
        assert canvas.anchor == start and not mask_pixels(canvas)
        await pilot.press("r")
        await pilot.pause()
        # corners: display pixels (30, 15) and (24, 12), centred at 40.17, 20.17 and
        # 32.17, 16.17 image pixels: rounded, x 32..40 and y 16..20
        first = {(x, y) for x in range(32, 41) for y in range(16, 21)}
        assert mask_pixels(canvas) == first
        assert app.changes[-1] == "rectangle" and canvas.anchor is None
        await pilot.press("r", "escape", "r")  # escape cancels; this r starts one at (32, 16)
        assert canvas.anchor is not None
        await pilot.click(canvas.surface, (2, 6))  # a click is the other corner
        x, y = cell_centre((80, 40), (2, 6))
        assert (round(x), round(y)) == (3, 6)  # 2.83, 6.17
        second = {(x, y) for x in range(3, 33) for y in range(6, 17)}
        assert mask_pixels(canvas) == first | second
        assert app.changes[-1] == "rectangle"

    run((80, 40), test)


def test_brush_size_palette_colour_entry_and_eyedropper() -> None:
    async def test(pilot, app, canvas) -> None:
        document = canvas.document
        await pilot.press("right_square_bracket")
        assert document.radius == 3
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert document.radius == 1
        await pilot.press("3")
        assert canvas.colour == PALETTE[2] == (255, 0, 0)
        await pilot.press("number_sign")
        assert canvas.colour_input.has_focus
        await pilot.press(*"12, 34, 56", "enter")
        assert canvas.colour == document.colour == (12, 34, 56)
        assert canvas.surface.has_focus
        await pilot.press("number_sign", *"#12345z", "enter")
        assert canvas.colour == (12, 34, 56)
        assert "not a colour" in canvas.message and canvas.colour_input.has_class("-invalid")
        assert canvas.colour_input.has_focus
        await pilot.press("u")  # typed into the entry, not an undo
        assert canvas.colour_input.value.endswith("u")
        await pilot.press("escape")
        assert canvas.surface.has_focus
        canvas.mode = "sketch"
        await pilot.press("space", "space")  # a dot of (12, 34, 56) under the cursor
        await pilot.press("5", "e")
        assert canvas.colour == (12, 34, 56)  # picked back from the sketch
        await pilot.press("x")
        assert document.eraser
        await pilot.press("space", "space", "e")
        assert canvas.colour == BASE  # erased: the image shows through

    run((80, 40), test)


def test_without_an_image_the_keys_do_nothing() -> None:
    async def main() -> None:
        class Empty(App[None]):
            def compose(self) -> ComposeResult:
                yield PaintCanvas(id="canvas")

        app = Empty()
        async with app.run_test(size=SCREEN) as pilot:
            canvas = app.query_one(PaintCanvas)
            canvas.surface.focus()
            await pilot.press("space", "right", "u", "r", "c", "3")
            await pilot.mouse_down(canvas.surface, (10, 10))
            assert canvas.document is None
            assert "no image" in str(canvas.status.render())
            canvas.load(Image.new("RGB", (16, 16), BASE))
            await pilot.pause()
            assert canvas.document is not None and canvas.document.is_blank

    asyncio.run(main())


def test_mask_follows_the_image_resolution_not_the_cells() -> None:
    """A 512-pixel-wide image on 60 columns: one stroke covers its full-resolution pixels."""

    async def main() -> None:
        app = PaintApp(Image.new("RGB", (512, 256), BASE))
        async with app.run_test(size=SCREEN) as pilot:
            canvas = app.query_one(PaintCanvas)
            canvas.document.radius = 3
            await pilot.mouse_down(canvas.surface, (5, 10))
            await pilot.hover(canvas.surface, (50, 10))
            await pilot.mouse_up(canvas.surface, (50, 10))
            mask = np.asarray(canvas.document.mask())
            assert mask.shape == (256, 512)
            rows = np.flatnonzero(mask.any(axis=1)).tolist()
            # 512x256 in 60x23 cells: scale min(600/512, 460/256) -> 60 x 15 cells, rows 4-18;
            # cell row 10 is centred at image y 110.43: rows within 3 of it, not a cell's ~17
            y = (10 - 4 + 0.5) * 256 / 15 - 0.5
            assert rows == list(range(math.ceil(y - 3), math.floor(y + 3) + 1))
            assert rows == [108, 109, 110, 111, 112, 113]

    asyncio.run(main())


def test_paint_keys_are_remappable_by_id(tmp_path) -> None:
    (tmp_path / "keymap.yaml").write_text("paint.undo: z\n")
    keymap = load_keymap(tmp_path / "keymap.yaml")
    assert keymap == {"paint.undo": "z"}

    async def test(pilot, app, canvas) -> None:
        app.set_keymap(keymap)
        await pilot.press("space", "space")
        assert mask_pixels(canvas)
        await pilot.press("z")
        assert not mask_pixels(canvas)

    run((80, 40), test)
