"""PaintCanvas: paint a mask or a sketch over an image, with the mouse or the keyboard.

    canvas = PaintCanvas(id="paint")              # "no image" until it has one
    canvas.load(image, mode="inpaint")            # a fresh PaintDocument over the image
    canvas.mode = "inpaint_sketch"                # "sketch", "inpaint" or "inpaint_sketch"
    canvas.mask_transparency = 30                 # A1111's inpaint-sketch "Mask transparency"
    canvas.document.mask()                        # L, white = inpaint
    canvas.document.composite()                   # the sketch over the image (RGB)
    canvas.document.inpaint_sketch_inputs(4)      # (image, mask) as A1111's inpaint sketch
    def on_paint_canvas_changed(self, message: PaintCanvas.Changed) -> None: ...

Painting happens in the document at the image's resolution (`sdtui.core.paint_layers`); the
surface above shows it in half-blocks (`sdtui.widgets.paint_surface`) with the brush outline.
Mouse: drag paints (one undo step per drag), the right button erases; with a rectangle
started, a click is its other corner. Keys (ids `paint.*` in `sdtui.keymap`, remappable):
arrows move the cursor by a display pixel (shift: 8), space puts the pen down / lifts it (the
cursor's path in between is one stroke), [ ] brush size, u / ctrl+z undo, U / ctrl+y redo,
e eyedropper, r rectangle (r at one corner, r at the other), c clear, x eraser, 1-9 and 0 the
palette, # the colour entry (#rrggbb, #rgb or r,g,b); escape cancels a rectangle, lifts the
pen or leaves the colour entry. `Changed` is posted whenever the layers change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from PIL import Image
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static

from sdtui.core.paint_brush import PALETTE, ColourError, Rgb, hex_colour, parse_colour, step_size
from sdtui.keymap import PAINT_KEYS, bindings
from sdtui.widgets.paint_surface import PaintSurface, Point

if TYPE_CHECKING:
    from sdtui.core.paint_layers import PaintDocument, PaintMode

MODE_LABELS = {"sketch": "Sketch", "inpaint": "Inpaint mask", "inpaint_sketch": "Inpaint sketch"}
CHANGED_REASONS = ("load", "stroke", "rectangle", "clear", "undo", "redo")


class PaintCanvas(Widget):
    """A painting surface over an image, a tool line and a colour entry below it."""

    DEFAULT_CSS = """
    PaintCanvas { width: 1fr; height: 1fr; layout: vertical; }
    PaintCanvas > PaintSurface { height: 1fr; }
    PaintCanvas > .paint-canvas--bar { height: 1; }
    PaintCanvas .paint-canvas--status { width: 1fr; height: 1; }
    PaintCanvas .paint-canvas--colour { width: 18; height: 1; border: none; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = bindings(PAINT_KEYS)

    class Changed(Message):
        """The layers changed; `reason` is one of CHANGED_REASONS."""

        def __init__(self, canvas: PaintCanvas, reason: str) -> None:
            super().__init__()
            self.canvas = canvas
            self.reason = reason

        @property
        def control(self) -> PaintCanvas:
            return self.canvas

    def __init__(
        self,
        image: Image.Image | None = None,
        *,
        mode: PaintMode = "inpaint",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.document: PaintDocument | None = None
        self.cursor: Point = (0.0, 0.0)  # image coordinates
        self.anchor: Point | None = None  # first corner of a rectangle in progress
        self.pen_down = False  # the keyboard's pen
        self.dragging = False  # the mouse's
        self.show_cursor = True
        self.message = ""
        self._mode: PaintMode = mode
        self._colour: Rgb = PALETTE[0]
        self._eraser_before_drag = False
        self.surface = PaintSurface(self, id="paint-surface")
        self.status = Static("", classes="paint-canvas--status")
        self.colour_input = Input(
            placeholder="#rrggbb / r,g,b", classes="paint-canvas--colour", id="paint-colour"
        )
        if image is not None:
            self.load(image)

    def compose(self) -> ComposeResult:
        yield self.surface
        with Horizontal(classes="paint-canvas--bar"):
            yield self.status
            yield self.colour_input

    def on_mount(self) -> None:
        self._update()

    # -- what a screen uses ----------------------------------------------------------------

    def load(self, image: Image.Image, mode: PaintMode | None = None) -> PaintDocument:
        """Paint over `image` from now on (a new, blank document); colour and mode are kept."""
        from sdtui.core.paint_layers import PaintDocument

        self._mode = mode or self._mode
        self.document = PaintDocument(image, self._mode, colour=self._colour)
        width, height = image.size
        self.cursor = ((width - 1) / 2, (height - 1) / 2)
        self.anchor, self.pen_down, self.dragging = None, False, False
        self._changed("load")
        return self.document

    @property
    def mode(self) -> PaintMode:
        return self._mode

    @mode.setter
    def mode(self, value: PaintMode) -> None:
        if self.document is not None:
            self.document.mode = value  # checks the value
        self._mode = value
        self.pen_down = self.dragging = False  # the document ended any stroke
        self._update()

    @property
    def mask_transparency(self) -> float:
        return self.document.mask_transparency if self.document is not None else 0.0

    @mask_transparency.setter
    def mask_transparency(self, value: float) -> None:
        if self.document is not None:
            self.document.mask_transparency = value
            self._update()

    @property
    def colour(self) -> Rgb:
        return self._colour

    @colour.setter
    def colour(self, value: Rgb) -> None:
        self._colour = value
        if self.document is not None:
            self.document.colour = value
            self.document.eraser = False
        self._update()

    # -- the surface's mouse ---------------------------------------------------------------

    def press(self, point: Point, erase: bool = False) -> bool:
        """The mouse went down over the picture; True when a drag (a stroke) begins."""
        document = self.document
        if document is None:
            return False
        self.cursor = point
        if self.anchor is not None:
            self._rectangle_to(point)
            return False
        self._lift_pen()
        self._eraser_before_drag = document.eraser
        document.eraser = document.eraser or erase
        document.begin_stroke(point)
        self.dragging = True
        self._update()
        return True

    def drag(self, point: Point) -> None:
        """The mouse moved: the cursor follows it, and the stroke does while dragging."""
        self.cursor = point
        if self.dragging and self.document is not None:
            self.document.stroke_to(point)
        self.surface.refresh()

    def release(self, point: Point) -> None:
        """The mouse button went up: the stroke ends there (one undo step)."""
        if not self.dragging or self.document is None:
            return
        self.drag(point)
        self.dragging = False
        changed = self.document.end_stroke()
        self.document.eraser = self._eraser_before_drag
        if changed:
            self._changed("stroke")

    # -- key actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in {name.split("(")[0] for name in _ACTIONS}:
            return self.document is not None and not self.colour_input.has_focus
        return True

    def action_move(self, across: int, down: int) -> None:
        geometry = self.surface.geometry
        if geometry is None or self.document is None:
            return
        column, row = geometry.display_pixel(self.cursor)
        columns, rows = geometry.pixels
        column = min(columns - 1, max(0, column + across))
        row = min(rows - 1, max(0, row + down))
        self.cursor = geometry.display_centre((column, row))
        if self.pen_down:
            self.document.stroke_to(self.cursor)
        self.surface.refresh()

    def action_toggle_pen(self) -> None:
        assert self.document is not None
        if self.pen_down:
            self._lift_pen()
        else:
            geometry = self.surface.geometry
            if geometry is not None:  # paint where the cursor is drawn
                self.cursor = geometry.display_centre(geometry.display_pixel(self.cursor))
            self.document.begin_stroke(self.cursor)
            self.pen_down = True
        self._update()

    def action_brush(self, direction: int) -> None:
        assert self.document is not None
        self.document.radius = step_size(self.document.radius, direction)
        self._update()

    def action_undo(self) -> None:
        self._lift_pen()
        assert self.document is not None
        if self.document.undo():
            self._changed("undo")
        else:
            self._update("nothing to undo")

    def action_redo(self) -> None:
        self._lift_pen()
        assert self.document is not None
        if self.document.redo():
            self._changed("redo")
        else:
            self._update("nothing to redo")

    def action_eyedropper(self) -> None:
        assert self.document is not None
        self.colour = self.document.pick(self.cursor)
        self._update(f"picked {hex_colour(self._colour)}")

    def action_rectangle(self) -> None:
        if self.anchor is None:
            self._lift_pen()
            self.anchor = self.cursor
            self._update("rectangle: move to the other corner and press r (escape cancels)")
        else:
            self._rectangle_to(self.cursor)

    def action_clear(self) -> None:
        self._lift_pen()
        assert self.document is not None
        if self.document.clear():
            self._changed("clear")

    def action_toggle_eraser(self) -> None:
        assert self.document is not None
        self.document.eraser = not self.document.eraser
        self._update()

    def action_palette(self, index: int) -> None:
        self.colour = PALETTE[index]

    def action_colour_entry(self) -> None:
        self.colour_input.value = hex_colour(self._colour)
        self.colour_input.focus()

    # -- the colour entry and escape -------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self.colour_input:
            return
        event.stop()
        try:
            colour = parse_colour(event.value)
        except ColourError as error:
            self.colour_input.add_class("-invalid")
            self._update(str(error))
            return
        self.colour_input.remove_class("-invalid")
        self.colour = colour
        self.surface.focus()
        self._update(f"colour {hex_colour(colour)}")

    def on_key(self, event: events.Key) -> None:
        if event.key != "escape":
            return
        if self.colour_input.has_focus:
            self.surface.focus()
        elif self.anchor is not None:
            self.anchor = None
            self._update("rectangle cancelled")
        elif self.pen_down:
            self._lift_pen()
            self._update()
        else:
            return  # the screen's escape (interrupt, ...)
        event.stop()
        event.prevent_default()

    # -- inside ----------------------------------------------------------------------------

    def _rectangle_to(self, point: Point) -> None:
        assert self.document is not None and self.anchor is not None
        corner, self.anchor = self.anchor, None
        if self.document.fill_rect(corner, point):
            self._changed("rectangle")
        else:
            self._update()

    def _lift_pen(self) -> None:
        if self.pen_down and self.document is not None:
            self.pen_down = False
            if self.document.end_stroke():
                self._changed("stroke")

    def _changed(self, reason: str) -> None:
        self._update()
        self.post_message(self.Changed(self, reason))

    def _update(self, message: str | None = None) -> None:
        """Redraw the surface and the tool line (with `message`, or none)."""
        self.message = "" if message is None else message
        self.surface.refresh()
        self.status.update(self._status_text())

    def _status_text(self) -> Text:
        document = self.document
        if document is None:
            return Text("no image to paint on", style="dim", no_wrap=True)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{MODE_LABELS[document.mode]} · brush {document.radius:g} · ")
        text.append("■ ", style=hex_colour(self._colour))
        text.append(hex_colour(self._colour))
        if document.eraser:
            text.append(" · eraser", style="bold")
        if self.pen_down:
            text.append(" · pen down", style="bold")
        text.append(" · ")
        if self.message:  # in place of the palette, which the next key brings back
            text.append(self.message, style="bold")
            return text
        for index, colour in enumerate(PALETTE):
            text.append(str((index + 1) % 10))
            text.append("■", style=hex_colour(colour))
        return text


_ACTIONS = {spec.action for spec in PAINT_KEYS}
