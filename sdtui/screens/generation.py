"""What the txt2img and img2img tabs share: prompts, the schema's controls, generate /
interrupt / skip / forever, progress, results and failures.

Left: prompt and negative prompt (completing `<lora:` names), the styles selector, then the
controls in the subclass's `GROUPS` (title, fields, collapsed), each built from the parameter
schema. Right: progress, the selected image, the batch's thumbnails, the buttons under them
and the selected image's infotext. A subclass may put a panel between the two
(`compose_inputs`), add widgets to a group (`group_extras`) and says how a request is checked
and queued (`prepare`, `submit`). Styles and extra networks are `PromptTools`, the result
buttons `ResultActions`. Under the groups, "Script" is A1111's Script dropdown
(`sdtui.widgets.script_form`): the scripts registered for the tab's mode; Generate checks the
chosen one's values (`script_request`) and `submit` passes `script_inputs` to the job.

A job that fails (out of memory, a broken checkpoint, a misspelt LoRA, ...) is a message
with what to do (`sdtui.services.failure_advice`); its traceback goes to
`<data-dir>/sdtui/last-error.txt`. Images finished before the failure are kept, and the
next generation works as before. A failed model load (the preload at start-up) says so too.

Textual calls the message handler of every class in the MRO, subclass first: a subclass's
`on_mount` runs before this one's and must not call `super().on_mount()`; buttons and backend
events go through the hooks (`button_actions`), not handlers of their own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.lazy import Lazy
from textual.widget import Widget
from textual.widgets import Button, Collapsible, ProgressBar, Static

from sdtui.params.schema import GenerationParams
from sdtui.screens.prompt_tools import PromptTools
from sdtui.screens.result_actions import RESULT_ACTIONS, ResultActions
from sdtui.services.failure_advice import failure_advice
from sdtui.widgets.param_form import FormError, ParamForm, control_id, read_forms
from sdtui.widgets.prompt_completion import CompletingPromptBox
from sdtui.widgets.results_panel import ResultsPanel
from sdtui.widgets.script_form import ScriptPanel, scripts_for
from sdtui.widgets.styles_panel import StylesPanel

Group = tuple[str, tuple[str, ...], bool]  # (title, fields, collapsed); "" = always shown


# (name, help, action) of the command palette (Ctrl+P)
PALETTE = (
    ("Generate", "Generate images (F5 / Ctrl+G)", "generate"),
    ("Interrupt", "Stop generating (Esc / F4)", "interrupt"),
    ("Skip", "Skip the current image (F3)", "skip"),
    ("Generate forever", "Toggle (F2)", "toggle_forever"),
    (
        "Read generation parameters",
        "From an infotext in the prompt, or the last generation (Alt+V)",
        "read_params",
    ),
    ("Extra networks", "Insert a LoRA or an embedding, toggle styles (Ctrl+N)", "extra_networks"),
    ("Styles", "Choose styles from styles.csv (Ctrl+T)", "styles"),
    ("Apply styles", "Fold the selected styles into the prompts (Alt+A)", "apply_styles"),
    ("Save as style", "Save the prompts as a style in styles.csv (Alt+Y)", "save_style"),
    ("Script", "Choose a script: X/Y/Z plot, Prompt matrix, ... (A1111's Script)", "script"),
    ("Save image", "Copy to log/images with a log.csv line (Alt+S)", "save_image"),
    ("Zip batch", "Save the batch and zip it into log/images (Alt+Z)", "zip_images"),
    ("Send to img2img", "The image and its parameters (Alt+I)", "send_to('img2img')"),
    ("Send to inpaint", "The image and its parameters (Alt+N)", "send_to('inpaint')"),
)


class DeferredMount(Lazy):
    """Textual's Lazy, except that a screen closed before the deferred mount (the user quit
    at the first frame) drops it instead of failing with MountError."""

    async def mount_composed_widgets(self, widgets: list[Widget]) -> None:
        parent = self.parent
        if not isinstance(parent, Widget):
            return
        widget = self._replace_widget  # what Lazy was given

        async def mount() -> None:
            if not (parent.is_attached and self.is_attached):
                return
            await parent.mount(widget, after=self)
            await self.remove()

        self.call_after_refresh(mount)


def lazy(form: Widget, collapsed: bool) -> Widget:
    """A collapsed group's form is mounted just after the first frame (about half the
    screen's widgets: the first paint comes sooner); `ParamForm` works before that."""
    return DeferredMount(form) if collapsed else form


class GenerationScreen(PromptTools, ResultActions):
    GROUPS: ClassVar[tuple[Group, ...]] = ()
    DEFAULT_CSS = """
    #controls { width: 60; min-width: 40; border-right: solid $panel; padding: 0 1; }
    #controls Collapsible { padding: 0; margin: 0; border-top: none; }
    #controls .group { height: auto; margin: 0 0 1 0; }
    #results { width: 1fr; padding: 0 1; }
    #actions { height: 1; }
    #actions Button { margin: 0 1 0 0; min-width: 10; }
    #progress-text { width: 1fr; color: $text-muted; padding: 0 1; }
    #progress { height: 1; }
    #progress Bar { width: 1fr; }
    #result-panel { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.defaults = self.make_defaults()
        self.forms: list[ParamForm] = []
        self.script_panel: ScriptPanel | None = None
        self.script_inputs: dict[str, Any] = {}  # the script arguments of the job to submit
        self.job_id: int | None = None
        self.load_jobs: set[int] = set()  # model loads queued by the backend
        self.forever = False
        self.last_seed: int | None = None
        # the size the form was last given for a checkpoint; it follows the next checkpoint's
        # native size while the user has not changed it
        self.auto_size = (self.defaults.width, self.defaults.height)

    # -- hooks -----------------------------------------------------------------------------

    def make_defaults(self) -> GenerationParams:
        return GenerationParams()

    def compose_inputs(self) -> ComposeResult:
        """Widgets between the controls and the results (img2img's input image)."""
        yield from ()

    def group_extras(self, group: Group) -> Iterable[Widget]:
        """Widgets after the form of `group` (one of GROUPS), inside its box."""
        return ()

    def adjust_values(self, values: dict[str, Any]) -> None:
        """Change the form's values (in place) before they become parameters."""

    def prepare(self, params: GenerationParams) -> GenerationParams:
        """Checked and resolved parameters (ParameterError, UnknownNameError, ValueError)."""
        raise NotImplementedError

    def submit(self, params: GenerationParams) -> Any:
        """Queue the job for resolved `params`; returns its handle."""
        raise NotImplementedError

    def button_actions(self) -> dict[str, str]:
        """Button id -> action, besides the shared buttons."""
        return {}

    # -- layout ----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with VerticalScroll(id="controls"):
                yield CompletingPromptBox("Prompt", id="prompt", lora_names=self.lora_names)
                yield CompletingPromptBox(
                    "Negative prompt", id="negative-prompt", lora_names=self.lora_names
                )
                yield StylesPanel(id="styles-panel", classes="group")
                yield from self._compose_groups()
            yield from self.compose_inputs()
            with Vertical(id="results"):
                with Horizontal(id="actions"):
                    yield Button("Generate", id="generate", variant="primary", compact=True)
                    yield Button("Interrupt", id="interrupt", compact=True)
                    yield Button("Skip", id="skip", compact=True)
                    yield Static("", id="progress-text")
                yield ProgressBar(total=1, id="progress", show_eta=False)
                yield ResultsPanel(id="result-panel")

    def _compose_groups(self) -> ComposeResult:
        for index, group in enumerate(self.GROUPS):
            title, names, collapsed = group
            form = ParamForm(list(names), self.defaults, id=f"group-{index}")
            self.forms.append(form)
            if title:
                with Collapsible(title=title, collapsed=collapsed, classes="group"):
                    yield lazy(form, collapsed)
                    yield from self.group_extras(group)
            else:
                with Vertical(classes="group"):
                    yield form
                    yield from self.group_extras(group)
        # A1111's Script dropdown, under the parameters; options built when one is chosen
        self.script_panel = ScriptPanel(self.script_mode, id="script-panel")
        with Collapsible(title="Script", collapsed=True, classes="group", id="script-group"):
            yield lazy(self.script_panel, True)

    @property
    def script_mode(self) -> str:
        """The scripts' mode of this tab: "txt2img" or "img2img"."""
        return str(getattr(self, "TAB_ID", "txt2img"))

    def on_mount(self) -> None:
        if self not in self.app.tab_screens:
            self.app.tab_screens.append(self)
        self.prompt_box().focus()
        self._apply_choices()
        self.reload_styles()

    def on_backend_event(self, event: Any) -> None:
        from sdtui.runtime import job_events as jobs
        from sdtui.services.backend import BackendStatus

        if isinstance(event, BackendStatus):
            self._apply_choices()
            return
        if isinstance(event, jobs.Queued) and event.kind == "load":
            self.load_jobs.add(event.job_id)
        elif isinstance(event, jobs.Failed) and event.job_id in self.load_jobs:
            self.show_failure(event, "Loading the checkpoint failed")
        if getattr(event, "job_id", None) != self.job_id:
            return
        if isinstance(event, jobs.Progress):
            self._show_progress(event)
        elif isinstance(event, jobs.Preview):
            self.result_panel.show_preview(event.image)
        elif isinstance(event, jobs.ResultAdded):
            self._add_result(event.item)
        elif isinstance(event, jobs.Finished | jobs.Interrupted | jobs.Failed):
            self._finish(event)

    def _apply_choices(self) -> None:
        choices = self.app.backend.choices()
        if not choices:
            return
        status = self.app.backend.status
        for form in self.forms:
            form.set_choices(choices)
            if "model" in form.controls and status.checkpoint:
                titles = [
                    name
                    for name in choices.get("model", [])
                    if os.path.splitext(name)[0].replace("/", "_") == status.checkpoint
                ]
                if titles and form.values().get("model") is None:
                    form.set_values({"model": titles[0]})
        if self.script_panel is not None:
            self.script_panel.set_scripts(scripts_for(self.app.backend.host, self.script_mode))
        self.follow_native_size(status.native_size)

    def follow_native_size(self, size: int | None) -> None:
        """Start at the checkpoint's training resolution (128 for the default model, 1024
        for SDXL) unless the user has chosen a size."""
        if not size or (size, size) == self.auto_size:
            return
        form = next((form for form in self.forms if "width" in form.controls), None)
        if form is None:
            return
        try:
            current = form.values()
        except FormError:
            return
        if (current.get("width"), current.get("height")) == self.auto_size:
            form.set_values({"width": size, "height": size})
            self.auto_size = (size, size)

    # -- reading the form ------------------------------------------------------------------

    def current_params(self) -> GenerationParams:
        """The form's values as parameters (FormError lists entries that are not numbers)."""
        values: dict[str, Any] = {
            "prompt": self.prompt_box("prompt").text,
            "negative_prompt": self.prompt_box("negative-prompt").text,
            "styles": self.styles_panel.selected,
        }
        values.update(read_forms(self.forms))
        self.adjust_values(values)
        return dataclasses.replace(self.defaults, **values)

    def fill(self, params: GenerationParams | dict[str, Any]) -> None:
        """Set every control from parameters (a pasted infotext, the last generation); a
        `PASTED_SCRIPT` entry selects the script it names with its options."""
        from sdtui.screens.pnginfo_fields import PASTED_SCRIPT

        values = params if isinstance(params, dict) else dataclasses.asdict(params)
        if PASTED_SCRIPT in values:
            values = dict(values)
            self.paste_script(values.pop(PASTED_SCRIPT))
        if "prompt" in values:
            self.prompt_box("prompt").text = values["prompt"] or ""
        if "negative_prompt" in values:
            self.prompt_box("negative-prompt").text = values["negative_prompt"] or ""
        if "styles" in values:
            missing = self.styles_panel.set_selected(values["styles"] or ())
            if missing:
                self.notify(f"Not in styles.csv: {', '.join(missing)}", severity="warning")
        for form in self.forms:
            form.set_values(values)

    def _field(self, name: str) -> Any:
        return self.query_one(f"#{control_id(name)}")

    # -- actions ---------------------------------------------------------------------------

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "generate": "generate",
            "interrupt": "interrupt",
            "skip": "skip",
            "apply-styles": "apply_styles",
            "save-style": "save_style",
            **RESULT_ACTIONS,
            **self.button_actions(),
        }
        action = actions.get(event.button.id or "")
        if action is not None:
            event.stop()
            await self.run_action(action)

    def action_generate(self) -> None:
        from sdtui.params.validate import ParameterError
        from sdtui.registry import UnknownNameError
        from sdtui.services.script_options import ScriptError

        backend = self.app.backend
        if self.job_id is not None:
            self.notify("Already generating: interrupt it (Esc) or wait.", severity="warning")
            return
        if not backend.ready:
            self.notify(backend.status.message, title="Not ready yet", severity="warning")
            return
        try:
            requested = self.current_params()
            params = self.prepare(requested)
            self.script_inputs = self.script_request(requested, params)
            handle = self.submit(params)
        except (FormError, ParameterError) as error:
            self.notify("\n".join(error.problems), title="Check the parameters", severity="error")
            return
        except ScriptError as error:
            self.notify(str(error), title="Check the script", severity="error")
            return
        except (UnknownNameError, LookupError, ValueError, OSError, RuntimeError) as error:
            self.notify(str(error), title="Cannot generate", severity="error")
            return
        self.job_id = handle.id
        self.result_panel.clear()
        self.query_one("#progress", ProgressBar).update(total=params.steps, progress=0)
        self.query_one("#progress-text", Static).update("queued")

    def script_request(
        self, requested: GenerationParams, params: GenerationParams
    ) -> dict[str, Any]:
        """The chosen script as job arguments ({} for None), checked on the resolved
        `params` (ScriptError); `requested.seed` -1 is the scripts' random seed."""
        if self.script_panel is None:
            return {}
        backend = self.app.backend
        random_seed = requested.seed == -1
        return self.script_panel.job_inputs(params, random_seed, backend.host, backend.dirs)

    def action_script(self) -> None:
        """Open the Script group and focus its select."""
        self.query_one("#script-group", Collapsible).collapsed = False
        panel = self.script_panel
        if panel is not None and panel.select is not None:
            panel.select.focus()
            panel.select.scroll_visible()

    def action_interrupt(self) -> None:
        self.forever = False
        if self.job_id is not None and self.app.backend.interrupt():
            self.query_one("#progress-text", Static).update("interrupting…")

    def action_skip(self) -> None:
        if self.job_id is not None:
            self.app.backend.skip()

    def action_toggle_forever(self) -> None:
        self.forever = not self.forever
        self.notify("Generate forever: " + ("on (Esc stops)" if self.forever else "off"))
        if self.forever and self.job_id is None:
            self.action_generate()

    def action_random_seed(self) -> None:
        self._field("seed").value = "-1"

    def action_reuse_seed(self) -> None:
        seed = self._selected_seed()
        if seed is None:
            self.notify("No image yet: generate first.", severity="warning")
            return
        self._field("seed").value = str(seed)

    def action_swap_size(self) -> None:
        width, height = self._field("width"), self._field("height")
        width.value, height.value = height.value, width.value

    def action_read_params(self) -> None:
        """A1111's ↙: the prompt box holds an infotext -> fill every field from it; an empty
        prompt -> the last generation's parameters."""
        from sdtui.params.codec import params_from_infotext

        prompt = self.prompt_box("prompt").text
        if prompt.strip():
            text = prompt
        else:
            last = self.app.backend.dirs.own / "last-params.txt"
            if not last.is_file():
                self.notify("Nothing to read: paste an infotext into the prompt first.")
                return
            text = last.read_text(encoding="utf-8")
        parsed = params_from_infotext(text)
        self.fill(parsed.apply_to(self.current_params_or_defaults()))
        self.paste_script(parsed.unknown)
        self.notify("Parameters read from " + ("the prompt" if prompt.strip() else "last run"))

    def paste_script(self, pairs: dict[str, str]) -> None:
        """A1111's paste of a script's infotext keys: the script the infotext names, with
        its options, in the Script group (nothing happens when it names none)."""
        from sdtui.registry import UnknownNameError
        from sdtui.services.scripts import ScriptError, pasted_script

        host = self.app.backend.host
        if self.script_panel is None or not pairs.get("Script"):
            return
        if host is None:
            self.notify("Scripts are not loaded yet: paste again in a moment.", severity="warning")
            return
        try:
            pasted = pasted_script(host, self.script_mode, pairs)
        except (ScriptError, UnknownNameError) as error:
            self.notify(f"Script not pasted: {error}", severity="warning")
            return
        if pasted is None:
            return
        script, options = pasted
        self.query_one("#script-group", Collapsible).collapsed = False
        self.run_worker(self.script_panel.paste(script.name, options), group="paste-script")

    def current_params_or_defaults(self) -> GenerationParams:
        try:
            return self.current_params()
        except FormError:
            return self.defaults

    def palette_commands(self) -> Any:
        from textual.app import SystemCommand

        for name, help_text, action in PALETTE:
            yield SystemCommand(name, help_text, lambda action=action: self.run_action(action))

    # -- job events ------------------------------------------------------------------------

    def _show_progress(self, event: Any) -> None:
        from sdtui.app import _progress_text

        self.query_one("#progress", ProgressBar).update(total=event.total, progress=event.step)
        self.query_one("#progress-text", Static).update(_progress_text(event))

    def _add_result(self, saved: Any) -> None:
        self.result_panel.add(saved)

    def _finish(self, event: Any) -> None:
        from sdtui.runtime.job_events import Failed, Interrupted

        self.job_id = None
        for saved in getattr(event, "results", ()) or ():
            self.result_panel.add(saved)  # images already shown are left as they are
        text = "done"
        if isinstance(event, Interrupted):
            text = "interrupted"
            self.forever = False
        elif isinstance(event, Failed):
            text = "failed"
            self.forever = False
            self.show_failure(event, "Generation failed")
        self.query_one("#progress-text", Static).update(f"{text} · {len(self.results)} image(s)")
        if self.forever:
            self.action_generate()

    def show_failure(self, event: Any, context: str) -> None:
        """A failed job as a message saying what went wrong and what to do; the traceback
        goes to last-error.txt for a bug report."""
        advice = failure_advice(event.error_message, event.out_of_memory)
        text = advice.text
        path = self.app.backend.dirs.own / "last-error.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(event.traceback, encoding="utf-8")
            text += f"\nDetails: {path}"
        except OSError:
            pass
        self.notify(text, title=f"{context}: {advice.title}", severity="error", timeout=30)

    def _selected_seed(self) -> int | None:
        if self.results:
            return self.results[self.selected].seed
        return self.last_seed
