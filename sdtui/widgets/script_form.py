"""A1111's Script dropdown in a generation form: "None" or a registered script, and the
chosen script's options as controls.

    panel = ScriptPanel("txt2img", id="script-panel")
    panel.set_scripts(scripts_for(host, "txt2img"))   # what the plugins registered
    panel.script                                      # the chosen script, or None
    panel.values()        # its option values, parsed and checked (ScriptError names the option)
    panel.job_inputs(params, random_seed, host, dirs)  # {script, script_args, random_seed}

The controls come from the script's `ScriptOption`s (`sdtui.services.script_options`) like
the schema's (`sdtui.widgets.param_form`): booleans are checkboxes, choices selects,
multiline texts text areas, the rest inputs; the label's tooltip is the option's help. They
are built only when a script is chosen. Switching to another script and back keeps what was
typed for each one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Checkbox, Collapsible, Input, Select, TextArea

from sdtui.services.script_options import ScriptOption, resolve_options, script_modes
from sdtui.widgets.param_form import ParamRow

NONE = "None"
TITLE = "Script"


def scripts_for(host: Any, mode: str) -> list[Any]:
    """The registered scripts that work in `mode` ("txt2img" or "img2img"), in order."""
    if host is None:
        return []
    return [script for script in host.scripts if mode in script_modes(script)]


def option_id(name: str) -> str:
    return f"script-opt-{name.replace('_', '-')}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def make_control(option: ScriptOption, value: Any) -> Widget:
    """The control for one option, showing `value` (its default or what was typed)."""
    widget_id = option_id(option.name)
    if option.type is bool:
        checkbox = Checkbox(option.label, bool(value), id=widget_id, compact=True)
        checkbox.tooltip = option.help or None
        return checkbox
    if option.choices is not None:
        chosen = next((c for c in option.choices if c.casefold() == _text(value).casefold()), None)
        return Select(
            [(choice, choice) for choice in option.choices],
            value=chosen if chosen is not None else Select.NULL,
            allow_blank=chosen is None,
            id=widget_id,
            compact=True,
        )
    if option.multiline:
        area = TextArea(_text(value), id=widget_id, compact=True, soft_wrap=True)
        area.tooltip = option.help or None
        return area
    kind = {int: "integer", float: "number"}.get(option.type, "text")
    return Input(_text(value), type=kind, id=widget_id, compact=True)


def read_control(control: Widget) -> Any:
    """What a control holds, as `resolve_options` takes it (strings are parsed there)."""
    if isinstance(control, Checkbox):
        return control.value
    if isinstance(control, Select):
        return None if control.value is Select.NULL else control.value
    if isinstance(control, TextArea):
        return control.text
    assert isinstance(control, Input)
    return control.value


class ScriptPanel(Vertical):
    """The Script select and, under it, the chosen script's options."""

    DEFAULT_CSS = """
    ScriptPanel { height: auto; }
    ScriptPanel #script-options { height: auto; }
    ScriptPanel Checkbox { width: 1fr; }
    ScriptPanel TextArea { height: 6; width: 1fr; }
    ScriptPanel .script-area-label { color: $text-muted; }
    """

    def __init__(self, mode: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = mode
        self.scripts: dict[str, Any] = {}  # name -> script, in the registry's order
        self.chosen: str = NONE
        self.controls: dict[str, Widget] = {}  # the chosen script's, by option name
        self.kept: dict[str, dict[str, Any]] = {}  # per script: its values when left
        self._shown: str | None = NONE  # whose controls are on screen
        self._pending: tuple[str, dict[str, Any]] | None = None  # pasted before mounting
        self.select: Select[str] | None = None

    def compose(self) -> ComposeResult:
        self.select = Select(
            self._options(), value=self.chosen, allow_blank=False, id="script-select", compact=True
        )
        yield ParamRow("script", self.select, label="Script", help_text=_SELECT_HELP)
        yield Vertical(id="script-options")

    def _options(self) -> list[tuple[str, str]]:
        return [(NONE, NONE), *((name, name) for name in self.scripts)]

    # -- the scripts -----------------------------------------------------------------------

    def set_scripts(self, scripts: Iterable[Any]) -> None:
        """List these scripts (the chosen one stays chosen while it is among them)."""
        listed = {script.name: script for script in scripts}
        if list(listed) == list(self.scripts) and all(
            listed[name] is self.scripts[name] for name in listed
        ):
            return
        self.scripts = listed
        if self.select is None:  # not composed yet: compose lists them
            if self.chosen not in listed:
                self.chosen = NONE
        elif self.select.is_mounted:
            self._sync_select()
        else:
            self.call_after_refresh(self._sync_select)

    def _sync_select(self) -> None:
        assert self.select is not None
        keep = self.chosen if self.chosen in self.scripts else NONE
        self.select.set_options(self._options())
        self.select.value = keep  # a script no longer listed: None, and its options go

    @property
    def script(self) -> Any:
        """The chosen script; None for "None"."""
        return self.scripts.get(self.chosen)

    def values(self) -> dict[str, Any]:
        """The chosen script's option values, parsed and checked ({} without a script);
        ScriptError says which option is wrong."""
        script = self.script
        if script is None:
            return {}
        raw = {name: read_control(control) for name, control in self.controls.items()}
        return resolve_options(script, {k: v for k, v in raw.items() if v is not None})

    def job_inputs(self, params: Any, random_seed: bool, host: Any, dirs: Any) -> dict[str, Any]:
        """The job's `script`, `script_args` and `random_seed` ({} for None), the values
        parsed and the script's own checks run on the resolved `params`, as `sdtui generate
        --script` does before loading anything: ScriptError says what is wrong."""
        script = self.script
        if script is None:
            return {}
        from sdtui.services.scripts import ScriptRequest, check_request

        options = self.values()
        check_request(script, ScriptRequest(params, options, self.mode, host, dirs, random_seed))
        return {"script": script, "script_args": options, "random_seed": random_seed}

    async def paste(self, name: str, values: dict[str, Any]) -> None:
        """Choose `name` with these option values (a pasted infotext's), replacing what
        its controls held."""
        if not self.is_mounted or self.select is None or not self.select.is_mounted:
            self._pending = (name, values)  # applied on mount (the panel mounts lazily)
            return
        if self.script is not None and self.chosen != name:
            self.kept[self.chosen] = {n: read_control(c) for n, c in self.controls.items()}
        self.kept[name] = dict(values)
        self.chosen, self._shown, self.controls = NONE, None, {}  # rebuild, keep nothing
        await self.choose(name)
        self.select.value = name

    async def on_mount(self) -> None:
        if self._pending is not None:
            name, values = self._pending
            self._pending = None
            await self.paste(name, values)

    async def choose(self, name: str) -> None:
        """Show `name`'s options (NONE: none). The panel's state changes at once; the
        controls are swapped on screen after."""
        name = name if name in self.scripts else NONE
        if name == self.chosen and self._shown == name:
            return
        if self.script is not None:
            self.kept[self.chosen] = {n: read_control(c) for n, c in self.controls.items()}
        self.chosen, self._shown, self.controls = name, name, {}
        script = self.script
        rows = self._build(script) if script is not None else []
        collapsible = next((a for a in self.ancestors if isinstance(a, Collapsible)), None)
        if collapsible is not None:
            collapsible.title = TITLE if script is None else f"{TITLE}: {script.name}"
        container = self.query_one("#script-options", Vertical)
        await container.remove_children()
        if rows:
            await container.mount_all(rows)

    def _build(self, script: Any) -> list[Widget]:
        """Rows for `script`'s options (its kept values, else the defaults); sets
        `controls`."""
        kept = self.kept.get(script.name, {})
        rows: list[Widget] = []
        for option in getattr(script, "options", ()) or ():
            control = make_control(option, kept.get(option.name, option.default))
            self.controls[option.name] = control
            if isinstance(control, Checkbox):
                rows.append(control)
            elif isinstance(control, TextArea):
                rows += [_area_label(option), control]
            else:
                rows.append(
                    ParamRow(option.name, control, label=option.label, help_text=option.help)
                )
        return rows

    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.select is not self.select:
            return  # an option's select
        event.stop()
        await self.choose(str(event.value))


_SELECT_HELP = (
    "A1111's Script dropdown: a script runs the generation its own way (a grid of values, "
    "one image per prompt line, ...); its options show below."
)


def _area_label(option: ScriptOption) -> Widget:
    from textual.widgets import Label

    label = Label(option.label, classes="script-area-label")
    label.tooltip = option.help or None
    return label
