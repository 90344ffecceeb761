"""Canvases for terminals that show real pixels: Kitty's graphics protocol and Sixel.

Both encode in a worker thread (see `Canvas`); what reaches the terminal goes through
Textual's output (the driver's write queue), in order with its frames. Kitty: the image is
sent once as a PNG no larger than the image itself (the terminal scales it), and the cells
hold Unicode placeholders naming it, so Textual moves and clips it like text. Sixel: pixels
at the cells' exact pixel size, injected into the last line of the canvas as textual-image's
Sixel widget does. The protocol constants and the Sixel encoder are textual-image's.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import random
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from PIL import Image
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.geometry import Region
from textual.strip import Strip

from sdtui.widgets.graphics import current_graphics
from sdtui.widgets.image_canvases import Canvas, Cells, Rgb

CHUNK = 4096  # base64 characters per Kitty transmission message
KITTY_DIACRITICS = 297  # Kitty's spec numbers rows and columns with 297 combining marks


@cache
def _placeholder_characters() -> tuple[str, list[str]]:
    """Kitty's placeholder character and its row/column diacritics, from textual-image.

    Imported on first use: importing textual-image's renderables asks the terminal what it
    supports, which only `prepare_graphics` may do (before the app runs).
    """
    from textual_image.renderable.tgp import _NUMBER_TO_DIACRITIC, _PLACEHOLDER

    return chr(_PLACEHOLDER), [chr(number) for number in _NUMBER_TO_DIACRITIC]


@dataclass
class KittyDrawing:
    image_id: int
    lines: list[Strip]


def kitty_message(payload: str = "", **keys: int | str) -> str:
    fields = ",".join(f"{key}={value}" for key, value in keys.items())
    return f"\x1b_G{fields}{';' + payload if payload else ''}\x1b\\"


def kitty_transmission(image_id: int, png_base64: str, cells: Cells) -> str:
    """Messages sending a PNG quietly, then a virtual placement of `cells` for placeholders."""
    chunks = [png_base64[start : start + CHUNK] for start in range(0, len(png_base64), CHUNK)]
    messages = [
        kitty_message(chunk, i=image_id, m=int(index < len(chunks) - 1), f=100, q=2)
        if index == 0
        else kitty_message(chunk, m=int(index < len(chunks) - 1), q=2)
        for index, chunk in enumerate(chunks)
    ]
    messages.append(kitty_message(a="p", i=image_id, c=cells[0], r=cells[1], U=1, q=2))
    return "".join(messages)


def kitty_placeholder_lines(image_id: int, cells: Cells) -> list[Strip]:
    """Rows of U+10EEEE, each cell naming its row and column with diacritics (Kitty's spec)."""
    style = Style.parse(f"rgb({(image_id >> 16) & 255},{(image_id >> 8) & 255},{image_id & 255})")
    placeholder, diacritics = _placeholder_characters()
    high = diacritics[(image_id >> 24) & 255]
    columns = diacritics[: cells[0]]
    lines = []
    for row in range(cells[1]):
        prefix = placeholder + diacritics[row]
        text = "".join(prefix + column + high for column in columns)
        lines.append(Strip([Segment(text, style)], cells[0]))
    return lines


class KittyCanvas(Canvas):
    """The image as a Kitty graphics-protocol image behind Unicode placeholder cells."""

    IN_BACKGROUND = True
    MAX_CELLS = KITTY_DIACRITICS
    _ids = itertools.count(random.randint(1, 2**31))

    def _encode(self, image: Image.Image, cells: Cells, background: Rgb) -> str:
        picture = self._picture(image, cells, background, limit=True)
        buffer = io.BytesIO()
        picture.save(buffer, format="png", compress_level=1)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def _finish(self, payload: str, cells: Cells) -> KittyDrawing:
        image_id = next(self._ids) & 0xFFFFFFFF or 1
        self._write(kitty_transmission(image_id, payload, cells))
        return KittyDrawing(image_id, kitty_placeholder_lines(image_id, cells))

    def _release(self, drawing: KittyDrawing) -> None:
        self._write(kitty_message(a="d", d="I", i=drawing.image_id, q=2))

    def render_line(self, y: int) -> Strip:
        if self.drawing is not None and 0 <= y < len(self.drawing.lines):
            return self.drawing.lines[y]
        return Strip.blank(self.size.width, self.rich_style)

    def _write(self, data: str) -> None:
        driver = getattr(self.app, "_driver", None)  # Textual's output queue
        if driver is not None:
            with contextlib.suppress(Exception):  # the app is shutting down
                driver.write(data)


@dataclass
class SixelDrawing:
    picture: Image.Image  # at the cells' pixel size
    sixels: str
    crops: dict[Region, str] = field(default_factory=dict)  # for partly hidden canvases

    def for_crop(self, crop: Region, full: Region) -> str:
        if crop == full:
            return self.sixels
        if crop not in self.crops:
            from textual_image._sixel import image_to_sixels

            width, height = current_graphics().cell_pixels
            box = (crop.x * width, crop.y * height, crop.right * width, crop.bottom * height)
            self.crops = {crop: image_to_sixels(self.picture.crop(box))}
        return self.crops[crop]


class SixelCanvas(Canvas):
    """The image as Sixel pixels, at exactly the cells' size in pixels."""

    IN_BACKGROUND = True

    def _encode(self, image: Image.Image, cells: Cells, background: Rgb) -> SixelDrawing:
        from textual_image._sixel import image_to_sixels

        picture = self._picture(image, cells, background, limit=False)
        return SixelDrawing(picture, image_to_sixels(picture))

    def render_lines(self, crop: Region) -> list[Strip]:
        blank = [Strip.blank(crop.width, self.rich_style)] * crop.height
        drawing: Any = self.drawing
        if drawing is None or crop.area == 0:
            return blank
        try:
            if not self.screen.is_active:
                return blank
            region = self.screen.find_widget(self).region
        except (NoScreen, NoMatches, KeyError):
            return blank
        sixels = drawing.for_crop(crop, Region(0, 0, *self._cells))
        return sixel_lines(crop, sixels, (region.x + crop.x, region.y + crop.y))


def sixel_lines(crop: Region, sixels: str, at: tuple[int, int]) -> list[Strip]:
    """Lines for `crop` whose last one moves to screen cell `at`, draws, and moves back."""
    x, y = at
    no_style = Style()
    forward = ((ControlType.CURSOR_FORWARD, 0),)  # keeps Rich from touching the data
    segments = [
        Segment(Control.move_to(x, y).segment.text, no_style),
        Segment(sixels, no_style, control=forward),
        Segment(Control.move_to(x + crop.width, y + crop.height).segment.text, no_style),
    ]
    return [Strip([])] * (crop.height - 1) + [Strip(segments, cell_length=crop.width)]
