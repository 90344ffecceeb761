"""A1111's `<lora:...>` prompt tags: positional and named multipliers, aliases, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.core.extra_networks import (
    EXTRA_NETWORK,
    ExtraNetworkError,
    NetworkRequest,
    extra_networks,
    parse_extra_networks,
    strip_extra_networks,
)
from sdtui.engine import prompt_chunks


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("<lora:detail>", NetworkRequest("detail", 1.0, 1.0)),
        ("<lora:detail:0.8>", NetworkRequest("detail", 0.8, 0.8)),
        ("<lora:detail:0.8:0.3>", NetworkRequest("detail", 0.8, 0.3)),
        ("<lora:detail:1:0.5:4>", NetworkRequest("detail", 1.0, 0.5, 4)),
        ("<lora:detail:unet=0.5:te=1>", NetworkRequest("detail", 1.0, 0.5)),
        ("<lora:detail:te=0.2>", NetworkRequest("detail", 0.2, 0.2)),
        ("<lora:detail:0.7:unet=0>", NetworkRequest("detail", 0.7, 0.0)),
        ("<lora:detail:0.9:te=0.1>", NetworkRequest("detail", 0.1, 0.1)),  # named wins
        ("<lora:detail:dyn=8>", NetworkRequest("detail", 1.0, 1.0, 8)),
        ("<lora:my lora v2:-0.5>", NetworkRequest("my lora v2", -0.5, -0.5)),
        ("<lyco:grain:1:.25>", NetworkRequest("grain", 1.0, 0.25)),
    ],
)
def test_tag_arguments(tag: str, expected: NetworkRequest) -> None:
    text, requests = extra_networks(f"a cat, {tag} on a mat")
    assert requests == [expected]
    assert text == "a cat,  on a mat"


def test_tags_are_cut_out_in_order_and_other_kinds_are_kept_aside() -> None:
    prompt = "<lora:a:1>portrait<hypernet:h:0.5>, <lora:b:0.5:1> # <lora:hidden:1>\nsky"
    parsed = parse_extra_networks(prompt)
    assert [r.name for r in parsed.lora] == ["a", "b"]  # the commented one does nothing
    assert [(t.kind, t.positional) for t in parsed.other] == [("hypernet", ("h", "0.5"))]
    assert parsed.text == "portrait,  \nsky"
    assert strip_extra_networks(prompt) == parsed.text


def test_same_pattern_as_the_token_counter() -> None:
    assert EXTRA_NETWORK.pattern == prompt_chunks.EXTRA_NETWORK.pattern == r"<(\w+):([^>]+)>"


def test_text_that_is_no_tag_stays() -> None:
    for prompt in ("a <b> c", "x <lora:> y", "<:a:1>", "(a:1.2) <lora missing colon>"):
        assert extra_networks(prompt) == (prompt, [])


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("<lora:detail:abc>", "te multiplier 'abc' is not a number"),
        ("<lora:detail:1:x>", "unet multiplier 'x' is not a number"),
        ("<lora:detail:unet=high>", "unet multiplier 'high' is not a number"),
        ("<lora:detail:inf>", "must be finite"),
        ("<lora:detail:nan:1>", "must be finite"),
        ("<lora::1>", "no network name"),
        ("<lora:te=1>", "no network name"),
        ("<lora:detail:1:1:two>", "dyn 'two' is not a whole number"),
        ("<lora:detail:dyn=0>", "dyn must be at least 1"),
        ("<lora:detail:1:1:4:5>", "too many arguments"),
        ("<lora:detail:1:strength=2>", "unknown argument 'strength'"),
    ],
)
def test_bad_tags_say_what_is_wrong(tag: str, message: str) -> None:
    with pytest.raises(ExtraNetworkError, match=message) as error:
        extra_networks(f"a cat {tag}")
    assert tag in str(error.value)
    assert isinstance(error.value, ValueError)


names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_ .\-]{0,15}", fullmatch=True).filter(
    lambda name: name.strip() == name
)
multipliers = st.floats(-4, 4, allow_nan=False).map(lambda value: round(value, 3))


@settings(deadline=None, max_examples=80)
@given(
    st.lists(st.tuples(names, multipliers, st.none() | multipliers), max_size=4),
    st.sampled_from(["lora", "lyco"]),
)
def test_written_tags_read_back(tags: list, kind: str) -> None:
    prompt = "start"
    for name, te, unet in tags:
        tail = "" if unet is None else f":{unet}"
        prompt += f" <{kind}:{name}:{te}{tail}> word"
    text, requests = extra_networks(prompt)
    assert [(r.name, r.te, r.unet) for r in requests] == [
        (name, te, te if unet is None else unet) for name, te, unet in tags
    ]
    assert text == "start" + "  word" * len(tags)
