"""A prompt field: label and A1111's live "N/75" token counter over a soft-wrapped TextArea.

    PromptBox("Prompt", id="prompt")
    PromptBox("Negative prompt", id="negative-prompt", placeholder="blurry")

* Ctrl+Up / Ctrl+Down (keymap ids `prompt.weight_up` / `prompt.weight_down`) change the
  weight at the selection or caret as A1111 does (`sdtui.core.attention_edit`), with the
  user's keyedit_precision_attention, keyedit_precision_extra and keyedit_delimiters
  settings (read through the app's backend; A1111's defaults without one).
* The counter shows what A1111's `update_token_counter` shows: the largest token count
  over the `AND` parts (positive prompt only) and the prompt-editing schedule's texts for
  `steps`, extra-network tags and comments removed, chunks closed at a comma as the
  comma_padding_backtrack setting says; denominator 75 per chunk. It is
  recounted in a thread 0.2 s after typing stops; "…/75" until the first count, "?/75"
  if the text cannot be counted.
* `TextArea.Changed` from the inner TextArea bubbles on; `text` reads and sets the prompt.

Nothing here imports torch: the tokenizer is pure Python, imported in the worker thread.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Label, TextArea
from textual.widgets.text_area import Selection
from textual.worker import Worker, WorkerState

from sdtui.core.attention_edit import KEYEDIT_WHITESPACE, adjust_weight
from sdtui.keymap import PROMPT_KEYS, bindings

COUNT_DELAY = 0.2
"""Seconds after the last change before the tokens are counted again."""
COUNT_GROUP = "prompt-token-count"
PENDING_COUNT = "…/75"
UNKNOWN_COUNT = "?/75"


def user_setting(widget: Widget, name: str) -> Any:
    """The user's setting `name` through the app's backend; None where the widget runs in
    an app without one (or the setting is unknown)."""
    settings = getattr(getattr(widget.app, "backend", None), "user_settings", None)
    try:
        return None if settings is None else settings[name]
    except KeyError:
        return None


def token_counter_text(
    text: str,
    *,
    positive: bool = True,
    steps: int = 20,
    emphasis: str = "Original",
    comma_backtrack: int | None = None,
) -> str:
    """The counter label for a prompt, "N/75"-style; "?/75" when it cannot be counted.
    `comma_backtrack`: A1111's comma_padding_backtrack (None: its default).

    Like A1111, a prompt whose syntax does not parse is counted as plain text.
    """
    chunking = {} if comma_backtrack is None else {"comma_backtrack": comma_backtrack}
    try:
        from sdtui.engine.prompt_chunks import (
            prompt_token_count,
            target_token_count,
            tokenize_line,
        )
    except Exception:
        return UNKNOWN_COUNT
    try:
        count, target = prompt_token_count(
            text, max(int(steps), 1), is_positive=positive, emphasis=emphasis, **chunking
        )
    except Exception:
        try:
            count = tokenize_line(text, emphasis=emphasis, **chunking).token_count
            target = target_token_count(count)
        except Exception:
            return UNKNOWN_COUNT
    return f"{count}/{target}"


class PromptTextArea(TextArea):
    """The TextArea of a PromptBox, with Ctrl+Up / Ctrl+Down weight editing."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(PROMPT_KEYS)

    def action_weight(self, direction: int) -> None:
        """Raise (1) or lower (-1) the weight at the selection, as A1111's Ctrl+Up/Down."""
        if self.read_only:
            return
        document = self.document
        text = self.text
        start = document.get_index_from_location(self.selection.start)
        end = document.get_index_from_location(self.selection.end)
        new_text, new_start, new_end = adjust_weight(
            text, start, end, direction, **self._keyedit_options()
        )
        if new_text != text:
            prefix, suffix = _changed_span(text, new_text)
            self.history.checkpoint()  # each weight change is one undo step
            self.replace(
                new_text[prefix : len(new_text) - suffix],
                document.get_location_from_index(prefix),
                document.get_location_from_index(len(text) - suffix),
                maintain_selection_offset=False,
            )
            self.history.checkpoint()
        self.selection = Selection(
            self.document.get_location_from_index(new_start),
            self.document.get_location_from_index(new_end),
        )

    def _keyedit_options(self) -> dict[str, Any]:
        """adjust_weight's options from the user's keyedit_* settings (A1111's defaults for
        those unset)."""
        options: dict[str, Any] = {}
        for option, name in (
            ("precision_attention", "keyedit_precision_attention"),
            ("precision_extra", "keyedit_precision_extra"),
        ):
            value = user_setting(self, name)
            if value is not None:
                options[option] = float(value)
        delimiters = user_setting(self, "keyedit_delimiters")
        if delimiters is not None:  # A1111's keyedit_delimiters_whitespace: all three on
            options["delimiters"] = str(delimiters) + KEYEDIT_WHITESPACE
        return options


def _changed_span(old: str, new: str) -> tuple[int, int]:
    """Lengths of the common prefix and (non-overlapping) common suffix of two strings."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, suffix


class PromptBox(Widget):
    """Label line ("Prompt" ... "N/75") over a soft-wrapped, compact TextArea."""

    DEFAULT_CSS = """
    PromptBox { height: auto; margin: 0 0 1 0; }
    PromptBox > .prompt-box--header { height: 1; }
    PromptBox .prompt-box--label { width: 1fr; color: $text-muted; }
    PromptBox:focus-within .prompt-box--label { color: $text; text-style: bold; }
    PromptBox .prompt-box--counter { width: auto; color: $text-muted; }
    PromptBox > PromptTextArea { height: 5; }
    """

    steps: reactive[int] = reactive(20, init=False)
    """Sampling steps: the prompt-editing schedule the counter looks at."""
    emphasis: reactive[str] = reactive("Original", init=False)
    """The emphasis mode ("None" counts brackets as text)."""

    def __init__(
        self,
        label: str,
        text: str = "",
        *,
        id: str | None = None,
        classes: str | None = None,
        placeholder: str = "",
        positive: bool | None = None,
    ) -> None:
        """`positive`: split at AND when counting; default: False for a "Negative ..." label."""
        super().__init__(id=id, classes=classes)
        self.label = label
        self.positive = (
            positive if positive is not None else not label.lower().startswith("negative")
        )
        self.text_area = PromptTextArea(
            text,
            soft_wrap=True,
            compact=True,
            highlight_cursor_line=False,
            placeholder=placeholder,
        )
        self.counter = Label(PENDING_COUNT, classes="prompt-box--counter")
        self._count_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="prompt-box--header"):
            yield Label(self.label, classes="prompt-box--label")
            yield self.counter
        yield self.text_area

    def on_mount(self) -> None:
        self.count_tokens()

    @property
    def text(self) -> str:
        return self.text_area.text

    @text.setter
    def text(self, value: str) -> None:
        area = self.text_area
        if value == area.text:
            return
        if area.is_mounted:  # an edit, so Ctrl+Z brings the old prompt back
            area.history.checkpoint()
            area.replace(value, area.document.start, area.document.end)
            area.history.checkpoint()
        else:
            area.load_text(value)

    def focus(self, scroll_visible: bool = True) -> PromptBox:
        self.text_area.focus(scroll_visible)
        return self

    # -- token counter ---------------------------------------------------------------------

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area is self.text_area:  # not stopped: the screen sees it too
            self._schedule_count()

    def watch_steps(self) -> None:
        self._schedule_count()

    def watch_emphasis(self) -> None:
        self._schedule_count()

    def _schedule_count(self) -> None:
        if self._count_timer is not None:
            self._count_timer.stop()
        self._count_timer = self.set_timer(COUNT_DELAY, self.count_tokens)

    def count_tokens(self) -> Worker[str]:
        """Count now, in a thread; a newer count cancels an unfinished one."""
        text, positive, steps, emphasis = self.text, self.positive, self.steps, self.emphasis
        backtrack = user_setting(self, "comma_padding_backtrack")
        backtrack = None if backtrack is None else int(backtrack)
        return self.run_worker(
            lambda: token_counter_text(
                text, positive=positive, steps=steps, emphasis=emphasis, comma_backtrack=backtrack
            ),
            thread=True,
            exclusive=True,
            group=COUNT_GROUP,
            exit_on_error=False,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != COUNT_GROUP:
            return
        if event.state == WorkerState.SUCCESS and isinstance(worker.result, str):
            self.counter.update(worker.result)
        elif event.state == WorkerState.ERROR:
            self.counter.update(UNKNOWN_COUNT)
