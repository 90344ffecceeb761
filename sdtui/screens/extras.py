"""The Extras tab: upscale images and restore faces (A1111's postprocessing).

Left: the input, on three sub-tabs as in A1111 (Alt+M cycles them) -- "Single Image" (a path;
Tab completes, relative to the outputs folder; "send to extras" from txt2img, img2img and
PNG Info fills it), "Batch Process" (paths, one per line) and "Batch from Directory" (input
and output folders, "Show result images") -- then the parameters, generated from
`sdtui.params.extras_schema` (the same declarations as `sdtui upscale`'s flags).
Right: the results (`ResultsPanel`: thumbnails, the selected image, folder / save / zip /
copy / send to img2img or inpaint) with the `extras` text written into each PNG above them.
Alt+B switches the large view between the selected result and its input (before / after).

Generate (F5, Ctrl+G) checks the request first (ranges, upscaler names, face restorer
weights, the input paths) and queues one job on the runtime; progress shows the image and
tile; Esc / F4 interrupts after the current tile, keeping what was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from sdtui.keymap import EXTRAS_KEYS, bindings
from sdtui.params.extras_schema import FACES, SCALE_BY, SCALE_TO, UPSCALE, ExtrasParams
from sdtui.params.schema import fields_of, spec
from sdtui.screens.result_actions import RESULT_ACTIONS, ResultActions
from sdtui.widgets.file_browser import PathInput, resolve_path
from sdtui.widgets.param_form import FormError, ParamForm, ParamRow, control_id, read_forms
from sdtui.widgets.results_panel import ResultsPanel

MODES = ("single", "batch", "directory")
MODE_LABELS = {
    "single": "Single Image",
    "batch": "Batch Process",
    "directory": "Batch from Directory",
}
UPSCALE_FIELDS = [n for n in fields_of(ExtrasParams) if spec(n, ExtrasParams).section == UPSCALE]
FACE_FIELDS = [n for n in fields_of(ExtrasParams) if spec(n, ExtrasParams).section == FACES]
IDLE_TEXT = "F5 / Ctrl+G: run · Alt+M: input · Alt+B: before/after"
# the controls of A1111's "Scale by" and "Scale to" tabs: only the chosen mode's are shown
MODE_FIELDS = {SCALE_BY: ("scale", "max_side_length"), SCALE_TO: ("scale_to_width",
               "scale_to_height", "crop_to_fit")}  # fmt: skip


class ExtrasScreen(ResultActions):
    TAB_ID = "extras"
    BINDINGS: ClassVar = bindings(EXTRAS_KEYS)
    DEFAULT_CSS = """
    #extras-inputs { width: 58; min-width: 40; border-right: solid $panel; padding: 0 1; }
    #extras-mode { height: auto; }
    #extras-mode TabPane { height: auto; padding: 0; }
    #extras-files { height: 6; }
    #single-info, #extras-status { color: $text-muted; }
    #extras-status.-error { color: $error; }
    .heading { text-style: bold; margin: 1 0 0 0; }
    #extras-buttons { height: 1; margin: 1 0 0 0; }
    #extras-buttons Button { margin: 0 1 0 0; }
    #extras-results { width: 1fr; padding: 0 1; }
    #extras-info { height: auto; max-height: 3; color: $text-muted; }
    #extras-inputs ParamRow > Label { width: 23; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.job_id: int | None = None
        self.job: Any = None
        self.showing_before = False
        self.show_results = True
        self.shown: dict[Path, _Shown] = {}  # result path -> its extras text and input
        self.root = Path.home()

    # -- layout ----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        dirs = self.app.backend.dirs
        self.root = dirs.outputs if dirs.outputs.is_dir() else dirs.root
        defaults = ExtrasParams()
        with Horizontal():
            with VerticalScroll(id="extras-inputs"):
                with TabbedContent(id="extras-mode", initial="single"):
                    with TabPane(MODE_LABELS["single"], id="single"):
                        yield PathInput(
                            self.root,
                            placeholder="path of an image (Tab completes)",
                            id="extras-path",
                        )
                        yield Static("", id="single-info", markup=False)
                    with TabPane(MODE_LABELS["batch"], id="batch"):
                        yield Label("Image paths, one per line")
                        yield TextArea("", id="extras-files", soft_wrap=False)
                    with TabPane(MODE_LABELS["directory"], id="directory"):
                        yield ParamRow(
                            "input_dir",
                            Input(id="extras-input-dir", compact=True),
                            label="Input directory",
                            help_text="Every image in this folder.",
                        )
                        yield ParamRow(
                            "output_dir",
                            Input(
                                placeholder="outputs/extras-images",
                                id="extras-output-dir",
                                compact=True,
                            ),
                            label="Output directory",
                            help_text="Leave empty for the extras folder of the settings.",
                        )
                        yield Checkbox(
                            "Show result images", True, id="extras-show-results", compact=True
                        )
                yield Label("Upscale", classes="heading")
                yield ParamForm(UPSCALE_FIELDS, defaults, id="extras-upscale")
                yield Label("Face restoration", classes="heading")
                yield ParamForm(FACE_FIELDS, defaults, id="extras-faces")
                with Horizontal(id="extras-buttons"):
                    yield Button("Generate", id="extras-generate", variant="primary", compact=True)
                    yield Button("Interrupt", id="extras-interrupt", compact=True)
                yield Static(IDLE_TEXT, id="extras-status", markup=False)
            with Vertical(id="extras-results"):
                yield Static("", id="extras-info", markup=False)
                yield ResultsPanel(id="result-panel")

    def on_mount(self) -> None:
        self.app.tab_screens.append(self)
        self._apply_choices()
        self._show_mode_fields(SCALE_BY)
        self.query_one("#extras-path", PathInput).focus()

    @property
    def forms(self) -> list[ParamForm]:
        return [
            self.query_one("#extras-upscale", ParamForm),
            self.query_one("#extras-faces", ParamForm),
        ]

    def _apply_choices(self) -> None:
        host = self.app.backend.host
        if host is not None:
            listed = ["None", *(name for name in host.upscalers.names() if name != "None")]
            self.query_one("#extras-upscale", ParamForm).set_choices(
                {"upscaler": listed, "upscaler_2": listed}
            )

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == control_id("resize_mode") and isinstance(event.value, str):
            self._show_mode_fields(event.value)

    def _show_mode_fields(self, mode: str) -> None:
        form = self.query_one("#extras-upscale", ParamForm)
        for fields_mode, names in MODE_FIELDS.items():
            for name in names:
                control = form.controls[name]
                row = control.parent if isinstance(control.parent, ParamRow) else control
                row.display = fields_mode == mode

    def action_refresh_upscalers(self) -> None:
        """Scan the upscaler folders again (A1111's 🔄 beside the upscaler lists)."""
        self.run_worker(self._refresh_upscalers, thread=True, group="refresh")

    def _refresh_upscalers(self) -> None:
        try:
            unusable = self.app.backend.refresh_upscalers()
        except RuntimeError as error:
            self.app.call_from_thread(self.notify, str(error), severity="warning")
            return
        count = len(self.app.backend.host.upscalers)
        lines = [f"{path.name}: {reason}" for path, reason in unusable]
        text = f"{count} upscalers" + ("; unusable:\n" + "\n".join(lines) if lines else "")
        self.app.call_from_thread(self.notify, text, title="Upscalers refreshed")

    # -- the input -------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.query_one("#extras-mode", TabbedContent).active or "single"

    @mode.setter
    def mode(self, value: str) -> None:
        self.query_one("#extras-mode", TabbedContent).active = value

    def action_next_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def action_open_image(self) -> None:
        self.mode = "single"
        self.query_one("#extras-path", PathInput).focus()

    def receive(self, path: Path) -> None:
        """An image sent from another tab ("send to extras"): the single image."""
        self.mode = "single"
        shown = path.relative_to(self.root) if path.is_relative_to(self.root) else path
        self.query_one("#extras-path", PathInput).value = str(shown)
        self._preview_input(path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "extras-path":
            event.stop()
            path = self.query_one("#extras-path", PathInput).path
            if path is not None:
                self._preview_input(path)

    def _preview_input(self, path: Path) -> None:
        """Show the single image before it is processed (and say what it is)."""
        from sdtui.services.image_files import open_image

        info = self.query_one("#single-info", Static)
        try:
            image = open_image(path, "image")
        except ValueError as error:
            info.update(str(error))
            return
        info.update(f"{path.name} · {image.width}×{image.height}")
        if not self.results:
            self.result_panel.show_preview(image.convert("RGB"))

    def _inputs(self) -> tuple[list[Any], Path | None]:
        """The job's inputs and output folder for the active sub-tab; ValueError says what
        is missing or wrong."""
        from sdtui.services.extras_job import check_output_folder, file_inputs, folder_inputs

        keep = bool(self.app.backend.user_settings["use_original_name_batch"])
        out_dir = None
        if self.mode == "single":
            path = self.query_one("#extras-path", PathInput).path
            if path is None:
                raise ValueError("Single Image: type the path of an image (Ctrl+O)")
            inputs = file_inputs([path], keep_names=False)
        elif self.mode == "batch":
            lines = self.query_one("#extras-files", TextArea).text.splitlines()
            paths = [resolve_path(line, self.root) for line in lines if line.strip()]
            if not paths:
                raise ValueError("Batch Process: list image paths, one per line")
            inputs = file_inputs(paths, keep_names=keep)
        else:
            folder = self.query_one("#extras-input-dir", Input).value.strip()
            if not folder:
                raise ValueError("Batch from Directory: give an input directory")
            inputs = folder_inputs(resolve_path(folder, self.root), keep_names=keep)
            output = self.query_one("#extras-output-dir", Input).value.strip()
            out_dir = resolve_path(output, self.root) if output else None
        check_output_folder(inputs, out_dir)
        return inputs, out_dir

    # -- running ---------------------------------------------------------------------------

    def request(self) -> ExtrasParams:
        """The parameters in the forms; FormError lists entries that are not numbers."""
        return ExtrasParams(**read_forms(self.forms))

    def action_generate(self) -> None:
        from sdtui.params.validate import ParameterError

        if self.job_id is not None:
            self.notify("Extras is already running (Esc interrupts).", severity="warning")
            return
        try:
            params = self.app.backend.prepare_extras(self.request())
            inputs, out_dir = self._inputs()
        except (FormError, ParameterError, ValueError, RuntimeError) as error:
            problems = getattr(error, "problems", None) or [str(error)]
            self._status("\n".join(problems), error=True)
            self.notify("\n".join(problems), title="Cannot run Extras", severity="error")
            return
        self.show_results = (
            self.mode != "directory" or self.query_one("#extras-show-results", Checkbox).value
        )
        self.result_panel.clear()
        self.shown.clear()
        self.showing_before = False
        self.query_one("#extras-info", Static).update("")
        handle, self.job = self.app.backend.submit_extras(params, inputs, out_dir)
        self.job_id = handle.id
        self._status(f"queued: {len(inputs)} image(s)")

    def action_interrupt(self) -> None:
        if self.job_id is not None and self.app.backend.interrupt():
            self._status("interrupting after the current tile…")

    def on_backend_event(self, event: Any) -> None:
        from sdtui.runtime import job_events as jobs
        from sdtui.services.backend import BackendStatus

        if isinstance(event, BackendStatus):
            self._apply_choices()
            return
        if getattr(event, "job_id", None) != self.job_id or self.job_id is None:
            return
        if isinstance(event, jobs.Progress):
            text = event.text or "extras"
            tiles = f" · tile {event.step}/{event.total}" if event.total > 1 else ""
            self._status(f"{text}{tiles}")
        elif isinstance(event, jobs.ResultAdded):
            self._add_result(event.item)
        elif isinstance(event, jobs.FINAL_EVENTS):
            self._finish(event)

    def _add_result(self, saved: Any) -> None:
        if not self.show_results:
            return
        shown = _Shown(saved)
        self.shown[saved.path] = shown
        self.result_panel.add(shown)
        self.query_one("#extras-info", Static).update(saved.infotext)
        self.showing_before = False

    def _finish(self, event: Any) -> None:
        from sdtui.runtime import job_events as jobs

        job, self.job_id = self.job, None
        report = getattr(job, "report", [])
        done = sum(item.status == "done" for item in report)
        failed = [item for item in report if item.status == "failed"]
        lines = [f"{done} image(s) written"]
        if isinstance(event, jobs.Interrupted):
            lines[0] += " · interrupted"
        lines += [f"{item.source}: {item.message}" for item in failed]
        if isinstance(event, jobs.Failed):
            lines.append(f"failed: {event.error_message}")
        self._status("\n".join(lines), error=bool(failed) or isinstance(event, jobs.Failed))
        if isinstance(event, jobs.Failed):
            self.notify(event.error_message, title="Extras failed", severity="error")

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#extras-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    # -- results ---------------------------------------------------------------------------

    def select_result(self, index: int) -> None:
        super().select_result(index)
        self.showing_before = False
        self._show_info()

    def _show_info(self) -> None:
        current = self._shown_current()
        if current is not None:
            self.query_one("#extras-info", Static).update(current.extras)

    def _shown_current(self) -> _Shown | None:
        current = self.result_panel.current
        return None if current is None else self.shown.get(current.path)

    def action_toggle_before(self) -> None:
        """The large view: the selected result, or the input it was made from."""
        from sdtui.services.image_files import open_image

        current = self._shown_current()
        if current is None:
            self.notify("No result yet: run Extras first (F5).", severity="warning")
            return
        if self.showing_before:
            self.result_panel.select(self.result_panel.selected)
            self.showing_before = False
            self._show_info()
            return
        source = current.source
        if source is None:
            self.notify("This result's input was not a file.", severity="warning")
            return
        try:
            before = open_image(source, "input")
        except ValueError as error:
            self.notify(str(error), severity="error")
            return
        self.result_panel.show_preview(before.convert("RGB"))
        self.showing_before = True
        self.query_one("#extras-info", Static).update(
            f"before: {source} · {before.width}×{before.height} (Alt+B: after)"
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "extras-generate":
            self.action_generate()
        elif button == "extras-interrupt":
            self.action_interrupt()
        elif button in RESULT_ACTIONS:
            self.run_action(RESULT_ACTIONS[button])

    def palette_commands(self) -> Any:
        from textual.app import SystemCommand

        commands = (
            ("Run Extras", "Upscale / restore faces (F5)", self.action_generate),
            (
                "Next input sub-tab",
                "Single Image, Batch Process, ... (Alt+M)",
                self.action_next_mode,
            ),
            (
                "Before / after",
                "Show the selected result's input (Alt+B)",
                self.action_toggle_before,
            ),
        )
        for name, help_text, callback in commands:
            yield SystemCommand(name, help_text, callback)


class _Shown:
    """An Extras result as the results panel takes it: its infotext is the source's (what
    copy / send to img2img use), the extras text and the input ride along."""

    def __init__(self, saved: Any) -> None:
        self.path = saved.path
        self.infotext = saved.source_infotext or saved.infotext
        self.seed = 0
        self.extras = saved.infotext
        self.source = saved.source
