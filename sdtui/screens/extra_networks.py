"""The extra-networks picker (Ctrl+N on txt2img): LoRA, Textual Inversion and Styles.

    sections = [Section("lora", "Lora", ["add_detail"]), Section("embedding", ...), ...]
    app.push_screen(ExtraNetworksScreen(sections, styles_selected, toggle_style), on_pick)

As A1111's extra-networks tabs, for the keyboard: the filter line keeps the focus; Up/Down
(PageUp/PageDown) move through the names, Tab / Shift+Tab change section, Enter picks and
Esc closes. A LoRA is picked as `<lora:name:1>` (A1111's default multiplier), an embedding
as its name; the screen dismisses with a `NetworkPick` for the caller to insert at the
prompt's cursor. In Styles, Enter toggles the style (✓) and the picker stays open. A click
picks as Enter does. Names come from the caller (`sdtui.services.network_names`: folder
walks, no torch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static, Tab, Tabs
from textual.widgets.option_list import Option

from sdtui.services.network_names import lora_tag, matching

CHECK = "✓ "
HINT = "Enter inserts at the cursor · Tab next section · Esc closes"
STYLE_HINT = "Enter selects or clears the style · Tab next section · Esc closes"


@dataclass(frozen=True)
class Section:
    kind: str  # "lora", "embedding", "style"
    title: str
    names: Sequence[str]
    empty: str = "nothing here"  # shown when there are no names at all


@dataclass(frozen=True)
class NetworkPick:
    kind: str
    name: str
    text: str  # what goes into the prompt


@dataclass
class _State:
    section: int = 0
    filters: dict[str, str] = field(default_factory=dict)


def pick_text(kind: str, name: str) -> str:
    return lora_tag(name) if kind == "lora" else name


class ExtraNetworksScreen(ModalScreen[NetworkPick | None]):
    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "Close"),
        Binding("tab", "section(1)", "Next section", show=False),
        Binding("shift+tab", "section(-1)", "Previous section", show=False),
        Binding("down", "move('cursor_down')", show=False),
        Binding("up", "move('cursor_up')", show=False),
        Binding("pagedown", "move('page_down')", show=False),
        Binding("pageup", "move('page_up')", show=False),
    ]
    DEFAULT_CSS = """
    ExtraNetworksScreen { align: center middle; }
    ExtraNetworksScreen > Vertical { width: 80; height: 80%; border: round $accent;
                                     background: $surface; padding: 0 1; }
    ExtraNetworksScreen OptionList { height: 1fr; }
    ExtraNetworksScreen .hint { color: $text-muted; }
    """

    def __init__(
        self,
        sections: Sequence[Section],
        selected_styles: Sequence[str] = (),
        toggle_style: Callable[[str], bool] | None = None,
        start: str = "lora",
    ) -> None:
        super().__init__()
        self.sections = list(sections)
        self.selected_styles = set(selected_styles)
        self.toggle_style = toggle_style
        kinds = [section.kind for section in self.sections]
        self.state = _State(kinds.index(start) if start in kinds else 0)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("[b]Extra networks[/b]")
            tabs = Tabs(
                *[Tab(s.title, id=f"section-{s.kind}") for s in self.sections],
                active=f"section-{self.section.kind}",
            )
            tabs.can_focus = False
            yield tabs
            yield Input(placeholder="filter", id="network-filter")
            yield OptionList(id="network-list", markup=False)
            yield Static(HINT, classes="hint", id="network-hint")

    def on_mount(self) -> None:
        self.query_one("#network-filter", Input).focus()
        self.refresh_list()

    @property
    def section(self) -> Section:
        return self.sections[self.state.section]

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#network-list", OptionList)

    # -- the list --------------------------------------------------------------------------

    def refresh_list(self) -> None:
        section = self.section
        typed = self.state.filters.get(section.kind, "")
        names = matching(section.names, typed)
        options = self.option_list
        options.clear_options()
        if not section.names:
            options.add_option(Option(Content(section.empty), disabled=True))
        elif not names:
            options.add_option(Option(Content(f"no names contain {typed!r}"), disabled=True))
        for name in names:
            options.add_option(Option(Content(self._label(name)), id=name))
        options.highlighted = 0 if names else None
        hint = STYLE_HINT if section.kind == "style" else HINT
        self.query_one("#network-hint", Static).update(hint)

    def _label(self, name: str) -> str:
        if self.section.kind != "style":
            return name
        return (CHECK if name in self.selected_styles else "  ") + name

    def on_input_changed(self, event: Input.Changed) -> None:
        self.state.filters[self.section.kind] = event.value
        self.refresh_list()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id != event.tabs.active:
            return  # a late message from a switch the keyboard has already moved past
        kind = (event.tab.id or "").removeprefix("section-")
        index = next((i for i, s in enumerate(self.sections) if s.kind == kind), None)
        if index is not None:
            self.show_section(index)

    def show_section(self, index: int) -> None:
        """Switch to section `index`, with the filter typed there before."""
        self.query_one(Tabs).active = f"section-{self.sections[index].kind}"
        if index == self.state.section:
            return
        self.state.section = index
        filter_input = self.query_one("#network-filter", Input)
        with filter_input.prevent(Input.Changed):
            filter_input.value = self.state.filters.get(self.section.kind, "")
        self.refresh_list()

    # -- actions ---------------------------------------------------------------------------

    def action_section(self, step: int) -> None:
        self.show_section((self.state.section + step) % len(self.sections))

    def action_move(self, method: str) -> None:
        getattr(self.option_list, f"action_{method}")()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.pick(self.option_list.highlighted)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.pick(event.option_index)

    def pick(self, index: int | None) -> None:
        if index is None:
            return
        option = self.option_list.get_option_at_index(index)
        if option.disabled or option.id is None:
            return
        name, kind = option.id, self.section.kind
        if kind != "style":
            self.dismiss(NetworkPick(kind, name, pick_text(kind, name)))
            return
        selected = (
            self.toggle_style(name) if self.toggle_style else name not in self.selected_styles
        )
        (self.selected_styles.add if selected else self.selected_styles.discard)(name)
        self.option_list.replace_option_prompt_at_index(index, Content(self._label(name)))
