"""The PNG Info tab: an image's generation parameters, and sending them to other tabs.

Left: a path input (Tab completes) over a tree of the images in the outputs folder. Right:
the image, then what it carries: the A1111 infotext as written, its fields as a table (what
sdtui makes of each key; keys it does not know are listed and kept), sdtui's JSON chunk, and
every other metadata item raw (ComfyUI's `prompt` / `workflow`, ...). "Send to txt2img"
pastes the prompt, negative prompt and every setting the infotext carries, as A1111 does
(keeping the selected checkpoint: A1111's `disable_weights_auto_swap`, on by default);
"Send to img2img / inpaint" sends the image too, "Send to extras" the file
(`sdtui.screens.send_to`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalGroup, VerticalScroll
from textual.widgets import (
    Button,
    Collapsible,
    DataTable,
    DirectoryTree,
    Input,
    Label,
    Static,
    TextArea,
)

from sdtui.keymap import PNGINFO_KEYS, bindings
from sdtui.screens.base import TabScreen
from sdtui.screens.pnginfo_fields import parameter_rows, parameters_to_send
from sdtui.screens.send_to import IMG2IMG_TARGETS, send_image, send_to_extras
from sdtui.widgets.file_browser import ImageTree, PathInput
from sdtui.widgets.image_view import ImageView

SEND_TARGETS = ("txt2img", "img2img", "inpaint", "extras")
OPEN_HINT = (
    "Open an image: type its path (Tab completes, relative to the outputs folder) and press "
    "Enter, or pick one in the tree."
)
MAX_TABLE_ROWS = 30
MAX_CELL = 80  # table cells longer than this are shortened (the infotext has them whole)


class PngInfoScreen(TabScreen):
    TAB_ID = "pnginfo"
    BINDINGS: ClassVar = bindings(PNGINFO_KEYS)
    DEFAULT_CSS = """
    #browser { width: 40; min-width: 30; border-right: solid $panel; }
    #path { margin: 0 0 1 0; }
    #tree { height: 1fr; }
    #details { width: 1fr; padding: 0 1; }
    #send { height: 1; }
    #send Button { margin: 0 1 0 0; min-width: 10; }
    #image { height: 16; min-height: 8; }
    #message { margin: 1 0 0 0; }
    #message.-error { color: $error; }
    #file-info { color: $text-muted; }
    .heading { text-style: bold; margin: 1 0 0 0; }
    #infotext { height: auto; max-height: 16; }
    #json { height: auto; max-height: 24; }
    #other TextArea { height: auto; max-height: 16; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None
        self.metadata: Any = None  # ImageMetadata of the open image
        self.picture_shown = False  # the open image's pixels could be read
        self.browse_root = Path.home()

    # -- layout ----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        self.browse_root = self._browse_root()
        with Horizontal():
            with Vertical(id="browser"):
                yield PathInput(self.browse_root, placeholder="path of an image", id="path")
                yield ImageTree(self.browse_root, id="tree")
            with VerticalScroll(id="details"):
                with Horizontal(id="send"):
                    for target in SEND_TARGETS:
                        yield Button(
                            f"→ {target}",
                            id=f"send-{target}",
                            compact=True,
                            disabled=True,
                        )
                    yield Button("Copy infotext", id="copy-infotext", compact=True, disabled=True)
                yield ImageView(id="image", placeholder="no image open")
                yield Static("", id="file-info", markup=False)
                yield Static(OPEN_HINT, id="message", markup=False)
                with VerticalGroup(id="infotext-section"):
                    yield Label("Parameters (infotext)", classes="heading")
                    yield TextArea("", id="infotext", read_only=True, soft_wrap=True)
                    yield DataTable(id="fields", cursor_type="row", zebra_stripes=True)
                with VerticalGroup(id="json-section"):
                    yield Label("sdtui parameters (sdtui_params chunk)", classes="heading")
                    yield TextArea("", id="json", read_only=True, soft_wrap=True)
                with VerticalGroup(id="other-section"):
                    yield Label("Other metadata", classes="heading")
                    yield VerticalGroup(id="other")

    def _browse_root(self) -> Path:
        dirs = self.app.backend.dirs
        for folder in (dirs.outputs, dirs.root):
            if folder.is_dir():
                return folder
        return Path.home()

    def on_mount(self) -> None:
        self.app.tab_screens.append(self)
        fields = self.query_one("#fields", DataTable)
        fields.add_columns("Key", "Value", "sdtui")
        for section in ("#infotext-section", "#json-section", "#other-section"):
            self.query_one(section).display = False
        self.query_one("#path", PathInput).focus()

    # -- opening an image ------------------------------------------------------------------

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "path":
            event.stop()
            path = self.query_one("#path", PathInput).path
            if path is not None:
                await self.open_image(path)

    async def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        path = event.path
        shown = (
            path.relative_to(self.browse_root) if path.is_relative_to(self.browse_root) else path
        )
        self.query_one("#path", PathInput).value = str(shown)
        await self.open_image(path)

    async def open_image(self, path: Path) -> None:
        """Show `path` and what it carries; a file that is no image is a message."""
        from sdtui.params.image_metadata import read_image_metadata

        self.path, self.metadata, self.picture_shown = path, None, False
        await self._clear()
        if path.is_dir():
            self._message(f"{path} is a folder: type an image's name (Tab completes).", True)
            return
        if not path.exists():
            self._message(f"{path}: no such file.", True)
            return
        try:
            metadata = read_image_metadata(path)
        except (OSError, ValueError) as error:
            self._message(f"Not an image sdtui can read: {error}", True)
            return
        self.metadata = metadata
        self._show_image(path)
        await self._show_metadata(metadata)

    async def _clear(self) -> None:
        self.query_one("#image", ImageView).image = None
        self.query_one("#file-info", Static).update("")
        for section in ("#infotext-section", "#json-section", "#other-section"):
            self.query_one(section).display = False
        await self.query_one("#other", VerticalGroup).remove_children()
        self._enable_buttons(False)

    def _message(self, text: str, error: bool = False) -> None:
        message = self.query_one("#message", Static)
        message.update(text)
        message.set_class(error, "-error")
        message.display = bool(text)

    def _show_image(self, path: Path) -> None:
        from PIL import Image

        info = f"{path}"
        try:
            with Image.open(path) as image:
                info += f" · {image.format} {image.width}×{image.height}"
                image.load()
                picture = image.convert("RGB")
        except (OSError, ValueError, SyntaxError) as error:
            self.query_one("#file-info", Static).update(f"{info} · pixels unreadable: {error}")
            return
        self.query_one("#image", ImageView).image = picture
        self.query_one("#file-info", Static).update(info)
        self.picture_shown = True

    async def _show_metadata(self, metadata: Any) -> None:
        infotext = metadata.infotext
        if infotext:
            self._message("")
            self.query_one("#infotext", TextArea).text = infotext
            self._fill_fields(infotext)
            self.query_one("#infotext-section").display = True
        else:
            found = " Its other metadata is listed below." if metadata.items else ""
            self._message(f"This image carries no generation parameters.{found}")
        if metadata.params is not None:
            text = json.dumps(metadata.params, indent=2, ensure_ascii=False, sort_keys=True)
            self.query_one("#json", TextArea).text = text
            self.query_one("#json-section").display = True
        if metadata.items:
            await self.query_one("#other", VerticalGroup).mount_all(
                _raw_item(key, value) for key, value in metadata.items.items()
            )
            self.query_one("#other-section").display = True
        self._enable_buttons(True)

    def _fill_fields(self, infotext: str) -> None:
        table = self.query_one("#fields", DataTable)
        table.clear()
        try:
            rows = parameter_rows(infotext)
        except (ValueError, KeyError, TypeError) as error:
            self._message(f"The infotext could not be read into fields: {error}", True)
            return
        for key, value, used_as in rows:
            table.add_row(key, _shorten(value), used_as)
        # an explicit height: an auto-height table inside an auto-height section is laid
        # out before its rows arrive and would be clipped to nothing
        table.styles.height = min(len(rows) + 1, MAX_TABLE_ROWS)

    def _enable_buttons(self, image_open: bool) -> None:
        has_parameters = image_open and parameters_to_send(self.metadata) is not None
        self.query_one("#send-txt2img", Button).disabled = not has_parameters
        for target in (*IMG2IMG_TARGETS, "extras"):  # the image goes, with its parameters
            self.query_one(f"#send-{target}", Button).disabled = not (
                image_open and self.picture_shown
            )
        has_infotext = image_open and bool(self.metadata and self.metadata.infotext)
        self.query_one("#copy-infotext", Button).disabled = not has_infotext

    # -- actions ---------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button.startswith("send-"):
            self.action_send_to(button.removeprefix("send-"))
        elif button == "copy-infotext":
            self.action_copy_infotext()

    def action_send_to(self, target: str) -> None:
        """A1111's "Send to …": the image's parameters pasted into that tab."""
        if target == "extras":
            if self.path is None or not self.picture_shown:
                self.notify("Open an image first.", severity="warning")
                return
            send_to_extras(self.app, self.path)
            return
        if target in IMG2IMG_TARGETS:
            self._send_image(target)
            return
        values = parameters_to_send(self.metadata) if self.metadata is not None else None
        if values is None:
            self.notify("Open an image with generation parameters first.", severity="warning")
            return
        screen = self._tab_screen(target)
        if screen is None:
            self.run_worker(self._send_after_switch(target, values), group="send")
            return
        screen.fill(values)
        self.app.switch_mode(target)
        self.notify(f"Parameters sent to {target}.")

    def _send_image(self, target: str) -> None:
        """A1111's "Send to img2img / inpaint": the image, and its parameters if any."""
        from sdtui.services.image_files import open_image

        if self.path is None or self.metadata is None:
            self.notify("Open an image first.", severity="warning")
            return
        try:
            image = open_image(self.path, "Image")
        except ValueError as error:
            self.notify(str(error), title="Cannot send", severity="error")
            return
        values = parameters_to_send(self.metadata) or {}
        shown = self.query_one("#path", PathInput).value or str(self.path)
        send_image(self.app, target, image, values, shown)

    def _tab_screen(self, tab_id: str) -> Any:
        """The tab's screen, if it was ever opened (screens register on mount)."""
        return next((s for s in self.app.tab_screens if getattr(s, "TAB_ID", "") == tab_id), None)

    async def _send_after_switch(self, target: str, values: dict[str, Any]) -> None:
        """The target tab was never opened: build it, then fill it."""
        await self.app.switch_mode(target)
        screen = self._tab_screen(target)
        if screen is not None:
            screen.fill(values)
            self.app.notify(f"Parameters sent to {target}.")

    def action_copy_infotext(self) -> None:
        infotext = self.metadata.infotext if self.metadata is not None else None
        if not infotext:
            self.notify("No infotext to copy: open an image that has one.", severity="warning")
            return
        self.app.copy_to_clipboard(infotext)
        self.notify("Infotext copied (OSC 52)")

    def action_open_path(self) -> None:
        self.query_one("#path", PathInput).focus()

    def action_refresh(self) -> None:
        self.query_one("#tree", ImageTree).reload()

    def palette_commands(self) -> Any:
        from textual.app import SystemCommand

        yield SystemCommand(
            "Send to txt2img",
            "Paste the open image's parameters into txt2img (Alt+T)",
            lambda: self.action_send_to("txt2img"),
        )
        for target, key in (("img2img", "Alt+I"), ("inpaint", "Alt+N"), ("extras", "Alt+E")):
            yield SystemCommand(
                f"Send to {target}",
                f"The open image and its parameters to {target} ({key})",
                lambda target=target: self.action_send_to(target),
            )
        yield SystemCommand(
            "Copy infotext", "The open image's infotext (Alt+C)", self.action_copy_infotext
        )


def _shorten(text: str) -> str:
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _raw_item(key: str, value: str) -> Collapsible:
    """One metadata item as stored (ComfyUI's `prompt` and `workflow` are JSON)."""
    title = f"{key} · {len(value):,} characters"
    text = TextArea(value, read_only=True, soft_wrap=True, classes="raw-item")
    return Collapsible(text, title=title, collapsed=False)
