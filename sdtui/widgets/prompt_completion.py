"""A PromptBox that completes LoRA names while typing `<lora:`.

    CompletingPromptBox("Prompt", id="prompt", lora_names=lambda: ["add_detail", "grain"])

Typing `<lora:` (or `<lyco:`) and the start of a name opens a list under the prompt of the
LoRA files whose names start with (then contain) what was typed. While it is open, Tab or
Enter inserts the highlighted name with A1111's default multiplier (`add_detail:1>`), Up and
Down move through the list, and Esc closes it -- and only closes it: those keys do nothing
else then (Esc is Interrupt on the txt2img screen). A click on a name inserts it too. The
list closes when the cursor leaves the tag or the prompt loses focus.

Textual 8.2 has no completion for TextArea (textual-autocomplete serves Input only), hence
this small OptionList under the text.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.app import ComposeResult
from textual.widgets import OptionList, TextArea

from sdtui.services.network_names import (
    DEFAULT_MULTIPLIER,
    LoraCompletion,
    format_multiplier,
    lora_completion,
    matching,
)
from sdtui.widgets.prompt_box import PromptBox, PromptTextArea

MAX_SUGGESTIONS = 50
ACCEPT_KEYS = ("tab", "enter")


class CompletingTextArea(PromptTextArea):
    """Hands Tab / Enter / Up / Down / Esc to the completion list while it is open."""

    async def _on_key(self, event: events.Key) -> None:
        # TextArea's own _on_key runs after this one unless the default is prevented.
        box = self.parent
        if (
            isinstance(box, CompletingPromptBox)
            and box.completion_open
            and box.handle_completion_key(event.key)
        ):
            event.stop()
            event.prevent_default()


class CompletingPromptBox(PromptBox):
    DEFAULT_CSS = """
    CompletingPromptBox > .prompt-completion {
        display: none; height: auto; max-height: 6; background: $panel; margin: 0 0 0 2;
    }
    CompletingPromptBox > .prompt-completion.-open { display: block; }
    """

    def __init__(
        self,
        label: str,
        text: str = "",
        *,
        lora_names: Callable[[], list[str]],
        id: str | None = None,
        classes: str | None = None,
        placeholder: str = "",
        positive: bool | None = None,
    ) -> None:
        super().__init__(
            label, text, id=id, classes=classes, placeholder=placeholder, positive=positive
        )
        self.text_area = CompletingTextArea(
            text,
            soft_wrap=True,
            compact=True,
            highlight_cursor_line=False,
            placeholder=placeholder,
        )
        self.lora_names = lora_names
        self.suggestions = OptionList(classes="prompt-completion", compact=True, markup=False)
        self.suggestions.can_focus = False
        self._tag: LoraCompletion | None = None
        self._names: list[str] | None = None  # read when the list opens

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield self.suggestions

    @property
    def completion_open(self) -> bool:
        return self.suggestions.has_class("-open")

    # -- opening, filtering, closing -------------------------------------------------------

    def _before_cursor(self) -> str:
        row, column = self.text_area.cursor_location
        return self.text_area.document.get_line(row)[:column]

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area is self.text_area:
            self.update_completion(open_list=True)

    def on_text_area_selection_changed(self, event: TextArea.SelectionChanged) -> None:
        if event.text_area is self.text_area and self.completion_open:
            self.update_completion(open_list=False)

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self.close_completion()

    def update_completion(self, *, open_list: bool) -> None:
        """Show the names matching the `<lora:` tag at the cursor; close when there is none
        (`open_list`: may open a closed list, as typing does)."""
        self._tag = tag = lora_completion(self._before_cursor())
        if tag is None or not (open_list or self.completion_open):
            self.close_completion()
            return
        if self._names is None:
            self._names = self.lora_names()
        found = matching(self._names, tag.partial, MAX_SUGGESTIONS)
        if not found:
            self.close_completion()
            return
        self.suggestions.set_options(found)
        self.suggestions.highlighted = 0
        self.suggestions.add_class("-open")

    def close_completion(self) -> None:
        self.suggestions.remove_class("-open")
        self._names = None

    # -- keys and clicks -------------------------------------------------------------------

    def handle_completion_key(self, key: str) -> bool:
        """Act on a key while the list is open; False for keys the text area should get."""
        if key in ACCEPT_KEYS:
            self.accept_completion()
        elif key == "escape":
            self.close_completion()
        elif key == "down":
            self.suggestions.action_cursor_down()
        elif key == "up":
            self.suggestions.action_cursor_up()
        else:
            return False
        return True

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.accept_completion(event.option_index)

    def accept_completion(self, index: int | None = None) -> None:
        """Replace the typed part of the name with the chosen name, `:1>` after it."""
        index = self.suggestions.highlighted if index is None else index
        tag, area = self._tag, self.text_area
        self.close_completion()
        if tag is None or index is None:
            return
        name = str(self.suggestions.get_option_at_index(index).prompt)
        row, column = area.cursor_location
        insert = f"{name}:{format_multiplier(DEFAULT_MULTIPLIER)}>"
        area.replace(insert, (row, tag.start), (row, column), maintain_selection_offset=False)
        area.focus()
