"""What every tab screen has: the tab bar on top, the status bar and footer at the bottom."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Footer

from sdtui.widgets.status_bar import StatusBar
from sdtui.widgets.tab_bar import TabBar


class TabScreen(Screen):
    """A tab's screen. Subclasses set TAB_ID and implement `compose_body`."""

    TAB_ID = ""

    def compose(self) -> ComposeResult:
        yield TabBar(list(getattr(self.app, "tabs", [])), self.TAB_ID)
        with Container(id="body"):
            yield from self.compose_body()
        yield StatusBar()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def on_backend_event(self, event: object) -> None:
        """A job event or status change from the backend (override to react)."""
