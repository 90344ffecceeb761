"""The result side of a generation tab: the image, the batch's thumbnails, the buttons under
them (A1111's output panel) and the selected image's infotext.

    panel = ResultsPanel(id="result-panel")
    panel.clear(); panel.add(saved_image); panel.select(0); panel.show_preview(pil_image)
    panel.current                      # the selected ResultImage, or None

The buttons post ordinary `Button.Pressed` messages for the screen: `open-folder`,
`save-image`, `zip-images`, `copy-infotext`, `send-img2img`, `send-inpaint` and
`send-extras`, enabled once there is an image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static, TextArea

from sdtui.widgets.image_view import ImageView

# (button id, label, tooltip), enabled once there is an image
RESULT_BUTTONS = (
    ("open-folder", "Folder", "Show the image's folder and copy its path (Alt+O)"),
    ("save-image", "Save", "Copy to log/images and add a line to its log.csv (Alt+S)"),
    ("zip-images", "Zip", "Save the batch and zip it into log/images (Alt+Z)"),
    ("copy-infotext", "Copy infotext", "Copy the parameters (Alt+C)"),
)
# (button id, label, target); a target without a tooltip here is not built: disabled
SEND_BUTTONS = (
    ("send-img2img", "→ img2img", "img2img"),
    ("send-inpaint", "→ inpaint", "Inpaint"),
    ("send-extras", "→ extras", "Extras"),
)
SEND_TOOLTIPS = {
    "send-img2img": "Send the image and its parameters to img2img (Alt+I)",
    "send-inpaint": "Send the image and its parameters to inpaint (Alt+N)",
    "send-extras": "Send the image to Extras to upscale it (Alt+E)",
}


def not_built(target: str) -> str:
    return f"Send to {target}: the {target} tab is not in this version of sdtui yet."


@dataclasses.dataclass
class ResultImage:
    path: Path
    infotext: str
    seed: int
    grid: bool = False
    image: Any = None  # PIL image, loaded on demand

    def load(self) -> Any:
        from PIL import Image

        if self.image is None:
            with Image.open(self.path) as image:
                self.image = image.convert("RGB")
        return self.image


class Thumbnail(ImageView):
    """One image of the batch in the strip; click to select it."""

    DEFAULT_CSS = """
    Thumbnail { width: 12; height: 6; margin: 0 1 0 0; }
    Thumbnail.-selected { border: tall $accent; }
    """

    def __init__(self, index: int, image: Any) -> None:
        super().__init__(image, classes="thumbnail")
        self.index = index

    def on_click(self) -> None:
        for panel in self.ancestors:
            if isinstance(panel, ResultsPanel):
                panel.select(self.index)
                return


class ResultsPanel(Vertical):
    DEFAULT_CSS = """
    ResultsPanel #image { height: 1fr; min-height: 8; }
    ResultsPanel #thumbnails { height: 6; }
    ResultsPanel #thumbnails-hint { height: 1; color: $text-muted; }
    ResultsPanel #result-buttons { height: 1; }
    ResultsPanel #result-buttons Button { margin: 0 1 0 0; min-width: 6; }
    ResultsPanel #infotext { height: 7; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.results: list[ResultImage] = []
        self.selected = 0

    def compose(self) -> ComposeResult:
        yield ImageView(id="image")
        yield Horizontal(id="thumbnails")
        yield Static("", id="thumbnails-hint")
        with Horizontal(id="result-buttons"):
            for button_id, label, tooltip in RESULT_BUTTONS:
                button = Button(label, id=button_id, compact=True, disabled=True)
                button.tooltip = tooltip
                yield button
            for button_id, label, target in SEND_BUTTONS:
                button = Button(label, id=button_id, compact=True, disabled=True)
                button.tooltip = SEND_TOOLTIPS.get(button_id) or not_built(target)
                yield button
        yield TextArea("", id="infotext", read_only=True, soft_wrap=True)

    @property
    def current(self) -> ResultImage | None:
        return self.results[self.selected] if self.results else None

    def clear(self) -> None:
        self.results, self.selected = [], 0
        self.query_one("#thumbnails", Horizontal).remove_children()
        self._enable_buttons()

    def show_preview(self, image: Any) -> None:
        self.query_one("#image", ImageView).image = image

    def add(self, saved: Any) -> None:
        """Show a saved image (anything with path, infotext, seed and maybe grid)."""
        if any(result.path == saved.path for result in self.results):
            return
        result = ResultImage(saved.path, saved.infotext, saved.seed, getattr(saved, "grid", False))
        self.results.append(result)
        thumbnail = Thumbnail(len(self.results) - 1, result.load())
        self.query_one("#thumbnails", Horizontal).mount(thumbnail)
        self.select(len(self.results) - 1)
        self._enable_buttons()

    def select(self, index: int) -> None:
        self.selected = index
        result = self.results[index]
        self.show_preview(result.load())
        self.query_one("#infotext", TextArea).text = f"{result.infotext}\n\n{result.path}"
        for thumbnail in self.query(Thumbnail):
            thumbnail.set_class(thumbnail.index == index, "-selected")
        name = "grid" if result.grid else f"image {index + 1}"
        self.query_one("#thumbnails-hint", Static).update(
            f"{name} of {len(self.results)} · Alt+←/→ select · Alt+S save · Alt+Z zip · "
            "Alt+C copy infotext · Alt+O folder"
        )

    def _enable_buttons(self) -> None:
        for button_id in (*(row[0] for row in RESULT_BUTTONS), *SEND_TOOLTIPS):
            self.query_one(f"#{button_id}", Button).disabled = not self.results
