"""What a generation tab does with its results: A1111's buttons under the gallery.

`ResultActions` is a base for tab screens whose results sit in a `ResultsPanel` with id
`result-panel`: select an image (Alt+←/→), copy its infotext (Alt+C), show its folder
(Alt+O), Save (Alt+S: the selected image -- the whole batch when the grid is selected, as
A1111's `save_selected_only` -- copied to log/images with a log.csv row) and Zip (Alt+Z:
the whole batch saved and zipped). Send to img2img / inpaint (Alt+I / N) put the selected
image and its parameters into the img2img tab; extras (Alt+E) the image file into the Extras
tab. Clipboard copies use OSC 52, so they work over SSH.
"""

from __future__ import annotations

from collections.abc import Sequence

from sdtui.screens.base import TabScreen
from sdtui.services.image_log import ImageRecord, save_folder, save_images, zip_images
from sdtui.widgets.results_panel import SEND_BUTTONS, ResultImage, ResultsPanel, not_built

RESULT_ACTIONS = {
    "open-folder": "open_folder",
    "save-image": "save_image",
    "zip-images": "zip_images",
    "copy-infotext": "copy_infotext",
    **{button_id: f"send_to('{target}')" for button_id, _label, target in SEND_BUTTONS},
}
"""Button id -> action, for the screen's `on_button_pressed`."""


def _records(results: Sequence[ResultImage]) -> list[ImageRecord]:
    return [ImageRecord(r.path, r.infotext, r.seed, r.grid) for r in results]


class ResultActions(TabScreen):
    @property
    def result_panel(self) -> ResultsPanel:
        return self.query_one("#result-panel", ResultsPanel)

    @property
    def results(self) -> list[ResultImage]:
        return self.result_panel.results

    @property
    def selected(self) -> int:
        return self.result_panel.selected

    def select_result(self, index: int) -> None:
        self.result_panel.select(index)

    def action_select_image(self, offset: int) -> None:
        if self.results:
            self.select_result((self.selected + offset) % len(self.results))

    def _current(self) -> ResultImage | None:
        current = self.result_panel.current
        if current is None:
            self.notify("No image yet: generate first.", severity="warning")
        return current

    def action_copy_infotext(self) -> None:
        if (current := self._current()) is not None:
            self.app.copy_to_clipboard(current.infotext)
            self.notify("Infotext copied (OSC 52)")

    def action_open_folder(self) -> None:
        if (current := self._current()) is not None:
            folder = str(current.path.parent)
            self.app.copy_to_clipboard(folder)
            self.notify(folder, title="Folder (path copied)")

    def action_save_image(self) -> None:
        current = self._current()
        if current is None:
            return
        images = self.results if current.grid else [current]
        settings = self.app.backend.user_settings
        folder = save_folder(settings)
        try:
            copies = save_images(
                _records(images),
                folder,
                settings.output_naming(self.TAB_ID),
                write_log=bool(settings.values.get("save_write_log_csv", True)),
            )
        except OSError as error:
            self.notify(f"{error}\nCheck that {folder} is writable.", title="Cannot save")
            return
        names = ", ".join(copy.name for copy in copies)
        self.notify(f"{names} → {folder}", title="Saved")

    def action_zip_images(self) -> None:
        if self._current() is None:
            return
        settings = self.app.backend.user_settings
        folder = save_folder(settings)
        try:
            archive = zip_images(
                _records(self.results),
                folder,
                settings.output_naming(self.TAB_ID),
                write_log=bool(settings.values.get("save_write_log_csv", True)),
            )
        except OSError as error:
            self.notify(f"{error}\nCheck that {folder} is writable.", title="Cannot zip")
            return
        self.app.copy_to_clipboard(str(archive))
        self.notify(f"{archive} (path copied)", title=f"Zipped {len(self.results)} image(s)")

    def action_send_to(self, target: str) -> None:
        from sdtui.screens.send_to import (
            IMG2IMG_TARGETS,
            infotext_values,
            send_image,
            send_to_extras,
        )

        if target == "extras":
            if (current := self._current()) is not None:
                send_to_extras(self.app, current.path)
            return
        if target not in IMG2IMG_TARGETS:
            self.notify(not_built(target), severity="warning")
            return
        if (current := self._current()) is not None:
            values = infotext_values(current.infotext)
            send_image(self.app, target, current.load(), values, str(current.path))
