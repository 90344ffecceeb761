"""A1111's prompt syntax: comments, AND, prompt editing, alternation, emphasis, BREAK.

The stages, in the order the engine applies them:

1. `strip_comments`: `#` to the end of the line is dropped.
2. `split_and`: composable diffusion, `a AND b :1.2` -> [("a", 1.0), ("b", 1.2)].
3. `prompt_schedule`: prompt editing `[from:to:when]`, `[to:when]`, `[from::when]`
   (`when` with a decimal point is a fraction of the steps, without one an absolute step;
   hires passes offset both as A1111 >= 1.6 does) and alternation `[a|b]` (one option per
   step) give the text in effect at each step.
4. `parse_attention`: emphasis `(a)` x1.1, `[a]` /1.1, `(a:1.3)`, escapes `\\(`, implicit
   closing of unbalanced brackets, and `BREAK`, as (text, weight) runs.

Parsing never raises: text that does not form valid syntax is taken literally, as in A1111.
Where A1111 itself would crash (a weight such as `(a:1.2.3)`), the text is kept literally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMMENT_LINE = re.compile("(^|\n)#[^\n]*(\n|$)")
COMMENT_TAIL = re.compile("#[^\n]*(\n|$)")
AND = re.compile(r"\bAND\b")
TRAILING_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")
NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*$")
BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
ATTENTION_TOKEN = re.compile(
    r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:"
)
ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
BREAK_WEIGHT = -1.0


def strip_comments(text: str) -> str:
    text = COMMENT_LINE.sub("\n", text)
    return COMMENT_TAIL.sub("\n", text)


def split_and(prompt: str) -> list[tuple[str, float]]:
    """Sub-prompts of a composable-diffusion prompt with their weights."""
    parts = []
    for subprompt in AND.split(prompt):
        match = TRAILING_WEIGHT.search(subprompt)
        if match is None:  # pragma: no cover - the pattern matches any string
            parts.append((subprompt, 1.0))
            continue
        text, weight = match.groups()
        parts.append((text, float(weight) if weight is not None else 1.0))
    return parts


# -- prompt editing and alternation ----------------------------------------------------------


class _Fail(Exception):
    """This stretch of text is not valid syntax here."""


@dataclass
class _Scheduled:
    before: list[object]
    after: list[object]
    when: str
    step: int = 0  # resolved by _collect_steps


@dataclass
class _Alternate:
    options: list[list[object]]


class _Parser:
    """Recursive descent over A1111's prompt-editing grammar."""

    def __init__(self, text: str) -> None:
        self.text = text

    def start(self) -> list[object]:
        nodes: list[object] = []
        i = 0
        while i < len(self.text):
            part, i = self.prompt(i)
            nodes += part
            if i < len(self.text):
                if self.text[i] not in "[]():":
                    raise _Fail  # a stray "|" or a lone trailing backslash: not a prompt
                nodes.append(self.text[i])
                i += 1
        return nodes

    def prompt(self, i: int) -> tuple[list[object], int]:
        nodes: list[object] = []
        text = self.text
        while i < len(text):
            char = text[i]
            if char == "\\":
                if i + 1 >= len(text):
                    break
                nodes.append(text[i : i + 2])
                i += 2
            elif char in "([":
                try:
                    node, i = (self.round if char == "(" else self.square)(i)
                except _Fail:
                    break
                nodes += node
            elif char in ":|)]":
                break
            else:
                nodes.append(char)
                i += 1
        return nodes, i

    def round(self, i: int) -> tuple[list[object], int]:
        inner, j = self.prompt(i + 1)
        nodes: list[object] = ["(", *inner]
        if j < len(self.text) and self.text[j] == ":":
            weight, j = self.prompt(j + 1)
            nodes += [":", *weight]
        if j >= len(self.text) or self.text[j] != ")":
            raise _Fail
        return [*nodes, ")"], j + 1

    def square(self, i: int) -> tuple[list[object], int]:
        parts: list[list[object]] = []
        separators: list[str] = []
        j = i + 1
        while True:
            part, j = self.prompt(j)
            parts.append(part)
            if j >= len(self.text) or self.text[j] not in ":|]":
                raise _Fail
            if self.text[j] == "]":
                return self._classify(parts, separators), j + 1
            separators.append(self.text[j])
            j += 1

    @staticmethod
    def _classify(parts: list[list[object]], separators: list[str]) -> list[object]:
        if not separators:
            return ["[", *parts[0], "]"]
        if set(separators) == {"|"}:
            return [_Alternate(parts)]
        when = _literal(parts[-1])
        number = NUMBER.match(when) if when is not None else None
        if set(separators) == {":"} and len(parts) in (2, 3) and number:
            before = parts[0] if len(parts) == 3 else []
            return [_Scheduled(before, parts[-2], number.group(1))]
        raise _Fail


def _literal(nodes: list[object]) -> str | None:
    return "".join(nodes) if all(isinstance(n, str) for n in nodes) else None  # type: ignore[arg-type]


def _walk(nodes: list[object]):
    for node in nodes:
        yield node
        if isinstance(node, _Scheduled):
            yield from _walk(node.before)
            yield from _walk(node.after)
        elif isinstance(node, _Alternate):
            for option in node.options:
                yield from _walk(option)


def _collect_steps(
    tree: list[object], steps: int, int_offset: int, float_offset: float, old: bool
) -> list[int]:
    found = {steps}
    for node in _walk(tree):
        if isinstance(node, _Scheduled):
            value = float(node.when)
            if old:
                value = value * steps if value < 1 else value
            elif "." in node.when:
                value = (value - float_offset) * steps
            else:
                value = value - int_offset
            node.step = min(steps, int(value))
            if node.step >= 1:
                found.add(node.step)
        elif isinstance(node, _Alternate):
            found.update(range(1, steps + 1))
    return sorted(found)


def _render(nodes: list[object], step: int) -> str:
    out = []
    for node in nodes:
        if isinstance(node, _Scheduled):
            out.append(_render(node.before if step <= node.step else node.after, step))
        elif isinstance(node, _Alternate):
            out.append(_render(node.options[(step - 1) % len(node.options)], step))
        else:
            out.append(node)  # type: ignore[arg-type]
    return "".join(out)


def prompt_schedule(
    prompt: str, steps: int, hires_steps: int | None = None, old_scheduling: bool = False
) -> list[tuple[int, str]]:
    """[(last step, text in effect up to it), ...] for a prompt over `steps` steps.

    For a hires pass give the first pass's `steps` and the hires pass's `hires_steps`:
    absolute steps then count on from the first pass and fractions above 1 reach into
    the hires pass, as in A1111's new timeline.
    """
    if hires_steps is None or old_scheduling:
        int_offset, float_offset, total = 0, 0.0, steps
    else:
        int_offset, float_offset, total = steps, 1.0, hires_steps
    try:
        tree = _Parser(prompt).start()
    except (_Fail, RecursionError):
        return [(total, prompt)]
    at = _collect_steps(tree, total, int_offset, float_offset, old_scheduling)
    return [(step, _render(tree, step)) for step in at]


# -- emphasis --------------------------------------------------------------------------------


def parse_attention(text: str) -> list[tuple[str, float]]:
    """(text, weight) runs; a BREAK is ("BREAK", -1)."""
    runs: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for run in runs[start:]:
            run[1] *= factor

    for match in ATTENTION_TOKEN.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            runs.append([token[1:], 1.0])
        elif token == "(":
            round_open.append(len(runs))
        elif token == "[":
            square_open.append(len(runs))
        elif weight is not None and round_open and _is_float(weight):
            multiply(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            multiply(round_open.pop(), ROUND_MULTIPLIER)
        elif token == "]" and square_open:
            multiply(square_open.pop(), SQUARE_MULTIPLIER)
        else:
            for index, part in enumerate(BREAK.split(token)):
                if index:
                    runs.append(["BREAK", BREAK_WEIGHT])
                runs.append([part, 1.0])
    for start in round_open:
        multiply(start, ROUND_MULTIPLIER)
    for start in square_open:
        multiply(start, SQUARE_MULTIPLIER)
    return _merge(runs) if runs else [("", 1.0)]


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _merge(runs: list[list]) -> list[tuple[str, float]]:
    merged: list[list] = [runs[0]]
    for text, weight in runs[1:]:
        if merged[-1][1] == weight:
            merged[-1][0] += text
        else:
            merged.append([text, weight])
    return [(text, weight) for text, weight in merged]
