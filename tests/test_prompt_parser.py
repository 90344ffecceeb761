"""A1111 prompt syntax: documented examples and a never-raises property."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.core.prompt_parser import (
    parse_attention,
    prompt_schedule,
    split_and,
    strip_comments,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        ("(unbalanced", [("unbalanced", 1.1)]),
        (r"\(literal\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [
                ("a ", 1.0),
                ("house", 1.1 * 1.1 * 1.3),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.1**4),
                (".", 1.1),
            ],
        ),
        ("[less]", [("less", 1 / 1.1)]),
        ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
        ("", [("", 1.0)]),
        ("(x:1.2.3)", [("x:1.2.3)", 1.1)]),  # A1111 crashes here; we keep the text
    ],
)
def test_attention_matches_a1111(text: str, expected: list[tuple[str, float]]) -> None:
    result = parse_attention(text)
    assert [t for t, _ in result] == [t for t, _ in expected]
    assert [w for _, w in result] == pytest.approx([w for _, w in expected])


@pytest.mark.parametrize(
    ("prompt", "steps", "expected"),
    [
        ("a [b:c:5] d", 10, [(5, "a b d"), (10, "a c d")]),
        ("[a:b:0.5]", 20, [(10, "a"), (20, "b")]),
        ("[to:3]", 10, [(3, ""), (10, "to")]),
        ("[from::3]", 10, [(3, "from"), (10, "")]),
        ("[fe|]male", 3, [(1, "female"), (2, "male"), (3, "female")]),
        ("[a:[b:c:8]:3]", 10, [(3, "a"), (8, "b"), (10, "c")]),
        ("(x:1.2) [y: 4 ]", 6, [(4, "(x:1.2) "), (6, "(x:1.2) y")]),
        ("a|b [x:y:5]", 10, [(10, "a|b [x:y:5]")]),  # invalid: taken literally
        ("[a:b:c]", 10, [(10, "[a:b:c]")]),  # not a number: literal brackets
        ("plain", 10, [(10, "plain")]),
        (r"esc \[a:b:2\]", 10, [(10, r"esc \[a:b:2\]")]),
    ],
)
def test_prompt_editing_and_alternation(prompt, steps, expected) -> None:
    assert prompt_schedule(prompt, steps) == expected


def test_hires_timeline_offsets() -> None:
    assert prompt_schedule("[a:b:15]", 10, hires_steps=20) == [(5, "a"), (20, "b")]
    assert prompt_schedule("[a:b:1.5]", 10, hires_steps=20) == [(10, "a"), (20, "b")]
    assert prompt_schedule("[a:b:0.5]", 10, hires_steps=20) == [(20, "b")]
    assert prompt_schedule("[a:b:0.5]", 10, old_scheduling=True) == [(5, "a"), (10, "b")]


def test_and_with_weights() -> None:
    assert split_and("a cat AND a dog :1.5 AND sky:0.2") == [
        ("a cat", 1.0),
        (" a dog", 1.5),
        (" sky", 0.2),
    ]
    assert split_and("BRAND and ANDROID") == [("BRAND and ANDROID", 1.0)]


def test_comments() -> None:
    assert strip_comments("# whole line\na cat # tail\nsky") == "\na cat \nsky"


@settings(deadline=None, max_examples=400)
@given(st.text(alphabet=st.sampled_from(list("ab :|[]()\\.0123456789#BREAKND \n")), max_size=60))
def test_no_input_makes_it_raise(text: str) -> None:
    for _, step_text in prompt_schedule(text, 7, hires_steps=9):
        for subprompt, _ in split_and(strip_comments(step_text)):
            assert parse_attention(subprompt)
    assert prompt_schedule(text, 7)[-1][0] == 7


def test_deep_nesting_falls_back_instead_of_crashing() -> None:
    deep = "(" * 3000 + "x"
    assert prompt_schedule(deep, 5) == [(5, deep)]
    assert parse_attention(deep)[0][0] == "x"
