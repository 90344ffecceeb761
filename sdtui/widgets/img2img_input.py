"""The img2img tab's input: A1111's sub-tabs, the image (and mask) to start from, the canvas.

    panel = ImageInput(base=outputs, id="input")
    panel.mode                              # "img2img", "sketch", "inpaint", ...
    panel.mode = "inpaint"                  # switches the sub-tab
    panel.open_image(path)                  # False, with a message under the path, if unreadable
    panel.set_image(image, "txt2img-images/00001-7.png")   # an image sent from another tab
    init, mask = panel.inputs(mask_blur=4)  # what the job gets; ValueError says what is missing

Sub-tabs, as A1111's:

* img2img: the image as it is.
* Sketch: colour painted over the image (`PaintCanvas`, mode "sketch"); the job gets the
  composite.
* Inpaint: the brush paints the mask over the image; the job gets the image and the mask.
* Inpaint sketch: colour strokes are the new content and the mask (with "Mask transparency");
  the job gets `inpaint_sketch_inputs`.
* Inpaint upload: the image and a mask from a second path (white = repaint; grey or alpha,
  any size).
* Batch: the images of a folder, in one job (`BatchPanel`: folders and PNG info options).

One image serves every sub-tab: opening one (Enter in the path, Tab completes; relative paths
start at `base`) loads it into the canvas too. The canvas keeps its colour and mask layers
while the sub-tab changes. `Opened` is posted when an image arrives, `ModeChanged` when the
sub-tab changes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static, Tab, Tabs

from sdtui.services.image_files import open_image
from sdtui.widgets.file_browser import PathInput
from sdtui.widgets.image_view import ImageView
from sdtui.widgets.img2img_batch import BatchPanel
from sdtui.widgets.paint_canvas import PaintCanvas

SUB_MODES = (
    ("img2img", "img2img"),
    ("sketch", "Sketch"),
    ("inpaint", "Inpaint"),
    ("inpaint_sketch", "Inpaint sketch"),
    ("inpaint_upload", "Inpaint upload"),
    ("batch", "Batch"),
)
MODES = tuple(mode for mode, _label in SUB_MODES)
PAINT_MODES = ("sketch", "inpaint", "inpaint_sketch")
INPAINT_MODES = ("inpaint", "inpaint_sketch", "inpaint_upload")
OPEN_HINT = "Type the image's path and press Enter (Tab completes; Ctrl+O comes back here)."
PAINT_HINT = {
    "sketch": "Paint colour over the image (Alt+P focuses the canvas; F1 lists its keys).",
    "inpaint": "Paint the area to repaint (Alt+P focuses the canvas; r r masks a box).",
    "inpaint_sketch": "Paint the new content: the strokes are also the mask (Alt+P).",
    "inpaint_upload": "Type the mask's path too: white = repaint.",
}


class ImageInput(Vertical):
    DEFAULT_CSS = """
    ImageInput { width: 1fr; height: 1fr; padding: 0 0 0 1; border-right: solid $panel; }
    ImageInput #sub-modes { height: 2; }
    ImageInput #sub-modes Tab { padding: 0 1 0 0; }
    ImageInput .path-row { height: 1; }
    ImageInput .path-row Label { width: 6; color: $text-muted; }
    ImageInput .path-row Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    ImageInput #input-message { height: auto; color: $text-muted; }
    ImageInput #input-message.-error { color: $error; }
    ImageInput #init-view, ImageInput #mask-view, ImageInput #paint { height: 1fr; }
    ImageInput #transparency-row Label { width: 20; }
    """

    class ModeChanged(Message):
        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    class Opened(Message):
        """An image (or, in inpaint upload, a mask) arrived."""

    def __init__(self, base: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.base = base
        self.image: Image.Image | None = None
        self.mask: Image.Image | None = None
        self._mode = "img2img"

    def compose(self) -> ComposeResult:
        yield Tabs(*(Tab(label, id=f"mode-{mode}") for mode, label in SUB_MODES), id="sub-modes")
        with Horizontal(classes="path-row", id="init-row"):
            yield Label("Image")
            yield PathInput(self.base, placeholder="path of the image", id="init-path")
        with Horizontal(classes="path-row", id="mask-row"):
            yield Label("Mask")
            yield PathInput(self.base, placeholder="path of the mask", id="mask-path")
        with Horizontal(classes="path-row", id="transparency-row"):
            yield Label("Mask transparency")
            yield Input("0", type="integer", id="mask-transparency")
        yield Static(OPEN_HINT, id="input-message", markup=False)
        yield BatchPanel(self.base, id="batch")
        yield ImageView(id="init-view", placeholder="no image yet")
        yield PaintCanvas(id="paint", mode="inpaint")
        yield ImageView(id="mask-view", placeholder="no mask yet")

    def on_mount(self) -> None:
        self._show_mode()

    # -- the sub-tab -----------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"unknown img2img mode {value!r}; known: {', '.join(MODES)}")
        self.query_one(Tabs).active = f"mode-{value}"  # TabActivated does the rest
        self._set_mode(value)

    def cycle_mode(self, step: int = 1) -> str:
        self.mode = MODES[(MODES.index(self._mode) + step) % len(MODES)]
        return self._mode

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        tab_id = event.tab.id or ""
        if tab_id == event.tabs.active:  # not a stale one: keys may have moved on since
            self._set_mode(tab_id.removeprefix("mode-"))

    def _set_mode(self, mode: str) -> None:
        if mode == self._mode or mode not in MODES:
            return
        self._mode = mode
        if mode in PAINT_MODES:
            self.canvas.mode = mode  # type: ignore[assignment]  # the layers stay
        self._show_mode()
        self.post_message(self.ModeChanged(mode))

    def _show_mode(self) -> None:
        mode = self._mode
        self.query_one("#init-row").display = mode != "batch"
        self.query_one("#input-message").display = mode != "batch"
        self.query_one("#batch").display = mode == "batch"
        self.query_one("#init-view").display = mode in ("img2img", "inpaint_upload")
        self.canvas.display = mode in PAINT_MODES
        self.query_one("#mask-row").display = mode == "inpaint_upload"
        self.query_one("#mask-view").display = mode == "inpaint_upload"
        self.query_one("#transparency-row").display = mode == "inpaint_sketch"
        if self.image is not None:
            self._message(PAINT_HINT.get(mode, ""))

    @property
    def canvas(self) -> PaintCanvas:
        return self.query_one("#paint", PaintCanvas)

    # -- images ----------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in ("init-path", "mask-path"):
            event.stop()
            path = self.query_one(f"#{event.input.id}", PathInput).path
            if path is None:
                return
            if event.input.id == "init-path":
                self.open_image(path)
            else:
                self.open_mask(path)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "mask-transparency":
            event.stop()
            try:
                value = min(100, max(0, int(event.value or 0)))
            except ValueError:
                return
            self.canvas.mask_transparency = value

    def open_image(self, path: Path) -> bool:
        """Start from the image at `path`; False, with a message, when it cannot be read."""
        try:
            image = open_image(path, "Image")
        except ValueError as error:
            self._message(str(error), error=True)
            return False
        self.set_image(image)
        return True

    def open_mask(self, path: Path) -> bool:
        try:
            mask = open_image(path, "Mask")
        except ValueError as error:
            self._message(str(error), error=True)
            return False
        self.mask = mask
        self.query_one("#mask-view", ImageView).image = _mask_picture(mask)
        self._message(f"Mask {mask.width}×{mask.height}: white = repaint.")
        self.post_message(self.Opened())
        return True

    def set_image(self, image: Image.Image, shown_path: str | None = None) -> None:
        """Start from `image` (sent from another tab, or opened); `shown_path` goes into
        the path field."""
        self.image = image
        if shown_path is not None:
            self.query_one("#init-path", PathInput).value = shown_path
        picture = _picture(image)
        self.query_one("#init-view", ImageView).image = picture
        self.canvas.load(picture)
        self._message(f"{image.width}×{image.height}. {PAINT_HINT.get(self._mode, '')}".strip())
        self.post_message(self.Opened())

    def focus_path(self) -> None:
        self.query_one("#init-path", PathInput).focus()

    def _message(self, text: str, error: bool = False) -> None:
        message = self.query_one("#input-message", Static)
        message.update(text)
        message.set_class(error, "-error")

    # -- what the job gets -----------------------------------------------------------------

    def inputs(self, mask_blur: float) -> tuple[Image.Image, Image.Image | None]:
        """(init image, mask or None) for the current sub-tab; ValueError says what is
        missing."""
        mode = self._mode
        if mode == "batch":
            raise ValueError("The Batch sub-tab runs the images of a folder (BatchPanel.spec).")
        if self.image is None:
            raise ValueError("Open an image first: type its path and press Enter (Ctrl+O).")
        if mode == "img2img":
            return self.image, None
        if mode == "inpaint_upload":
            if self.mask is None:
                raise ValueError("Inpaint upload needs a mask: type its path (white = repaint).")
            return self.image, self.mask
        document = self.canvas.document
        assert document is not None  # loaded with the image
        if mode == "sketch":
            return document.composite(), None
        if mode == "inpaint":
            return self.image, document.mask()
        return document.inpaint_sketch_inputs(mask_blur)


def _picture(image: Image.Image) -> Image.Image:
    """The image as RGB, transparency on white (as the job flattens it)."""
    if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        flat = Image.new("RGBA", image.size, "#ffffff")
        flat.alpha_composite(image)
        image = flat
    return image if image.mode == "RGB" else image.convert("RGB")


def _mask_picture(mask: Image.Image) -> Image.Image:
    """A mask as the job reads it, in grey: its alpha where it has transparency, else its
    grey levels (white = repaint)."""
    if mask.mode in ("LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        mask = mask.convert("RGBA")
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        return mask.getchannel("A").convert("RGB")
    return mask.convert("L").convert("RGB")
