"""The options a generation script declares, and how `--script-arg key=value` becomes them.

    class Loopback:
        name = "Loopback"
        modes = ("img2img",)
        options = (
            ScriptOption("loops", "Loops", int, 4, minimum=1, maximum=32),
            ScriptOption("curve", "Denoising strength curve", str, "Linear",
                         choices=("Aggressive", "Linear", "Lazy")),
        )

    values = resolve_options(script, parse_script_args(script, ["loops=8"]))
    # {"loops": 8, "curve": "Linear"}

An option is found by its name or its label (A1111's UI label) ignoring case, spaces and
punctuation: `x_type`, `X type` and `xtype` are the same option. Values given as strings are
converted to the option's type (booleans: true/false, yes/no, on/off, 1/0) and checked
against its range and choices (a choice is matched ignoring case and comes back spelled as
declared). Enough for the CLI now and for a form later (label, help, choices, range).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MODES = ("txt2img", "img2img")
TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


class ScriptError(ValueError):
    """A script, option or option value that does not fit the request (exit code 2)."""


@dataclass(frozen=True)
class ScriptOption:
    name: str  # the key: `--script-arg name=value`
    label: str  # A1111's label; also accepted as the key
    type: type = str  # str, int, float or bool
    default: Any = None
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""
    multiline: bool = False  # a text area in a form (prompt lists)

    def parse(self, value: Any) -> Any:
        """`value` (a string, or already of the type) as this option's checked value."""
        value = self._typed(value)
        if self.type in (int, float):
            low, high = self.minimum, self.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                raise ScriptError(f"{self.label} must be between {low:g} and {high:g}, got {value}")
        if self.choices is not None:
            folded = {choice.casefold(): choice for choice in self.choices}
            if str(value).casefold() not in folded:
                raise ScriptError(
                    f"{self.label} {value!r} is not one of: {', '.join(self.choices)}"
                )
            value = folded[str(value).casefold()]
        return value

    def _typed(self, value: Any) -> Any:
        kind = self.type
        if not isinstance(value, str):
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                return value
            raise ScriptError(f"{self.label} must be a {kind.__name__}, got {value!r}")
        if kind is str:
            return value
        if kind is bool:
            word = value.strip().casefold()
            if word in TRUE or word in FALSE:
                return word in TRUE
            raise ScriptError(f"{self.label} must be true or false, got {value!r}")
        try:
            number = kind(value.strip())
        except ValueError:
            number = None
        if number is None or number != number or number in (float("inf"), float("-inf")):
            what = "a whole number" if kind is int else "a number"
            raise ScriptError(f"{self.label} must be {what}, got {value!r}")
        return number

    def describe(self) -> str:
        """One line for `--help-script`."""
        if self.choices is not None:
            what = "one of: " + ", ".join(self.choices)
        elif self.type is bool:
            what = "true or false"
        elif self.type in (int, float) and self.minimum is not None and self.maximum is not None:
            what = f"{self.type.__name__} {self.minimum:g}..{self.maximum:g}"
        else:
            what = "text" if self.type is str else self.type.__name__
        default = f"; default: {self.default!r}" if self.default not in (None, "") else ""
        help_text = f" {self.help}" if self.help else ""
        return f"{self.name} ({self.label}): {what}{default}.{help_text}"


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


def script_options(script: Any) -> tuple[ScriptOption, ...]:
    return tuple(getattr(script, "options", ()) or ())


def script_modes(script: Any) -> tuple[str, ...]:
    """The tabs a script works in (A1111's `show`); both unless it says otherwise."""
    return tuple(getattr(script, "modes", MODES) or MODES)


def find_option(script: Any, key: str) -> ScriptOption:
    wanted = _key(key)
    for option in script_options(script):
        if wanted in (_key(option.name), _key(option.label)):
            return option
    known = ", ".join(option.name for option in script_options(script)) or "none"
    raise ScriptError(f"{script.name} has no option {key!r}; its options: {known}")


def parse_script_args(script: Any, pairs: Sequence[str]) -> dict[str, str]:
    """`["x_type=Steps", "X values=1-3"]` -> {"x_type": "Steps", "x_values": "1-3"}
    (option names, values still strings); unknown keys are errors."""
    given: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ScriptError(f"--script-arg needs KEY=VALUE, got {pair!r}")
        given[find_option(script, key.strip()).name] = value
    return given


def resolve_options(script: Any, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every option of the script: the given values (by name or label) parsed and checked,
    the others at their defaults."""
    values = {option.name: option.default for option in script_options(script)}
    for key, value in (given or {}).items():
        option = find_option(script, key)
        try:
            values[option.name] = option.parse(value)
        except ScriptError as error:
            raise ScriptError(f"{script.name}: {error}") from None
    return values


def describe_script(script: Any) -> str:
    """What `--help-script` prints: the script, its modes and its options."""
    lines = [f"{script.name} ({', '.join(script_modes(script))})"]
    doc = (type(script).__doc__ or "").strip()
    if doc:
        lines += ["", *("  " + line.strip() for line in doc.splitlines())]
    options = script_options(script)
    lines += ["", "options (--script-arg NAME=VALUE):" if options else "no options"]
    lines += [f"  {option.describe()}" for option in options]
    return "\n".join(lines)
