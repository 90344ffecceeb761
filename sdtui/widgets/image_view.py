"""ImageView: a PIL image drawn in the terminal, as large as its cells allow.

    view = ImageView(id="image")       # placeholder text until it has an image
    view.image = pil_image              # swap: cheap, and never blocks the app
    view.image = None                   # back to the placeholder

The image fills the widget's content area at its own aspect ratio, centred, and is redrawn
when the widget is resized. How it is drawn (Kitty graphics, Sixel or coloured half-blocks)
was chosen by `prepare_graphics` before the app started (see `sdtui.widgets.graphics`);
half-blocks when it was never called. Images are scaled to the pixels their cells show before
anything else happens, and the last drawings are kept per (image, size), so going back to an
image costs nothing; setting the image already shown redraws it from its pixels (for an image
changed in place). Kitty and Sixel encode in a worker thread: the new image appears when it is
encoded (`view.pending` says whether one is still on its way). No torch.
"""

from __future__ import annotations

from PIL import Image
from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from sdtui.widgets.graphics import GRAPHICS_MODES, Graphics, current_graphics, prepare_graphics
from sdtui.widgets.halfblock import fit_cells
from sdtui.widgets.image_canvases import Canvas, make_canvas

__all__ = ["GRAPHICS_MODES", "ImageView", "prepare_graphics"]


class ImageView(Widget):
    """A PIL image (or a placeholder) filling the widget at its aspect ratio, centred."""

    DEFAULT_CSS = """
    ImageView { width: 1fr; height: 1fr; align: center middle; }
    ImageView > .image-view--placeholder { width: auto; height: auto; color: $text-muted; }
    """

    def __init__(
        self,
        image: Image.Image | None = None,
        *,
        placeholder: str = "no image",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._image = image
        self.graphics: Graphics = current_graphics()
        self.placeholder = Static(placeholder, classes="image-view--placeholder")
        self.canvas: Canvas = make_canvas(self.graphics.mode)

    @property
    def mode(self) -> str:
        """How this view draws: "kitty", "sixel" or "halfblock"."""
        return self.graphics.mode

    @property
    def image(self) -> Image.Image | None:
        """The image shown (None: the placeholder)."""
        return self._image

    @image.setter
    def image(self, value: Image.Image | None) -> None:
        if value is not None and value is self._image:
            self.canvas.cache.forget(value)
        self._image = value
        if self.is_mounted:
            self._show()

    @property
    def cells(self) -> tuple[int, int]:
        """(columns, rows) the image takes at the current size; (0, 0) with none."""
        if self._image is None:
            return 0, 0
        limit = self.canvas.MAX_CELLS
        available = self.content_size
        return fit_cells(
            self._image.size,
            (min(available.width, limit), min(available.height, limit)),
            self.graphics.cell_pixels,
        )

    @property
    def pending(self) -> bool:
        """True while the image set last is still being encoded for the terminal."""
        return self.canvas.pending

    def compose(self) -> ComposeResult:
        yield self.placeholder
        yield self.canvas

    def on_mount(self) -> None:
        self._show()

    def on_resize(self, event: events.Resize) -> None:
        self._show()

    def _show(self) -> None:
        cells = self.cells
        self.placeholder.display = self._image is None
        self.canvas.display = cells[0] > 0
        if self._image is not None and cells[0] > 0:
            self.canvas.show(self._image, cells)
