"""Styles and extra networks for a generation tab's prompts.

`PromptTools` is a base for tab screens with prompt boxes `#prompt` and `#negative-prompt`
and a `StylesPanel` `#styles-panel`:

* Ctrl+T opens the styles list; the selected styles go into the request (`styles`), and the
  job folds them into the prompts. Alt+A is A1111's 📋: fold them into the prompt boxes now
  and clear the selection. Alt+Y saves the prompts as a style in styles.csv (atomic, other
  rows kept; an existing name asks first).
* Ctrl+N opens the extra-networks picker; what it picks goes in at the cursor of the prompt
  box that had the focus last (`<lora:name:1>`, an embedding's name), or toggles a style.
"""

from __future__ import annotations

import csv

from textual import events

from sdtui.paths import DataDirs
from sdtui.screens.base import TabScreen
from sdtui.screens.extra_networks import ExtraNetworksScreen, NetworkPick, Section
from sdtui.screens.style_dialog import StyleNameDialog
from sdtui.services.network_names import embedding_names, lora_names
from sdtui.services.styles import Style, StyleLibrary
from sdtui.widgets.prompt_box import PromptBox
from sdtui.widgets.styles_panel import StylesPanel

PROMPT_IDS = ("prompt", "negative-prompt")
NO_SPACE_AFTER = "([{<"


def insert_at_cursor(box: PromptBox, text: str) -> None:
    """Insert `text` at the box's cursor, after a space unless the cursor follows one (or an
    opening bracket), and leave the cursor after it."""
    area = box.text_area
    row, column = area.cursor_location
    before = area.document.get_line(row)[:column]
    if before and not before[-1].isspace() and before[-1] not in NO_SPACE_AFTER:
        text = " " + text
    area.history.checkpoint()
    area.replace(text, (row, column), (row, column), maintain_selection_offset=False)
    area.history.checkpoint()


class PromptTools(TabScreen):
    last_prompt_id = "prompt"

    @property
    def dirs(self) -> DataDirs:
        return self.app.backend.dirs

    @property
    def styles_panel(self) -> StylesPanel:
        return self.query_one("#styles-panel", StylesPanel)

    def prompt_box(self, box_id: str = "prompt") -> PromptBox:
        return self.query_one(f"#{box_id}", PromptBox)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        for node in event.widget.ancestors_with_self:
            if isinstance(node, PromptBox) and node.id in PROMPT_IDS:
                self.last_prompt_id = node.id
                return

    def lora_names(self) -> list[str]:
        return lora_names(self.dirs)

    # -- styles ----------------------------------------------------------------------------

    def reload_styles(self) -> StyleLibrary | None:
        """Read styles.csv again into the panel (None, with a message, if it is unreadable)."""
        try:
            library = StyleLibrary.load(self.dirs.styles)
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
            self.notify(f"{self.dirs.styles}: {error}", title="Cannot read styles", timeout=10)
            return None
        self.styles_panel.load(library)
        return library

    def action_styles(self) -> None:
        self.reload_styles()
        panel = self.styles_panel
        panel.collapsed = False
        panel.selection_list.focus()

    def action_apply_styles(self) -> None:
        names = self.styles_panel.selected
        if not names:
            self.notify("Select styles first (Ctrl+T).", severity="warning")
            return
        library = self.reload_styles()
        if library is None:
            return
        prompt, negative = self.prompt_box("prompt"), self.prompt_box("negative-prompt")
        try:
            prompt.text, negative.text = library.apply(names, prompt.text, negative.text)
        except KeyError as error:
            self.notify(str(error.args[0]), title="Style not found", severity="error")
            return
        self.styles_panel.clear_selection()
        self.notify(f"Applied to the prompts: {', '.join(names)}")

    def action_save_style(self) -> None:
        prompt = self.prompt_box("prompt").text
        negative = self.prompt_box("negative-prompt").text
        if not prompt.strip() and not negative.strip():
            self.notify("Write a prompt first: a style saves the prompts.", severity="warning")
            return
        library = self.reload_styles()
        if library is None:
            return

        def save(name: str | None) -> None:
            if name:
                self._write_style(Style(name, prompt, negative))

        self.app.push_screen(StyleNameDialog(library.styles, prompt, negative), save)

    def _write_style(self, style: Style) -> None:
        path = self.dirs.styles
        try:
            library = StyleLibrary.load(path)  # the file as it is now: keep every other row
            library.styles[style.name] = style
            library.save(path)
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
            self.notify(f"{path}: {error}", title="Cannot save the style", severity="error")
            return
        self.styles_panel.load(library)
        self.notify(f"Style {style.name!r} saved to {path}")

    # -- extra networks --------------------------------------------------------------------

    def action_extra_networks(self) -> None:
        library = self.reload_styles()
        dirs = self.dirs
        sections = [
            Section("lora", "Lora", self.lora_names(), f"No LoRA files in {dirs.lora}"),
            Section(
                "embedding",
                "Textual Inversion",
                embedding_names(dirs),
                f"No embeddings in {dirs.embeddings}",
            ),
            Section(
                "style",
                "Styles",
                list(library.styles) if library else [],
                f"No styles in {dirs.styles} yet (Alt+Y saves the prompts as one)",
            ),
        ]
        panel = self.styles_panel
        picker = ExtraNetworksScreen(sections, panel.selected, panel.toggle)
        self.app.push_screen(picker, self._insert_pick)

    def _insert_pick(self, pick: NetworkPick | None) -> None:
        box = self.prompt_box(self.last_prompt_id)
        if pick is not None:
            insert_at_cursor(box, pick.text)
        box.focus()
