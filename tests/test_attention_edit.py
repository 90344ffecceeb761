"""Ctrl+Up / Ctrl+Down weight editing: hand-worked A1111 (`edit-attention.js`) results."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.core.attention_edit import (
    adjust_weight,
    js_number_string,
    js_parse_float,
    js_to_precision_12,
)


def caret(text: str, marker: str = "|") -> tuple[str, int]:
    """ "a c|at" -> ("a cat", 3)."""
    return text.replace(marker, ""), text.index(marker)


@pytest.mark.parametrize(
    ("marked", "direction", "expected"),
    [
        # plain word under the caret gets wrapped
        ("a c|at", 1, ("a (cat:1.1)", 3, 6)),
        ("a c|at", -1, ("a (cat:0.9)", 3, 6)),
        ("|cat dog", 1, ("(cat:1.1) dog", 1, 4)),
        ("cat dog|", 1, ("cat (dog:1.1)", 5, 8)),
        ("cat\ndo|g", 1, ("cat\n(dog:1.1)", 5, 8)),
        ("red,c|at", 1, ("red,(cat:1.1)", 5, 8)),
        # caret inside a weighted block: the block's text up to the last colon
        ("a (red c|at:1.3), b", 1, ("a (red cat:1.4), b", 3, 10)),
        ("(c|at:0.3)", -1, ("(cat:0.2)", 1, 4)),
        ("((c|at:1.2) dog:1.1)", 1, ("((cat:1.3) dog:1.1)", 2, 5)),
        # after an inner block, the outer one is not found: the word is wrapped
        ("((cat:1.2) d|og:1.1)", 1, ("((cat:1.2) (dog:1.1):1.1)", 12, 15)),
        # weight 1 removes the brackets
        ("a (c|at:1.1) b", -1, ("a cat b", 2, 5)),
        ("(c|at:0.9)", 1, ("cat", 0, 3)),
        # negative and zero weights
        ("(c|at:0.1)", -1, ("(cat:0.0)", 1, 4)),
        ("(c|at:0.05)", -1, ("(cat:-0.05)", 1, 4)),
        ("(c|at:-0.9)", -1, ("(cat:-1.0)", 1, 4)),
        ("(c|at:1.9)", 1, ("(cat:2.0)", 1, 4)),
        # extra networks use precision_extra and keep weight 1.0
        ("<lora:na|me:0.8>, cat", 1, ("<lora:name:0.85>, cat", 1, 10)),
        ("<lora:na|me:0.8>, cat", -1, ("<lora:name:0.75>, cat", 1, 10)),
        ("<lora:|x:0.95>", 1, ("<lora:x:1.0>", 1, 7)),
        ("<lora:|x:0.7>", 1, ("<lora:x:0.75>", 1, 7)),
        # old-style emphasis becomes a weight
        ("((c|at))", 1, ("(cat:1.3)", 1, 4)),
        ("(c|at)", -1, ("cat", 0, 3)),
        ("(c|at)", 1, ("(cat:1.2)", 1, 4)),
        ("[c|at]", -1, ("(cat:0.8)", 1, 4)),
        ("[[c|at]]", 1, ("(cat:0.9)", 1, 4)),
        # nothing to edit: unchanged, A1111's selection
        ("|", 1, ("", 0, 0)),
        ("|", -1, ("", 0, 0)),
        (" | ", 1, ("  ", 1, 1)),
        ("(cat:1.2)| dog", 1, ("(cat:1.2) dog", 9, 9)),
        ("|(cat:1.2)", 1, ("(cat:1.2)", 0, 0)),
        ("<c|at>", 1, ("<cat>", 1, 4)),
    ],
)
def test_caret_edits(marked: str, direction: int, expected: tuple[str, int, int]) -> None:
    text, position = caret(marked)
    assert adjust_weight(text, position, position, direction) == expected


@pytest.mark.parametrize(
    ("text", "start", "end", "direction", "expected"),
    [
        # a selection spanning a block wraps the whole block
        ("a (cat:1.2) b", 2, 11, 1, ("a ((cat:1.2):1.1) b", 3, 12)),
        # trailing spaces stay outside, several words are one block
        ("red cat dog", 0, 4, 1, ("(red:1.1) cat dog", 1, 4)),
        ("red cat, dog", 0, 7, -1, ("(red cat:0.9), dog", 1, 8)),
        # a selection inside a block changes its weight
        ("x (red cat:1.5)", 3, 10, 1, ("x (red cat:1.6)", 3, 10)),
        # a backwards selection counts as forwards; out-of-range offsets are clamped
        ("red cat", 7, 4, 1, ("red (cat:1.1)", 5, 8)),
        ("cat", -5, 99, 1, ("(cat:1.1)", 1, 4)),
        # only spaces selected: nothing happens, the selection stays
        ("a   b", 1, 3, 1, ("a   b", 1, 3)),
        ("cat", 0, 3, 0, ("cat", 0, 3)),
    ],
)
def test_selection_edits(
    text: str, start: int, end: int, direction: int, expected: tuple[str, int, int]
) -> None:
    assert adjust_weight(text, start, end, direction) == expected


def test_repeated_presses_walk_the_weight_without_float_noise() -> None:
    text, start, end = "a cat", 3, 3
    seen = []
    for _ in range(6):
        text, start, end = adjust_weight(text, start, end, 1)
        seen.append(text)
    assert seen == [f"a (cat:{w})" for w in ("1.1", "1.2", "1.3", "1.4", "1.5", "1.6")]
    assert text[start:end] == "cat"
    for _ in range(6):
        text, start, end = adjust_weight(text, start, end, -1)
    assert (text, start, end) == ("a cat", 2, 5)


def test_precision_and_delimiters_are_settings() -> None:
    assert adjust_weight("cat", 1, 1, 1, precision_attention=0.25) == ("(cat:1.25)", 1, 4)
    lora = adjust_weight("<lora:x:1.0>", 2, 2, -1, precision_extra=0.1)
    assert lora == ("<lora:x:0.9>", 1, 7)
    assert adjust_weight("red,cat", 5, 5, 1, delimiters=" ") == ("(red,cat:1.1)", 1, 8)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123456789012.0, "123456789012"),
        (float("inf"), "Infinity"),
    ],
)
def test_js_number_string(value: float, expected: str) -> None:
    assert js_number_string(value) == expected


def test_js_number_helpers() -> None:
    assert js_parse_float(" 1.25)") == 1.25
    assert js_parse_float("-.5e1x") == -5.0
    assert js_parse_float("1e") == 1.0
    assert js_parse_float("Infinity") == float("inf")
    assert js_parse_float("abc") != js_parse_float("abc")  # NaN
    assert js_to_precision_12(1.2000000000000002) == 1.2
    assert js_to_precision_12(0.30000000000000004) == 0.3


PROMPT_CHARS = st.sampled_from([*list("ab ()[]<>:.-,0123456789\n\t"), "lora", "é"])


@settings(deadline=None, max_examples=300)
@given(
    text=st.lists(PROMPT_CHARS, max_size=24).map("".join),
    start=st.integers(-3, 30),
    end=st.integers(-3, 30),
    direction=st.sampled_from([1, -1]),
)
def test_never_raises_and_selection_is_inside(
    text: str, start: int, end: int, direction: int
) -> None:
    new_text, new_start, new_end = adjust_weight(text, start, end, direction)
    assert 0 <= new_start <= new_end <= len(new_text)


@settings(deadline=None, max_examples=100)
@given(
    word=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
    offset=st.integers(0, 8),
    steps=st.integers(1, 4),
)
def test_up_then_down_restores_a_word(word: str, offset: int, steps: int) -> None:
    text = f"x, {word} y"
    position = 3 + min(offset, len(word))
    state = (text, position, position)
    for _ in range(steps):
        state = adjust_weight(*state, 1)
    assert state[0] == f"x, ({word}:{1 + steps / 10:.1f}) y"
    for _ in range(steps):
        state = adjust_weight(*state, -1)
    assert state == (text, 3, 3 + len(word))
