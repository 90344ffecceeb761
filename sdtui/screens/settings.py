"""The Settings tab: every setting of the schema, by section, applied to sdtui's own file.

Left: a filter field and the sections (choosing one scrolls to it). Right: a row per setting
(label, control, help), generated from `sdtui.params.settings_schema`: numbers and text are
compact inputs, fixed choices and run-time lists (checkpoints, VAEs, themes, ...) selects,
switches checkboxes. Apply (Ctrl+S) checks every changed value and writes the file only when
all are valid; the backend uses the new values from the next request on. Reload (Ctrl+R)
reads the file again; Section defaults (Alt+D) fills in the defaults of the section in view.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static

from sdtui.keymap import SETTINGS_KEYS, bindings
from sdtui.params.settings_schema import (
    SECTIONS,
    SETTINGS,
    SettingSpec,
    SettingValueError,
    convert,
    in_section,
)
from sdtui.screens.base import TabScreen

UNSET_LABEL = "(unset)"


def control_id(name: str) -> str:
    return f"setting-{name}"


def section_id(section: str) -> str:
    return "section-" + "-".join(section.lower().split())


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def _read(control: Widget) -> Any:
    """A control's value as the user left it (text for inputs; `convert` parses it)."""
    if isinstance(control, Checkbox):
        return control.value
    if isinstance(control, Select):
        return None if control.value is Select.NULL else control.value
    assert isinstance(control, Input)
    return control.value


class SettingRow(Horizontal):
    """Label (its tooltip names the setting's key and default), control, help text."""

    DEFAULT_CSS = """
    SettingRow { height: auto; }
    SettingRow > Label { width: 36; padding: 0 1 0 0; }
    SettingRow > Input, SettingRow > Select { width: 32; }
    SettingRow > Checkbox { width: 32; }
    SettingRow > .help { width: 1fr; color: $text-muted; padding: 0 0 0 1; }
    SettingRow .-invalid { border: none; background: $error 30%; }
    """

    def __init__(self, spec: SettingSpec, control: Widget) -> None:
        super().__init__(classes="setting-row")
        self.spec = spec
        self.control = control

    def compose(self) -> ComposeResult:
        label = Label(self.spec.label)
        label.tooltip = f"{self.spec.name} (default: {self.spec.default!r})"
        yield label
        yield self.control
        yield Static(self.spec.description, classes="help", markup=False)

    def matches(self, text: str) -> bool:
        spec = self.spec
        return text in f"{spec.label} {spec.name} {spec.help} {spec.section}".lower()


class SettingsScreen(TabScreen):
    TAB_ID = "settings"
    BINDINGS: ClassVar = bindings(SETTINGS_KEYS)
    DEFAULT_CSS = """
    #settings-side { width: 26; border-right: solid $panel; padding: 0 1; }
    #settings-side OptionList { height: 1fr; border: none; padding: 0; }
    #settings-filter { margin: 0 0 1 0; }
    #settings-main { width: 1fr; }
    #settings-actions { height: 1; padding: 0 1; }
    #settings-actions Button { margin: 0 1 0 0; min-width: 10; }
    #settings-path { width: 1fr; color: $text-muted; }
    #settings-rows { padding: 0 1; }
    .section { height: auto; margin: 0 0 1 0; }
    .section-title { text-style: bold; color: $accent; margin: 0 0 0 0; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.controls: dict[str, Widget] = {}
        self.options: dict[str, list[str]] = {}  # what each Select offers
        self.current_section = SECTIONS[0]

    @property
    def settings(self) -> Any:
        return self.app.backend.user_settings

    # -- layout ----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="settings-side"):
                yield Input(placeholder="filter (Ctrl+F)", id="settings-filter", compact=True)
                yield OptionList(*SECTIONS, id="settings-sections")
            with Vertical(id="settings-main"):
                with Horizontal(id="settings-actions"):
                    yield Button("Apply", id="apply", variant="primary", compact=True)
                    yield Button("Reload", id="reload", compact=True)
                    yield Button("Section defaults", id="section-defaults", compact=True)
                    yield Static(str(self.settings.path), id="settings-path")
                with VerticalScroll(id="settings-rows"):
                    for section in SECTIONS:
                        with Vertical(classes="section", id=section_id(section)):
                            yield Static(section, classes="section-title")
                            for spec in in_section(section):
                                control = self._make(spec, self.settings[spec.name])
                                self.controls[spec.name] = control
                                yield SettingRow(spec, control)

    def _make(self, spec: SettingSpec, value: Any) -> Widget:
        widget_id = control_id(spec.name)
        if spec.kind is bool:
            return Checkbox("", bool(value), id=widget_id, compact=True)
        if spec.choices is not None:
            options = list(spec.choices) if isinstance(spec.choices, tuple) else []
            if value is not None and value not in options:
                options.insert(0, value)
            self.options[spec.name] = options
            return Select(
                [(option, option) for option in options],
                value=Select.NULL if value is None else value,
                allow_blank=spec.optional,
                prompt=UNSET_LABEL,
                id=widget_id,
                compact=True,
            )
        input_type = {int: "integer", float: "number"}.get(spec.kind, "text")
        return Input(_format(value), type=input_type, id=widget_id, compact=True)

    def on_mount(self) -> None:
        self.app.tab_screens.append(self)
        self._refresh_choices()  # start-up warnings were shown by the app

    def on_backend_event(self, event: object) -> None:
        from sdtui.services.backend import BackendStatus

        if isinstance(event, BackendStatus):
            self._refresh_choices()

    # -- run-time choices ------------------------------------------------------------------

    def _choices(self, source: str) -> list[str] | None:
        """The values of a run-time list, None while unknown (plugins not loaded yet)."""
        backend = self.app.backend
        if source == "themes":
            return sorted(self.app.available_themes)
        if source == "checkpoints":
            return [info.name for info in backend.checkpoints()]
        if source == "vaes":
            from sdtui.models.discovery import vae_choices

            return ["Automatic", "None", *vae_choices(backend.dirs)]
        if backend.host is not None and source in backend.host.registries:
            return list(backend.host.registries[source].names())
        return None

    def _refresh_choices(self) -> None:
        for name, control in self.controls.items():
            source = SETTINGS[name].choices
            if not isinstance(source, str) or not isinstance(control, Select):
                continue
            try:
                listed = self._choices(source)
            except OSError:
                listed = None
            if listed is None:
                continue
            self._set_options(name, listed)

    def _set_options(self, name: str, listed: list[str]) -> None:
        control = self.controls[name]
        assert isinstance(control, Select)
        current = control.value
        if isinstance(current, str) and current not in listed:
            listed.insert(0, current)
        if listed == self.options.get(name):
            return
        self.options[name] = listed
        control.set_options([(option, option) for option in listed])
        if isinstance(current, str):
            control.value = current

    # -- reading and writing the controls ---------------------------------------------------

    def _write(self, name: str, value: Any) -> None:
        control = self.controls[name]
        if isinstance(control, Checkbox):
            control.value = bool(value)
        elif isinstance(control, Select):
            if value is None:
                if SETTINGS[name].optional:
                    control.clear()
                return
            if value not in self.options.get(name, []):
                self._set_options(name, [value, *self.options.get(name, [])])
            control.value = value
        elif isinstance(control, Input):
            control.value = _format(value)

    def fill(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name in self.controls:
                self._write(name, value)

    def pending_changes(self) -> dict[str, Any]:
        """Setting -> the control's value, for every control that differs from the settings
        (values that do not convert count as changes, so Apply reports them)."""
        changes = {}
        for name, control in self.controls.items():
            raw = _read(control)
            try:
                if convert(SETTINGS[name], raw) == self.settings[name]:
                    continue
            except SettingValueError:
                pass
            changes[name] = raw
        return changes

    def _mark_invalid(self, changes: dict[str, Any]) -> None:
        for name, control in self.controls.items():
            invalid = False
            if name in changes:
                try:
                    convert(SETTINGS[name], changes[name])
                except SettingValueError:
                    invalid = True
            control.set_class(invalid, "-invalid")

    # -- actions ---------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "apply": self.action_apply,
            "reload": self.action_reload,
            "section-defaults": self.action_section_defaults,
        }
        action = actions.get(event.button.id or "")
        if action is not None:
            action()

    def action_apply(self) -> None:
        changes = self.pending_changes()
        self._mark_invalid(changes)
        if not changes:
            self.notify("Nothing to apply: no setting was changed.")
            return
        problems = self.settings.update(changes)
        if problems:
            self.notify(
                "\n".join(problems), title="Settings not saved", severity="error", timeout=10
            )
            return
        self.app.backend.apply_settings(self.settings)
        theme = changes.get("theme")
        if theme and theme in self.app.available_themes:
            self.app.theme = theme
        labels = ", ".join(SETTINGS[name].label for name in changes)
        later = [SETTINGS[name].label for name in changes if SETTINGS[name].restart]
        text = f"{labels}" + (f"\nAt the next start: {', '.join(later)}" if later else "")
        self.notify(text, title=f"Settings saved ({len(changes)} changed)")

    def action_reload(self) -> None:
        self.settings.reload()
        self.fill(self.settings.values)
        self._mark_invalid({})
        self.app.backend.apply_settings(self.settings)
        for warning in self.settings.warnings:
            self.notify(warning, title="Settings", severity="warning", timeout=10)
        self.notify(f"Read {self.settings.path}", title="Settings reloaded")

    def action_section_defaults(self) -> None:
        section = self.current_section
        self.fill({spec.name: spec.default for spec in in_section(section)})
        self.notify(f"Defaults filled in for {section}: Apply (Ctrl+S) saves them.")

    def action_focus_filter(self) -> None:
        self.query_one("#settings-filter", Input).focus()

    def palette_commands(self) -> Any:
        from textual.app import SystemCommand

        yield SystemCommand(
            "Apply settings", "Save the changed settings (Ctrl+S)", self.action_apply
        )
        yield SystemCommand("Reload settings", "Read the settings file again", self.action_reload)
        yield SystemCommand(
            "Section defaults",
            "Fill in the defaults of the section in view (Alt+D)",
            self.action_section_defaults,
        )

    # -- navigation and filter -------------------------------------------------------------

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        section = SECTIONS[event.option_index]
        self.current_section = section
        rows = self.query_one("#settings-rows", VerticalScroll)
        rows.scroll_to_widget(self.query_one(f"#{section_id(section)}"), top=True, animate=False)

    def on_descendant_focus(self, event: Any) -> None:
        for node in event.widget.ancestors_with_self:
            if isinstance(node, SettingRow):
                self.current_section = node.spec.section
                return

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "settings-filter":
            self.filter(event.value)

    def filter(self, text: str) -> None:
        """Show only the settings whose label, key or help contains `text`."""
        text = text.strip().lower()
        for section in SECTIONS:
            container = self.query_one(f"#{section_id(section)}")
            shown = 0
            for row in container.query(SettingRow):
                row.display = row.matches(text)
                shown += row.display
            container.display = shown > 0
