"""PromptBox in a tiny app: live token counter and Ctrl+Up / Ctrl+Down weight editing."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textual.app import App, ComposeResult

from sdtui.models.tokenizer import get_tokenizer
from sdtui.widgets import prompt_box
from sdtui.widgets.prompt_box import PromptBox, token_counter_text


class PromptApp(App[None]):
    def compose(self) -> ComposeResult:
        yield PromptBox("Prompt", id="prompt")
        yield PromptBox("Negative prompt", id="negative", placeholder="what to avoid")


def run(
    test: Callable[[Any, PromptApp], Awaitable[None]], app_class: type[PromptApp] = PromptApp
) -> None:
    """Run `test(pilot, app)` inside a headless PromptApp (no async test plugin needed)."""

    async def main() -> None:
        app = app_class()
        async with app.run_test(size=(60, 20)) as pilot:
            await test(pilot, app)

    asyncio.run(main())


def counter(box: PromptBox) -> str:
    return str(box.counter.content)


async def wait_for_counter(pilot: Any, box: PromptBox, expected: str) -> str:
    """Let the debounce timer and the counting thread run; the counter's final text."""
    for _ in range(400):
        await pilot.pause(0.05)
        await pilot.app.workers.wait_for_complete()
        if counter(box) == expected:
            break
    return counter(box)


def tokens(text: str) -> int:
    return len(get_tokenizer().encode(text))


def test_typing_updates_the_counter() -> None:
    assert tokens("a photo of a cat") == 5  # the oracle: CLIP's tokens, no BOS/EOS

    async def test(pilot: Any, app: PromptApp) -> None:
        prompt = app.query_one("#prompt", PromptBox)
        negative = app.query_one("#negative", PromptBox)
        assert await wait_for_counter(pilot, prompt, "0/75") == "0/75"
        prompt.focus()
        await pilot.pause()
        await pilot.press(*"a photo of a cat")
        assert prompt.text == "a photo of a cat"
        assert await wait_for_counter(pilot, prompt, "5/75") == "5/75"
        assert counter(negative) == "0/75"

    run(test)


def test_long_prompts_take_two_chunks_and_and_counts_the_longest_part() -> None:
    words = " ".join(["cat", "dog", "tree", "house"] * 20)  # 80 words, no commas
    count = tokens(words)
    assert 75 < count <= 150
    anded = f"a red apple AND {words}"

    async def test(pilot: Any, app: PromptApp) -> None:
        prompt = app.query_one("#prompt", PromptBox)
        negative = app.query_one("#negative", PromptBox)
        expected = f"{count}/150"
        negative.text = words
        assert await wait_for_counter(pilot, negative, expected) == expected
        prompt.text = anded  # positive: the longest AND part counts, not the sum
        assert await wait_for_counter(pilot, prompt, expected) == expected
        negative.text = anded  # negative: no AND split, "AND" is a token like any other
        whole = f"{tokens(anded)}/150"
        assert whole != expected
        assert await wait_for_counter(pilot, negative, whole) == whole

    run(test)


def test_ctrl_up_and_down_edit_the_word_under_the_caret() -> None:
    async def test(pilot: Any, app: PromptApp) -> None:
        prompt = app.query_one("#prompt", PromptBox)
        negative = app.query_one("#negative", PromptBox)
        prompt.focus()
        await pilot.pause()
        await pilot.press(*"a cat")
        seen = []
        for key in ("ctrl+up", "ctrl+up", "ctrl+down", "ctrl+down"):
            await pilot.press(key)
            seen.append((prompt.text, prompt.text_area.selected_text))
        assert seen == [
            ("a (cat:1.1)", "cat"),
            ("a (cat:1.2)", "cat"),
            ("a (cat:1.1)", "cat"),
            ("a cat", "cat"),
        ]
        assert negative.text == ""

    run(test)


def test_weight_edits_and_the_counter_follow_the_users_settings() -> None:
    """keyedit_precision_attention / _extra, keyedit_delimiters and comma_padding_backtrack
    come from the app's backend settings, read when the key is pressed or the text counted."""
    settings = {
        "keyedit_precision_attention": 0.05,
        "keyedit_precision_extra": 0.2,
        "keyedit_delimiters": " ",  # a comma no longer ends a word
        "comma_padding_backtrack": 0,
    }

    class SettingsApp(PromptApp):
        backend = SimpleNamespace(user_settings=settings)

    async def test(pilot: Any, app: PromptApp) -> None:
        prompt = app.query_one("#prompt", PromptBox)
        prompt.focus()
        await pilot.pause()
        await pilot.press(*"a cat")
        await pilot.press("ctrl+up")
        assert prompt.text == "a (cat:1.05)"
        prompt.text = "<lora:x:1> x,y"
        prompt.text_area.move_cursor((0, 3))
        await pilot.press("ctrl+up")
        assert prompt.text == "<lora:x:1.2> x,y"
        prompt.text_area.move_cursor((0, 15))  # inside "x,y": one word with these delimiters
        await pilot.press("ctrl+up")
        assert prompt.text == "<lora:x:1.2> (x,y:1.05)"
        long = "a " * 70 + ", " + "b " * 10  # 85 tokens with backtracking, 81 without
        prompt.text = long
        assert await wait_for_counter(pilot, prompt, "81/150") == "81/150"
        settings["comma_padding_backtrack"] = 20
        prompt.text = long + " "
        assert await wait_for_counter(pilot, prompt, "85/150") == "85/150"

    run(test, SettingsApp)


def test_weight_edit_on_a_later_line_converts_locations() -> None:
    async def test(pilot: Any, app: PromptApp) -> None:
        negative = app.query_one("#negative", PromptBox)
        negative.text = "blurry,\nlow quality, bad hands"
        negative.focus()
        await pilot.pause()
        area = negative.text_area
        area.move_cursor((1, 15))  # inside "bad"
        await pilot.press("ctrl+down")
        assert negative.text == "blurry,\nlow quality, (bad:0.9) hands"
        assert area.selection == ((1, 14), (1, 17))
        area.selection = ((0, 0), (0, 6))  # "blurry"
        await pilot.press("ctrl+up")
        assert negative.text == "(blurry:1.1),\nlow quality, (bad:0.9) hands"
        assert area.selected_text == "blurry"
        area.undo()
        assert negative.text == "blurry,\nlow quality, (bad:0.9) hands"

    run(test)


def test_counter_shows_pending_until_the_first_count(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow_count(text: str, **options: Any) -> str:
        release.wait(30)
        return token_counter_text(text, **options)

    monkeypatch.setattr(prompt_box, "token_counter_text", slow_count)

    async def test(pilot: Any, app: PromptApp) -> None:
        prompt = app.query_one("#prompt", PromptBox)
        await pilot.pause()
        assert counter(prompt) == "…/75"
        release.set()
        assert await wait_for_counter(pilot, prompt, "0/75") == "0/75"

    run(test)


def test_counter_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdtui.engine import prompt_chunks

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("bad prompt")

    monkeypatch.setattr(prompt_chunks, "prompt_token_count", broken)
    assert token_counter_text("a cat") == "2/75"  # A1111 falls back to the plain text
    monkeypatch.setattr(prompt_chunks, "tokenize_line", broken)
    assert token_counter_text("a cat") == "?/75"

    async def test(pilot: Any, app: PromptApp) -> None:
        prompt = app.query_one("#prompt", PromptBox)
        prompt.text = "a cat"
        assert await wait_for_counter(pilot, prompt, "?/75") == "?/75"

    monkeypatch.setattr(prompt_box, "COUNT_DELAY", 0.01)
    run(test)


PROMPT_PIECES = st.sampled_from([*"ab ()[]<>:|#,.\n", " AND ", "BREAK", "<lora:x:1>", "1.5"])


@settings(deadline=None, max_examples=60)
@given(st.lists(PROMPT_PIECES, max_size=30).map("".join))
def test_counter_text_is_always_a_count(text: str) -> None:
    label = token_counter_text(text)
    match = re.fullmatch(r"(\d+)/(\d+)", label)
    assert match is not None or label == "?/75", label
    if match:  # the denominator is the chunks the count takes, 75 each
        count, target = int(match[1]), int(match[2])
        assert target % 75 == 0 and target - 75 < max(count, 1) <= target


def test_importing_the_widget_does_not_import_torch() -> None:
    code = (
        "import sys, sdtui.widgets.prompt_box as p; p.token_counter_text('a cat AND b');"
        "print(sorted(m for m in ('torch', 'numpy', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
