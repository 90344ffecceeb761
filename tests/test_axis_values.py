"""A1111's X/Y/Z plot value syntax (`sdtui.params.axis_values`): hand-written cases, numpy
as the oracle of count ranges, exact fractions as the oracle of float steps."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.params.axis_values import AxisValueError, join_csv, parse_values, split_csv


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-5", [1, 2, 3, 4, 5]),
        ("1 - 5", [1, 2, 3, 4, 5]),
        ("1-10 (+3)", [1, 4, 7, 10]),
        ("1-10 (+2)", [1, 3, 5, 7, 9]),
        ("1-10 (2)", [1, 3, 5, 7, 9]),  # A1111 insists on the sign
        ("1-10 [4]", [1, 4, 7, 10]),
        ("0-10 [4]", [0, 3, 6, 10]),  # linspace 0, 3.33, 6.67, 10 truncated, as A1111
        ("1-10 [1]", [1]),
        ("5-1", [5, 4, 3, 2, 1]),  # A1111: nothing
        ("5-1 (-2)", [5, 3, 1]),  # A1111: 5, 3
        ("-5--3", [-5, -4, -3]),
        ("-2", [-2]),
        ("1, 3-4, 10", [1, 3, 4, 10]),
        (" 7 ,, 8 ", [7, 8]),  # empty items are dropped for numbers
        ("1\n2-3", [1, 2, 3]),  # lines are one list
        ("20,-1", [20, -1]),
    ],
)
def test_whole_numbers(text: str, expected: list[int]) -> None:
    assert parse_values(text, int) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-1 (+0.25)", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("1-2 (+0.3)", [1.0, 1.3, 1.6, 1.9]),  # A1111 adds 2.2
        ("0-0.3 (+0.1)", [0.0, 0.1, 0.2, 0.3]),
        ("1-3", [1.0, 2.0, 3.0]),
        ("0-1 [3]", [0.0, 0.5, 1.0]),
        ("7.5, 3, .5", [7.5, 3.0, 0.5]),
        ("1-0 (-0.5)", [1.0, 0.5, 0.0]),
    ],
)
def test_numbers(text: str, expected: list[float]) -> None:
    assert parse_values(text, float) == expected


def test_strings_are_a_csv_row() -> None:
    assert parse_values('Euler a, "DPM++ 2M, Karras", x', str) == [
        "Euler a",
        "DPM++ 2M, Karras",
        "x",
    ]
    assert parse_values("a,,b", str) == ["a", "", "b"]  # kept, as A1111 keeps them
    assert parse_values("1-5", str) == ["1-5"]


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("abc", int, "'abc' is not a whole number or a range"),
        ("1.5", int, "'1.5' is not a whole number"),
        ("1-5 (-1)", int, "a step of -1 never gets from 1 to 5"),
        ("1-5 (0)", int, "the step of a range cannot be 0"),
        ("1-5 [0]", int, "a count of at least 1"),
        ("x", float, "'x' is not a number"),
        ("nan", float, "not a finite number"),
        ("1-2 (0)", float, "cannot be 0"),
    ],
)
def test_bad_values_say_what_is_wrong(text: str, kind: type, message: str) -> None:
    with pytest.raises(AxisValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_values(text, kind)


small = st.integers(-50, 50)


@settings(deadline=None, max_examples=80)
@given(start=small, end=small, step=st.integers(1, 7))
def test_int_steps_match_python_ranges(start: int, end: int, step: int) -> None:
    if start <= end:
        assert parse_values(f"{start}-{end} (+{step})", int) == list(range(start, end + 1, step))
    else:
        with pytest.raises(AxisValueError):
            parse_values(f"{start}-{end} (+{step})", int)
        assert parse_values(f"{start}-{end} (-{step})", int) == list(range(start, end - 1, -step))


@settings(deadline=None, max_examples=80)
@given(start=small, end=small, count=st.integers(1, 12))
def test_count_ranges_match_numpy(start: int, end: int, count: int) -> None:
    spaced = np.linspace(start, end, count)
    assert parse_values(f"{start}-{end} [{count}]", int) == [int(v) for v in spaced.tolist()]
    floats = parse_values(f"{start}-{end} [{count}]", float)
    assert floats == pytest.approx(spaced.tolist(), abs=1e-8)


@settings(deadline=None, max_examples=80)
@given(start=st.integers(-40, 40), length=st.integers(0, 40), step=st.integers(1, 9))
def test_float_steps_match_exact_fractions(start: int, length: int, step: int) -> None:
    """Values on a 0.05 grid: the exact answer is start/20, (start+step)/20, ... <= end."""
    end = start + length
    text = f"{start / 20}-{end / 20} (+{step / 20})"
    exact = [Fraction(k, 20) for k in range(start, end + 1, step)]
    assert parse_values(text, float) == [round(float(v), 8) for v in exact]


items = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=12).map(
    str.strip
)


@settings(deadline=None, max_examples=100)
@given(values=st.lists(items, min_size=1, max_size=6))
def test_csv_round_trip(values: list[str]) -> None:
    if values == [""]:
        return  # an empty line is no row at all
    assert split_csv(join_csv(values)) == values
