"""Ctrl+Up / Ctrl+Down prompt weight editing, as A1111's `javascript/edit-attention.js`.

    adjust_weight("a cat", 3, 3, +1)          # ("a (cat:1.1)", 3, 6): "cat" stays selected
    adjust_weight("a (cat:1.1)", 3, 6, -1)    # ("a cat", 2, 5): weight 1 drops the brackets

Rules (A1111 1.7+ `keyupEditAttention`, offsets are str indices, `start <= end`):

* With no selection, select the innermost block around the caret, trying `<...>`, then
  `(...)`, then `[...]`: the caret's nearest opening bracket before it and closing bracket
  after it, with no other bracket of that kind in between. The selection is the block's
  text up to its last `:` when the block contains `:` followed by a number (`-`, digits,
  `.`), else the whole inner text. Failing that, select the word under the caret, bounded
  by the delimiters, then drop spaces at either end.
* After `<`: an extra network; its weight (text after the selection's `:` up to `>`)
  changes by `precision_extra`.
* Inside old-style emphasis (`(cat)`, `((cat))`, `[cat]`: the selection sits between a
  matching bracket pair): the brackets become `(cat:w)` with w = 1.1^n or 1.1^-n rounded
  to a multiple of `precision_attention`, then w changes.
* Inside `(`: the weight after the selection changes. Otherwise the selection (trailing
  spaces dropped) is wrapped as `(text:1.0)` and that weight changes.
* New weights are rounded as JavaScript's `toPrecision(12)`, whole numbers get `.0`; a
  `( )` block that reaches weight 1 loses its brackets and weight.
* Whenever A1111 gives up (no `:` after the selection, no number, empty word) the text is
  unchanged; the selection is what A1111 leaves selected (the block or word it found).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal

KEYEDIT_DELIMITERS = ".,\\/!?%^*;:{}=`~() "
"""A1111's default `keyedit_delimiters` setting."""
KEYEDIT_WHITESPACE = "\t\r\n"
"""A1111's default `keyedit_delimiters_whitespace` (Tab, Carriage Return, Line Feed)."""
DEFAULT_DELIMITERS = KEYEDIT_DELIMITERS + KEYEDIT_WHITESPACE
PRECISION_ATTENTION = 0.1
PRECISION_EXTRA = 0.05
EMPHASIS_FACTOR = 1.1

_WEIGHTED = re.compile(r":-?[0-9.]")
# JavaScript's StrWhiteSpaceChar (WhiteSpace and LineTerminator), skipped by parseFloat.
_JS_SPACE = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
_JS_SPACE += "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_JS_FLOAT = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


def js_parse_float(text: str) -> float:
    """JavaScript `parseFloat`: the longest number at the start (after spaces), else NaN."""
    match = _JS_FLOAT.match(text.lstrip(_JS_SPACE))
    return float(match.group()) if match else math.nan


def js_to_precision_12(x: float) -> float:
    """`parseFloat(x.toPrecision(12))`: 12 significant digits, ties away from zero."""
    if not math.isfinite(x) or x == 0:
        return x
    exact = Decimal(x)
    quantum = Decimal(1).scaleb(exact.adjusted() - 11)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


def js_number_string(x: float) -> str:
    """JavaScript `String(x)` for a number (shortest round-trip digits, JS layout)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_number_string(-x)
    _, digit_tuple, exponent = Decimal(repr(x)).as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent = int(exponent) + len(digits) - len(stripped)
    digits, k = stripped, len(stripped)
    n = k + exponent  # x = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    power = f"e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return (digits if k == 1 else f"{digits[0]}.{digits[1:]}") + power


def js_math_round(x: float) -> float:
    """JavaScript `Math.round`: nearest integer, ties towards +infinity."""
    if not math.isfinite(x):
        return x
    floor = math.floor(x)
    return float(floor + 1 if x - floor >= 0.5 else floor)


def _char(text: str, index: int) -> str:
    """`text[index]` as JavaScript reads it: "" outside the string (JS: undefined)."""
    return text[index] if 0 <= index < len(text) else ""


def select_block(text: str, caret: int, opening: str, closing: str) -> tuple[int, int] | None:
    """The selection A1111 makes inside the `opening ... closing` block around the caret."""
    before, after = text[:caret], text[caret:]
    open_at = before.rfind(opening)
    if open_at == -1 or before.rfind(closing) > open_at:
        return None
    close_offset = after.find(closing)
    if close_offset == -1:
        return None
    next_open = after.find(opening)
    if next_open != -1 and next_open < close_offset:
        return None
    content = text[open_at + 1 : caret + close_offset]
    start = open_at + 1
    if _WEIGHTED.search(content):
        return start, start + content.rfind(":")
    return start, start + len(content)


def select_word(text: str, caret: int, delimiters: str) -> tuple[int, int]:
    """The word around the caret, bounded by delimiters, without spaces at either end."""
    start = end = caret
    while start > 0 and text[start - 1] not in delimiters:
        start -= 1
    while end < len(text) and text[end] not in delimiters:
        end += 1
    while start < end and text[start] == " ":
        start += 1
    while end > start and text[end - 1] == " ":
        end -= 1
    return start, end


def _format_weight(weight: float) -> str:
    text = js_number_string(weight)
    return text + ".0" if math.isfinite(weight) and weight == int(weight) else text


def adjust_weight(
    text: str,
    start: int,
    end: int,
    direction: int,
    *,
    precision_attention: float = PRECISION_ATTENTION,
    precision_extra: float = PRECISION_EXTRA,
    delimiters: str = DEFAULT_DELIMITERS,
) -> tuple[str, int, int]:
    """Raise (`direction` > 0) or lower the weight at the selection `start:end`.

    Returns the new text and the new selection (start <= end, both within the new text).
    `direction` 0 changes nothing.
    """
    start, end = sorted((min(max(start, 0), len(text)), min(max(end, 0), len(text))))
    if direction == 0:
        return text, start, end
    if start == end:
        block = None
        for opening, closing in ("<>", "()", "[]"):
            block = select_block(text, start, opening, closing)
            if block is not None:
                break
        start, end = block or select_word(text, start, delimiters)
    closing, delta = ")", precision_attention
    before, after = _char(text, start - 1), _char(text, end)
    if before == "<":
        closing, delta = ">", precision_extra
    elif (before, after) in (("(", ")"), ("[", "]")):
        text, start, end = _convert_old_emphasis(text, start, end, precision_attention)
    elif before != "(":
        trimmed = end
        while trimmed > start and text[trimmed - 1] == " ":
            trimmed -= 1
        if start == trimmed:
            return text, start, end
        text = f"{text[:start]}({text[start:trimmed]}:1.0){text[trimmed:]}"
        start, end = start + 1, trimmed + 1
    if _char(text, end) != ":":
        return text, start, end
    weight_length = text[end + 1 :].find(closing) + 1
    weight = js_parse_float(text[end + 1 : end + weight_length])
    if math.isnan(weight):
        return text, start, end
    weight = js_to_precision_12(weight + (delta if direction > 0 else -delta))
    if closing == ")" and weight == 1:
        close_at = end + text[end:].find(")")
        return f"{text[: start - 1]}{text[start:end]}{text[close_at + 1 :]}", start - 1, end - 1
    text = text[: end + 1] + _format_weight(weight) + text[end + weight_length :]
    return text, start, end


def _convert_old_emphasis(
    text: str, start: int, end: int, precision: float
) -> tuple[str, int, int]:
    """`((cat))` -> `(cat:1.2…)`: the nested brackets around the selection become a weight."""
    opening, closing = text[start - 1], text[end]
    count = 0
    while _char(text, start - count - 1) == opening and _char(text, end + count) == closing:
        count += 1
    weight = EMPHASIS_FACTOR**count if opening == "(" else (1 / EMPHASIS_FACTOR) ** count
    weight = js_math_round(weight / precision) * precision
    inner = text[start:end]
    text = f"{text[: start - count]}({inner}:{js_number_string(weight)}){text[end + count :]}"
    return text, start - count + 1, end - count + 1
