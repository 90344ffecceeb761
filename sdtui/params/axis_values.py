"""A1111's X/Y/Z plot value syntax: comma lists (CSV quoting) and number ranges.

    parse_values('a, "b, c", d', str)        -> ["a", "b, c", "d"]
    parse_values("1-5", int)                 -> [1, 2, 3, 4, 5]
    parse_values("1-10 (+3)", int)           -> [1, 4, 7, 10]      step
    parse_values("1-10 [4]", int)            -> [1, 4, 7, 10]      count (evenly spaced)
    parse_values("0-1 (+0.25), 2", float)    -> [0.0, 0.25, 0.5, 0.75, 1.0, 2.0]
    parse_values("1-2 [3]", float)           -> [1.0, 1.5, 2.0]

As A1111's `xyz_grid.py`: items are split like a CSV row (double quotes keep commas, spaces
after a comma are skipped, every item is stripped, several lines are one list); numeric axes
drop empty items and expand each range in place; a count range takes evenly spaced values
(numpy's linspace arithmetic) and, for whole numbers, truncates them toward zero. Where
A1111 misbehaves sdtui does what the syntax says: a descending range without a step counts
down (`5-1` is 5..1, A1111 gives nothing), a negative step reaches the end (`5-1 (-1)`,
A1111 stops at 3), a float range never passes its end (`1-2 (+0.3)`, A1111 adds 2.2), a
step needs no sign (`1-10 (2)`), and floats are rounded to 8 decimals (A1111's label
rounding), so 0.1 steps give 0.3, not 0.30000000000000004.
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any

WHOLE = r"[+-]?\s*\d+"
DECIMAL = r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)"
DIGITS = 8  # floats are rounded to this many decimals


class AxisValueError(ValueError):
    """A value of an axis that is not of its type, or a range that cannot be expanded."""


def _range_pattern(number: str) -> re.Pattern[str]:
    return re.compile(
        rf"\s*(?P<start>{number})\s*-\s*(?P<end>{number})\s*"
        rf"(?:\(\s*(?P<step>{number})\s*\)|\[\s*(?P<count>\d+)\s*\])?\s*"
    )


INT_RANGE = _range_pattern(WHOLE)
FLOAT_RANGE = _range_pattern(DECIMAL)


def split_csv(text: str) -> list[str]:
    """A1111's `csv_string_to_list_strip`: CSV items of every line, each stripped."""
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    return [item.strip() for row in rows for item in row]


def join_csv(values: list[str]) -> str:
    """The inverse of `split_csv` for one line (A1111's `list_to_csv_string`)."""
    with io.StringIO() as out:
        csv.writer(out).writerow(values)
        return out.getvalue().strip()


def linspace(start: float, end: float, count: int) -> list[float]:
    """numpy.linspace(start, end, count) with numpy's arithmetic: start + i * step, the last
    value exactly `end`."""
    if count <= 0:
        return []
    if count == 1:
        return [float(start)]
    step = (end - start) / (count - 1)
    values = [i * step + start for i in range(count)]
    values[-1] = float(end)
    return values


def _number(text: str, kind: type) -> Any:
    return kind(re.sub(r"\s+", "", text))


def _stepped(start: float, end: float, step: float | None, kind: type, item: str) -> list[Any]:
    if step is None:
        step = 1 if end >= start else -1
    if step == 0:
        raise AxisValueError(f"{item!r}: the step of a range cannot be 0")
    if (end - start) * step < 0:
        raise AxisValueError(f"{item!r}: a step of {step:g} never gets from {start:g} to {end:g}")
    if kind is int:
        return list(range(int(start), int(end) + (1 if step > 0 else -1), int(step)))
    count = math.floor((end - start) / step + 1e-9) + 1
    return [round(start + i * step, DIGITS) for i in range(count)]


def expand_range(item: str, kind: type) -> list[Any] | None:
    """The values of one range item (`1-5`, `1-10 (+2)`, `1-10 [5]`), or None if `item` is
    not a range. `kind`: int or float."""
    match = (INT_RANGE if kind is int else FLOAT_RANGE).fullmatch(item)
    if match is None:
        return None
    start, end = _number(match["start"], kind), _number(match["end"], kind)
    if match["count"] is not None:
        count = int(match["count"])
        if count < 1:
            raise AxisValueError(f"{item!r}: a range needs a count of at least 1")
        spaced = linspace(start, end, count)
        return [int(v) for v in spaced] if kind is int else [round(v, DIGITS) for v in spaced]
    step = _number(match["step"], kind) if match["step"] is not None else None
    return _stepped(start, end, step, kind, item)


def convert(item: str, kind: type) -> Any:
    """One plain item as `kind` (int, float or str); AxisValueError says what was expected."""
    if kind is str:
        return item
    try:
        value = _number(item, kind)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise AxisValueError(
            f"{item!r} is not {what} or a range (1-5, 1-10 (+2), 1-10 [5])"
        ) from None
    if kind is float:
        if not math.isfinite(value):
            raise AxisValueError(f"{item!r} is not a finite number")
        return round(value, DIGITS)
    return value


def parse_values(text: str, kind: type) -> list[Any]:
    """Every value `text` lists, in order, as `kind` (int, float or str)."""
    items = split_csv(text)
    if kind is str:
        return items
    values: list[Any] = []
    for item in items:
        if not item:
            continue
        expanded = expand_range(item, kind)
        values.extend(expanded if expanded is not None else [convert(item, kind)])
    return values
