""" "Save as style": ask for a name; a name already in styles.csv asks to confirm first.

    app.push_screen(StyleNameDialog(existing=["Cinematic"], prompt=p, negative=n), on_name)

Enter (or Save) with a new name dismisses with the name. With a name that exists, the
dialog says so and a second Enter (or Overwrite) confirms; editing the name withdraws the
question. Esc (or Cancel) dismisses with None. Writing styles.csv is the caller's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

PREVIEW_CHARACTERS = 200


def _preview(label: str, text: str) -> Content:
    shown = text if len(text) <= PREVIEW_CHARACTERS else text[:PREVIEW_CHARACTERS] + "…"
    return Content.assemble((f"{label}: ", "bold"), shown or "(empty)")


class StyleNameDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    StyleNameDialog { align: center middle; }
    StyleNameDialog > Vertical { width: 70; height: auto; border: round $accent;
                                 background: $surface; padding: 0 1; }
    StyleNameDialog .preview { color: $text-muted; }
    StyleNameDialog #style-question { color: $warning; height: auto; }
    StyleNameDialog Horizontal { height: auto; margin: 1 0 0 0; }
    StyleNameDialog Button { margin: 0 1 0 0; }
    """

    def __init__(self, existing: Iterable[str], prompt: str, negative_prompt: str) -> None:
        super().__init__()
        self.existing = set(existing)
        self.prompt_text = prompt
        self.negative_text = negative_prompt
        self.confirming: str | None = None  # the existing name the user was asked about

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("[b]Save the prompts as a style[/b] (Esc cancels)")
            yield Static(_preview("Prompt", self.prompt_text), classes="preview")
            yield Static(_preview("Negative prompt", self.negative_text), classes="preview")
            yield Input(placeholder="style name", id="style-name")
            yield Static("", id="style-question")
            with Horizontal():
                yield Button("Save", id="style-save", variant="primary", compact=True)
                yield Button("Cancel", id="style-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#style-name", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.confirming is not None and event.value.strip() != self.confirming:
            self._ask(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "style-save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        name = self.query_one("#style-name", Input).value.strip()
        if not name:
            self.query_one("#style-question", Static).update("Type a name first.")
            return
        if name in self.existing and self.confirming != name:
            self._ask(name)
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _ask(self, name: str | None) -> None:
        self.confirming = name
        question = self.query_one("#style-question", Static)
        button = self.query_one("#style-save", Button)
        if name is None:
            question.update("")
            button.label = "Save"
        else:
            question.update(
                Content(f"A style named {name!r} exists: Enter again replaces it, Esc cancels.")
            )
            button.label = "Overwrite"
