"""The row of tabs at the top: A1111's tabs in A1111's order, with their Alt+N keys."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static


@dataclass(frozen=True)
class Tab:
    id: str
    label: str
    number: int  # A1111's position: Alt+number switches to it


# A1111's tab order; a tab is listed in the app only once its screen exists.
A1111_TABS = (
    Tab("txt2img", "txt2img", 1),
    Tab("img2img", "img2img", 2),
    Tab("extras", "Extras", 3),
    Tab("pnginfo", "PNG Info", 4),
    Tab("merger", "Checkpoint Merger", 5),
    Tab("train", "Train", 6),
    Tab("settings", "Settings", 7),
)


class TabBar(Horizontal):
    """Shows the available tabs; the active one is highlighted. Click to switch."""

    DEFAULT_CSS = """
    TabBar { height: 1; background: $panel; }
    TabBar > .tab { width: auto; padding: 0 1; color: $text-muted; }
    TabBar > .tab.-active { background: $accent; color: $text; text-style: bold; }
    TabBar > .brand { width: 1fr; content-align: right middle; color: $text-muted; }
    """

    def __init__(self, tabs: list[Tab], active: str) -> None:
        super().__init__()
        self.tabs = tabs
        self.active = active

    def compose(self) -> ComposeResult:
        for tab in self.tabs:
            classes = "tab -active" if tab.id == self.active else "tab"
            yield TabLabel(tab, classes=classes)
        yield Static("sdtui  F1 help · Ctrl+P commands", classes="brand")


class TabLabel(Static):
    def __init__(self, tab: Tab, classes: str) -> None:
        super().__init__(f"{tab.number} {tab.label}", classes=classes)
        self.tab = tab

    def on_click(self) -> None:
        self.app.run_action(f"switch_tab('{self.tab.id}')")
