"""Form controls generated from the parameter schema (label, range, choices, help text).

    form = ParamForm(["sampler", "schedule", "steps"], GenerationParams())
    form.values()            # {"sampler": "DPM++ 2M", ...}; FormError lists bad entries
    form.set_values(params)  # fill from parameters (e.g. a pasted infotext)
    form.set_choices({"sampler": [...]})

Numbers are compact inputs that accept only numbers; fields whose value comes from settings
when unset (clip skip, eta, ...) show "from settings" while empty. Choices are selects;
booleans checkboxes. Ranges and multiples of 8 are checked by `sdtui.params.validate` when
generating, so every entry point reports the same messages.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select

from sdtui.params import schema
from sdtui.params.schema import GenerationParams, Spec, spec

UNSET_LABEL = "(unset)"


class FormError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# both read the schema's type hints (about a millisecond each time): once per field is enough
value_type = functools.cache(schema.value_type)
is_optional = functools.cache(schema.is_optional)


def control_id(name: str) -> str:
    return f"param-{name.replace('_', '-')}"


def _options(values: Iterable[str]) -> list[tuple[str, str]]:
    return [(value, value) for value in values]


def _placeholder(field_spec: Spec) -> str:
    if field_spec.setting:
        return "from settings"
    return "same as first pass" if field_spec.section == "hires" else ""


class ParamRow(Horizontal):
    """One labelled control; the label's tooltip is the schema's help text (or `label` and
    `help_text` given, for controls that are not the schema's: a script's options)."""

    DEFAULT_CSS = """
    ParamRow { height: auto; margin: 0 0 0 0; }
    ParamRow > Label { width: 20; padding: 0 1 0 0; color: $text-muted; }
    ParamRow > Input, ParamRow > Select { width: 1fr; }
    """

    def __init__(
        self,
        name: str,
        control: Widget,
        *,
        label: str | None = None,
        help_text: str = "",
        schema: type = GenerationParams,
    ) -> None:
        super().__init__(classes="param-row")
        self.param_name = name
        self.schema = schema
        self.control = control
        self.label_text = label
        self.help_text = help_text

    def compose(self) -> ComposeResult:
        if self.label_text is None:
            field_spec = spec(self.param_name, self.schema)
            label = Label(field_spec.label)
            label.tooltip = field_spec.help
        else:
            label = Label(self.label_text)
            label.tooltip = self.help_text or None
        yield label
        yield self.control


class ParamForm(Vertical):
    DEFAULT_CSS = """
    ParamForm { height: auto; }
    ParamForm Checkbox { width: 1fr; }
    """

    def __init__(self, names: list[str], params: Any, *, id: str | None = None) -> None:
        """Controls for the fields `names` of `params`' schema (GenerationParams, or another
        dataclass declared with `schema.param`), showing `params`' values."""
        super().__init__(id=id)
        self.schema = type(params)
        self.names = names
        self._initial = params
        self.options: dict[str, list[str]] = {}
        self.controls: dict[str, Widget] = {name: self._make(name, params) for name in names}

    def compose(self) -> ComposeResult:
        for name, control in self.controls.items():
            if isinstance(control, Checkbox):
                yield control
            else:
                yield ParamRow(name, control, schema=self.schema)

    def _make(self, name: str, params: Any) -> Widget:
        field_spec, kind = spec(name, self.schema), value_type(name, self.schema)
        value = getattr(params, name)
        widget_id = control_id(name)
        if kind is bool:
            checkbox = Checkbox(field_spec.label, bool(value), id=widget_id, compact=True)
            checkbox.tooltip = field_spec.help
            return checkbox
        if field_spec.choices is not None and kind is str:
            fixed = field_spec.choices if isinstance(field_spec.choices, tuple) else ()
            options = list(fixed) or ([value] if value else [])
            self.options[name] = options
            return Select(
                _options(options),
                value=value if value else Select.NULL,
                allow_blank=is_optional(name, self.schema),
                prompt=_placeholder(field_spec) or UNSET_LABEL,
                id=widget_id,
                compact=True,
            )
        input_type = {int: "integer", float: "number"}.get(kind, "text")
        return Input(
            "" if value is None else _format(value),
            placeholder=_placeholder(field_spec),
            type=input_type,
            id=widget_id,
            compact=True,
        )

    # -- reading and writing ---------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        values, problems = {}, []
        for name, control in self.controls.items():
            try:
                values[name] = _read(name, control, self.schema)
            except ValueError as error:
                problems.append(str(error))
        if problems:
            raise FormError(problems)
        return values

    def set_values(self, values: Any) -> None:
        """From a GenerationParams or a mapping; fields not given keep their value."""
        for name, control in self.controls.items():
            if isinstance(values, Mapping):
                if name not in values:
                    continue
                value = values[name]
            elif hasattr(values, name):
                value = getattr(values, name)
            else:
                continue
            self._write(name, control, value)

    def set_choices(self, choices: Mapping[str, Iterable[str]]) -> None:
        for name, options in choices.items():
            control = self.controls.get(name)
            if not isinstance(control, Select):
                continue
            current = control.value
            listed = list(options)
            if isinstance(current, str) and current not in listed:
                listed.insert(0, current)
            self.options[name] = listed
            _set_options(control, listed)
            if isinstance(current, str):
                control.value = current

    def _write(self, name: str, control: Widget, value: Any) -> None:
        if isinstance(control, Checkbox):
            control.value = bool(value)
        elif isinstance(control, Select):
            if value in (None, ""):
                if is_optional(name, self.schema):
                    control.clear()
                return
            listed = self.options.setdefault(name, [])
            if value not in listed:
                listed.insert(0, value)
                _set_options(control, listed)
            control.value = value
        elif isinstance(control, Input):
            control.value = "" if value is None else _format(value)


def read_forms(forms: Iterable[ParamForm]) -> dict[str, Any]:
    """The values of several forms together; one FormError lists every bad entry."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for form in forms:
        try:
            values.update(form.values())
        except FormError as error:
            problems += error.problems
    if problems:
        raise FormError(problems)
    return values


def _set_options(control: Select, values: list[str]) -> None:
    if control.is_mounted:
        control.set_options(_options(values))
    else:  # a form mounted lazily (a collapsed group): the select lists these when mounted
        control._setup_variables_for_options(_options(values))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _read(name: str, control: Widget, schema_class: type) -> Any:
    field_spec, kind = spec(name, schema_class), value_type(name, schema_class)
    if isinstance(control, Checkbox):
        return control.value
    if isinstance(control, Select):
        return None if control.value is Select.NULL else control.value
    assert isinstance(control, Input)
    text = control.value.strip()
    if not text:
        if is_optional(name, schema_class):
            return None
        if kind is str:
            return ""
        raise ValueError(f"{field_spec.label} needs a value")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{field_spec.label} must be a whole number, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{field_spec.label} must be a number, got {text!r}") from None
    return control.value
