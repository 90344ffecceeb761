"""The styles selector: a collapsible multi-select over the names in styles.csv.

    panel = StylesPanel(id="styles")
    panel.load(StyleLibrary.load(dirs.styles))   # keeps the selection where names remain
    panel.selected                               # ("Cinematic", "Sharp"), in selection order
    panel.toggle("Sharp"); panel.clear_selection()

Its buttons, "Apply" (A1111's 📋: fold the selected styles into the prompts) and "Save as
style", post ordinary `Button.Pressed` messages (ids `apply-styles`, `save-style`) for the
screen to act on. The title counts the selected styles, so the choice shows when collapsed;
it is not a Tab stop (Ctrl+T on txt2img opens the panel and focuses the list).
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Collapsible, SelectionList, Static
from textual.widgets.selection_list import Selection

from sdtui.services.styles import StyleLibrary

TITLE = "Styles"


class StylesPanel(Collapsible):
    DEFAULT_CSS = """
    StylesPanel SelectionList { height: auto; max-height: 8; }
    StylesPanel .styles-buttons { height: 1; margin: 0 0 0 0; }
    StylesPanel .styles-buttons Button { margin: 0 1 0 0; min-width: 8; }
    StylesPanel .styles-hint { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        self.library = StyleLibrary()
        self.selection_list: SelectionList[str] = SelectionList(compact=True)
        self.hint = Static("", classes="styles-hint")
        buttons = Horizontal(
            Button("Apply", id="apply-styles", compact=True),
            Button("Save as style", id="save-style", compact=True),
            classes="styles-buttons",
        )
        super().__init__(
            self.selection_list,
            self.hint,
            buttons,
            title=TITLE,
            collapsed=True,
            id=id,
            classes=classes,
        )
        # Ctrl+T opens it; its title stays out of the Tab order from the prompts to the
        # parameters (a click still toggles it)
        self._title.can_focus = False

    def on_mount(self) -> None:
        self._show_count()

    # -- contents --------------------------------------------------------------------------

    def load(self, library: StyleLibrary) -> None:
        """Show `library`'s names; selected names that are still there stay selected."""
        keep = [name for name in self.selected if name in library.styles]
        highlighted = self.selection_list.highlighted or 0
        self.library = library
        self.selection_list.clear_options()
        self.selection_list.add_options(
            [Selection(Content(name), name, name in keep) for name in library.styles]
        )
        if library.styles:
            self.selection_list.highlighted = min(highlighted, len(library.styles) - 1)
        self.hint.update(
            "" if library.styles else "No styles yet: write a prompt, then Save as style."
        )
        self._show_count()

    @property
    def selected(self) -> tuple[str, ...]:
        return tuple(self.selection_list.selected)

    def set_selected(self, names: Iterable[str]) -> list[str]:
        """Select exactly `names`; returns those that are not in styles.csv."""
        names = list(dict.fromkeys(names))
        self.selection_list.deselect_all()
        missing = []
        for name in names:
            if name in self.library.styles:
                self.selection_list.select(name)
            else:
                missing.append(name)
        self._show_count()
        return missing

    def toggle(self, name: str) -> bool:
        """Select or deselect one style; returns whether it is selected now."""
        if name in self.selection_list.selected:
            self.selection_list.deselect(name)
        else:
            self.selection_list.select(name)
        self._show_count()
        return name in self.selection_list.selected

    def clear_selection(self) -> None:
        self.selection_list.deselect_all()
        self._show_count()

    def on_selection_list_selected_changed(self) -> None:
        self._show_count()

    def _show_count(self) -> None:
        count = len(self.selection_list.selected)
        self.title = f"{TITLE} ({count} selected)" if count else TITLE
