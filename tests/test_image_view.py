"""ImageView in a running (headless) app, the half-block maths, and choosing the graphics mode.

Colours are read back from the screen (`Screen.get_style_at`), so a test sees what a user
would: which cells are coloured, and with what upper (foreground) and lower (background)
pixel. Expected sizes are worked out by hand for 10x20-pixel cells.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
from collections.abc import Awaitable, Callable

import pytest
from PIL import Image
from textual.app import App, ComposeResult
from textual.containers import Container
from textual.geometry import Region

from sdtui.widgets import graphics
from sdtui.widgets.graphics import Graphics, current_graphics, prepare_graphics
from sdtui.widgets.halfblock import cell_colours, fit_cells, halfblock_cells
from sdtui.widgets.image_canvases import Canvas
from sdtui.widgets.image_view import ImageView

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    """Half-blocks on 10x20 cells, no SDTUI_GRAPHICS; whatever a test prepares is undone."""
    monkeypatch.setattr(graphics, "_current", Graphics())
    monkeypatch.delenv(graphics.ENV_VAR, raising=False)
    monkeypatch.delenv("TEXTUAL_CELL_WIDTH", raising=False)
    monkeypatch.setattr(graphics, "_stdout_is_terminal", lambda: False)


class ViewApp(App):
    """An ImageView filling a 40x20 box in the top-left corner of a 60x30 screen."""

    CSS = "#box { width: 40; height: 20; } ImageView { background: #102030; }"

    def __init__(self, image: Image.Image | None = None) -> None:
        super().__init__()
        self.first_image = image

    def compose(self) -> ComposeResult:
        with Container(id="box"):
            yield ImageView(self.first_image)


def run_app(test: Callable[[ViewApp, object], Awaitable[None]], image=None) -> None:
    async def main() -> None:
        app = ViewApp(image)
        async with app.run_test(size=(60, 30)) as pilot:
            await settle(pilot)
            await test(app, pilot)

    asyncio.run(main())


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def colours_at(app: App, x: int, y: int) -> tuple[tuple, tuple] | None:
    """(foreground, background) RGB of the screen cell, None where it shows no image."""
    if not isinstance(app.screen.get_widget_at(x, y)[0], Canvas):
        return None
    style = app.screen.get_style_at(x, y)
    if style.color is None or style.bgcolor is None or style.color.triplet is None:
        return None
    return tuple(style.color.triplet), tuple(style.bgcolor.triplet)


def screen_text(app: App) -> str:
    return app.export_screenshot().replace("&#160;", " ")


def image_cells(app: App) -> set[tuple[int, int]]:
    width, height = app.size
    return {(x, y) for x in range(width) for y in range(height) if colours_at(app, x, y)}


def test_a_red_square_fills_the_box_with_red_half_blocks() -> None:
    async def check(app, pilot) -> None:
        app.query_one(ImageView).image = Image.new("RGB", (512, 512), RED)
        await settle(pilot)
        # 512x512 in 40x20 cells of 10x20 px: 400x400 px, all of the box.
        assert image_cells(app) == {(x, y) for x in range(40) for y in range(20)}
        assert {colours_at(app, x, y) for x, y in image_cells(app)} == {(RED, RED)}

    run_app(check)


def test_upper_pixel_is_the_foreground_and_lower_the_background() -> None:
    stripes = Image.new("RGB", (40, 40), RED)
    for y in range(1, 40, 2):
        stripes.paste(BLUE, (0, y, 40, y + 1))  # odd pixel rows blue

    async def check(app, pilot) -> None:
        assert {colours_at(app, x, y) for x, y in image_cells(app)} == {(RED, BLUE)}

    run_app(check, stripes)


@pytest.mark.parametrize(
    ("size", "columns", "rows"),
    [
        ((1024, 512), range(0, 40), range(5, 15)),  # 2:1 -> 40x10 cells = 400x200 px, centred
        ((512, 1024), range(10, 30), range(0, 20)),  # 1:2 -> 20x20 cells = 200x400 px
    ],
)
def test_aspect_ratio_is_kept_and_the_image_centred(size, columns, rows) -> None:
    async def check(app, pilot) -> None:
        assert image_cells(app) == {(x, y) for x in columns for y in rows}

    run_app(check, Image.new("RGB", size, GREEN))


def test_no_image_shows_the_placeholder() -> None:
    async def check(app, pilot) -> None:
        view = app.query_one(ImageView)
        assert "no image" in screen_text(app)
        assert not image_cells(app)
        view.image = Image.new("RGB", (64, 64), RED)
        await settle(pilot)
        assert image_cells(app) and "no image" not in screen_text(app)
        view.image = None
        await settle(pilot)
        assert not image_cells(app) and "no image" in screen_text(app)

    run_app(check)


def test_resizing_the_terminal_redraws_at_the_new_size() -> None:
    async def check(app, pilot) -> None:
        app.query_one("#box").styles.width = "100%"
        app.query_one("#box").styles.height = "100%"
        await settle(pilot)
        assert image_cells(app) == {(x, y) for x in range(0, 60) for y in range(0, 30)}
        await pilot.resize_terminal(80, 20)
        await settle(pilot)  # 80x20 cells hold a 2:1 picture of 400x400 px: 40x20, centred
        assert image_cells(app) == {(x, y) for x in range(20, 60) for y in range(0, 20)}

    run_app(check, Image.new("RGB", (300, 300), BLUE))


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("RGBA", (64, 64), (255, 0, 0, 0)), (16, 32, 48)),  # transparent: background
        (Image.new("RGBA", (64, 64), (255, 0, 0, 255)), RED),
        (Image.new("L", (64, 64), 128), (128, 128, 128)),
        (Image.new("LA", (64, 64), (200, 255)), (200, 200, 200)),
        (Image.new("RGB", (64, 64), RED).convert("P"), RED),
        (Image.new("1", (64, 64), 1), (255, 255, 255)),
    ],
    ids=["rgba-clear", "rgba-opaque", "grey", "grey-alpha", "palette", "bilevel"],
)
def test_image_modes(image, expected) -> None:
    async def check(app, pilot) -> None:
        assert {colours_at(app, x, y) for x, y in image_cells(app)} == {(expected, expected)}

    run_app(check, image)


def test_tiny_and_huge_images() -> None:
    async def check(app, pilot) -> None:
        view = app.query_one(ImageView)
        view.image = Image.new("RGB", (1, 1), RED)
        await settle(pilot)
        assert len(image_cells(app)) == 40 * 20
        view.image = Image.new("RGB", (6000, 2000), BLUE)  # 3:1 -> 40 x 6.67 cells
        await settle(pilot)
        assert view.cells == (40, 7)
        assert {colours_at(app, x, y) for x, y in image_cells(app)} == {(BLUE, BLUE)}

    run_app(check)


def test_swapping_back_reuses_the_drawing_and_setting_again_redraws() -> None:
    first, second = Image.new("RGB", (64, 64), RED), Image.new("RGB", (64, 64), GREEN)

    async def check(app, pilot) -> None:
        view = app.query_one(ImageView)
        drawing = view.canvas.drawing
        view.image = second
        await settle(pilot)
        view.image = first
        await settle(pilot)
        assert view.canvas.drawing is drawing
        first.paste(BLUE, (0, 0, 64, 64))  # changed in place, then set again
        view.image = first
        await settle(pilot)
        assert {colours_at(app, x, y) for x, y in image_cells(app)} == {(BLUE, BLUE)}

    run_app(check, first)


def test_kitty_sends_the_picture_once_and_fills_the_cells_with_placeholders(
    monkeypatch,
) -> None:
    from sdtui.widgets.terminal_graphics import KittyCanvas

    sent: list[str] = []
    monkeypatch.setattr(KittyCanvas, "_write", lambda self, data: sent.append(data))
    assert prepare_graphics("kitty") == "kitty"

    async def check(app, pilot) -> None:
        view = app.query_one(ImageView)
        assert view.mode == "kitty"
        lines = view.canvas.render_lines(Region(0, 0, 40, 20))
        assert [line.text.count("\U0010eeee") for line in lines] == [40] * 20
        messages = re.findall(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\", "".join(sent))
        placement = [keys for keys, _ in messages if "a=p" in keys]
        assert len(placement) == 1 and "c=40" in placement[0] and "r=20" in placement[0]
        png = base64.b64decode("".join(payload for _, payload in messages))
        picture = Image.open(io.BytesIO(png))
        assert picture.size == (400, 400)  # the cells' pixels, less than the 512 it has
        assert picture.convert("RGB").getpixel((200, 200)) == RED
        sent.clear()
        view.image = view.image  # shown again: redrawn, sent again
        await settle(pilot)
        assert any("a=d" in keys for keys in re.findall(r"\x1b_G([^;\x1b]*)", "".join(sent)))

    run_app(check, Image.new("RGB", (512, 512), RED))


def test_sixel_draws_the_cells_pixel_size_in_sixels() -> None:
    assert prepare_graphics("sixel") == "sixel"

    async def check(app, pilot) -> None:
        view = app.query_one(ImageView)
        assert view.mode == "sixel"
        lines = view.canvas.render_lines(Region(0, 0, 40, 10))
        data = lines[-1].text
        assert data.startswith("\x1b[6;1H\x1bP")  # to the canvas's corner (row 6), then DCS
        assert '"1;1;400;200' in data  # raster attributes: 400x200 pixels
        assert "#0;2;0;0;100" in data  # colour 0 is 100% blue

    run_app(check, Image.new("RGB", (1024, 512), BLUE))


def test_fit_cells_by_hand() -> None:
    assert fit_cells((512, 512), (40, 20), (10, 20)) == (40, 20)
    assert fit_cells((512, 512), (120, 40), (10, 20)) == (80, 40)
    assert fit_cells((1024, 512), (40, 20), (10, 20)) == (40, 10)
    assert fit_cells((512, 512), (40, 20), (8, 16)) == (40, 20)
    assert fit_cells((768, 512), (64, 100), (1, 2)) == (64, 21)
    assert fit_cells((512, 512), (0, 20), (10, 20)) == (0, 0)


def test_sixteen_bit_greyscale_is_stretched_to_eight_bits() -> None:
    image = Image.new("I;16", (1, 2))
    image.putpixel((0, 0), 65535)
    image.putpixel((0, 1), 0)
    [[cell]] = halfblock_cells(image, (1, 1))
    assert cell_colours(cell) == ((255, 255, 255), (0, 0, 0))


def test_prepare_graphics_explicit_modes() -> None:
    assert prepare_graphics("halfblock") == "halfblock"
    assert current_graphics() == Graphics("halfblock", 10, 20)
    assert prepare_graphics("kitty") == "kitty" and current_graphics().mode == "kitty"


def test_prepare_graphics_auto_without_a_terminal_is_halfblock(monkeypatch) -> None:
    monkeypatch.setattr(graphics, "_detect", lambda: pytest.fail("must not ask a pipe"))
    assert prepare_graphics("auto") == "halfblock"
    assert prepare_graphics(None) == "halfblock"


def test_prepare_graphics_auto_asks_the_terminal_unless_the_environment_says(
    monkeypatch,
) -> None:
    monkeypatch.setattr(graphics, "_stdout_is_terminal", lambda: True)
    monkeypatch.setattr(graphics, "_cell_pixels", lambda on_terminal: (9, 18))
    monkeypatch.setattr(graphics, "_detect", lambda: "sixel")
    assert prepare_graphics("auto") == "sixel"
    assert current_graphics() == Graphics("sixel", 9, 18)
    monkeypatch.setenv(graphics.ENV_VAR, "halfblock")
    assert prepare_graphics("auto") == "halfblock"
    assert prepare_graphics("kitty") == "kitty"  # an explicit mode beats the environment


def test_prepare_graphics_falls_back_when_textual_image_cannot_load(monkeypatch) -> None:
    def broken(name: str) -> None:
        raise OSError("no terminal")

    monkeypatch.setattr(graphics.importlib, "import_module", broken)
    assert prepare_graphics("sixel") == "halfblock"


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_unknown_mode_lists_the_modes(monkeypatch, where) -> None:
    if where == "environment":
        monkeypatch.setenv(graphics.ENV_VAR, "ascii")
    with pytest.raises(ValueError, match=r"'ascii'.*auto, kitty, sixel, halfblock"):
        prepare_graphics("ascii" if where == "argument" else "auto")
