"""F1 / `?`: every binding of the current screen with its id, keys and what it does."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from sdtui.keymap import KEYMAP_FILE


def binding_rows(screen: Screen) -> list[tuple[str, str, str]]:
    """(keys, description, id) for every binding active on `screen`, focused widget first,
    then the screen and the app; a key shadowed by an earlier binding is left out."""
    rows, seen = [], set()
    for _node, binding_map in screen._binding_chain:
        for key, bindings in binding_map.key_to_bindings.items():
            for binding in bindings:
                if key in seen or not binding.description:
                    continue
                seen.add(key)
                rows.append((key, binding.description, binding.id or ""))
    grouped: dict[tuple[str, str], list[str]] = {}
    for key, description, binding_id in rows:
        grouped.setdefault((description, binding_id), []).append(key)
    return [(", ".join(keys), description, ident) for (description, ident), keys in grouped.items()]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [Binding("escape,f1,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90; max-height: 90%; height: auto; border: round $accent;
                            background: $surface; padding: 0 1; }
    HelpScreen DataTable { height: auto; max-height: 30; }
    HelpScreen .hint { color: $text-muted; }
    """

    def __init__(self, rows: list[tuple[str, str, str]], title: str) -> None:
        super().__init__()
        self.rows = rows
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"[b]{self.title_text}[/b] — keys (Esc closes)")
            table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("Keys", "Action", "Id")
            for row in self.rows:
                table.add_row(*row)
            yield table
            yield Static(
                f"Remap any binding by id in <data-dir>/sdtui/{KEYMAP_FILE}, e.g. "
                "`txt2img.generate: f5,ctrl+g`. Ctrl+P opens the command palette.",
                classes="hint",
            )
