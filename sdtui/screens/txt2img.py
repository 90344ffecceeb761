"""The txt2img tab: prompts, the schema's controls, generate / interrupt / skip, results.

Left: prompt and negative prompt, then the controls in A1111's groups (checkpoint, sampler,
size and batch, seed with its extras, hires fix, advanced sampler parameters), each built from
the parameter schema. Right: progress, the selected image, the batch's thumbnails and the
selected image's infotext.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Collapsible, ProgressBar, Static, TextArea

from sdtui.keymap import TXT2IMG_KEYS, bindings
from sdtui.params.schema import GenerationParams
from sdtui.screens.base import TabScreen
from sdtui.widgets.image_view import ImageView
from sdtui.widgets.param_form import FormError, ParamForm, control_id
from sdtui.widgets.prompt_box import PromptBox

GROUPS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    # (title, fields, collapsed); None title = always visible
    ("", ("model", "vae"), False),
    ("", ("sampler", "schedule", "steps", "cfg_scale"), False),
    ("", ("width", "height", "batch_count", "batch_size"), False),
    ("", ("seed",), False),
    (
        "Seed extras",
        (
            "variation_seed",
            "variation_strength",
            "seed_resize_from_width",
            "seed_resize_from_height",
        ),
        True,
    ),
    (
        "Hires. fix",
        (
            "enable_hires",
            "hires_upscaler",
            "hires_steps",
            "denoising_strength",
            "hires_scale",
            "hires_resize_width",
            "hires_resize_height",
            "hires_sampler",
            "hires_schedule",
        ),
        True,
    ),
    (
        "Advanced",
        (
            "clip_skip",
            "emphasis",
            "rng",
            "ensd",
            "eta",
            "eta_ddim",
            "s_churn",
            "s_tmin",
            "s_tmax",
            "s_noise",
            "sigma_min",
            "sigma_max",
            "rho",
        ),
        True,
    ),
)
PROMPT_FIELDS = ("prompt", "negative_prompt")
HIRES_PROMPT_FIELDS = ("hires_prompt", "hires_negative_prompt")


@dataclasses.dataclass
class ResultImage:
    path: Path
    infotext: str
    seed: int
    grid: bool = False
    image: Any = None  # PIL image, loaded on demand

    def load(self) -> Any:
        from PIL import Image

        if self.image is None:
            with Image.open(self.path) as image:
                self.image = image.convert("RGB")
        return self.image


class Thumbnail(ImageView):
    """One image of the batch in the strip; click to select it."""

    DEFAULT_CSS = """
    Thumbnail { width: 12; height: 6; margin: 0 1 0 0; }
    Thumbnail.-selected { border: tall $accent; }
    """

    def __init__(self, index: int, image: Any) -> None:
        super().__init__(image, classes="thumbnail")
        self.index = index

    def on_click(self) -> None:
        screen = self.screen
        if isinstance(screen, Txt2ImgScreen):
            screen.select_result(self.index)


class Txt2ImgScreen(TabScreen):
    TAB_ID = "txt2img"
    BINDINGS: ClassVar = bindings(TXT2IMG_KEYS)
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
    #image { height: 1fr; min-height: 8; }
    #thumbnails { height: 6; }
    #thumbnails-hint { height: 1; color: $text-muted; }
    #infotext { height: 7; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.defaults = GenerationParams()
        self.forms: list[ParamForm] = []
        self.results: list[ResultImage] = []
        self.selected = 0
        self.job_id: int | None = None
        self.forever = False
        self.last_seed: int | None = None

    # -- layout ----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with VerticalScroll(id="controls"):
                yield PromptBox("Prompt", id="prompt")
                yield PromptBox("Negative prompt", id="negative-prompt")
                for index, (title, names, collapsed) in enumerate(GROUPS):
                    form = ParamForm(list(names), self.defaults, id=f"group-{index}")
                    self.forms.append(form)
                    if title:
                        with Collapsible(title=title, collapsed=collapsed, classes="group"):
                            yield form
                            if title == "Hires. fix":
                                hires_form = ParamForm(
                                    list(HIRES_PROMPT_FIELDS), self.defaults, id="group-hires-p"
                                )
                                self.forms.append(hires_form)
                                yield hires_form
                    else:
                        with Vertical(classes="group"):
                            yield form
            with Vertical(id="results"):
                with Horizontal(id="actions"):
                    yield Button("Generate", id="generate", variant="primary", compact=True)
                    yield Button("Interrupt", id="interrupt", compact=True)
                    yield Button("Skip", id="skip", compact=True)
                    yield Static("", id="progress-text")
                yield ProgressBar(total=1, id="progress", show_eta=False)
                yield ImageView(id="image")
                yield Horizontal(id="thumbnails")
                yield Static("", id="thumbnails-hint")
                yield TextArea("", id="infotext", read_only=True, soft_wrap=True)

    def on_mount(self) -> None:
        self.app.tab_screens.append(self)
        self.query_one("#prompt", PromptBox).focus()
        self._apply_choices()

    def on_backend_event(self, event: Any) -> None:
        from sdtui.runtime.job_events import (
            Failed,
            Finished,
            Interrupted,
            Preview,
            Progress,
            ResultAdded,
        )
        from sdtui.services.backend import BackendStatus

        if isinstance(event, BackendStatus):
            self._apply_choices()
            return
        if getattr(event, "job_id", None) != self.job_id:
            return
        if isinstance(event, Progress):
            self._show_progress(event)
        elif isinstance(event, Preview):
            self.query_one("#image", ImageView).image = event.image
        elif isinstance(event, ResultAdded):
            self._add_result(event.item)
        elif isinstance(event, Finished | Interrupted | Failed):
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

    # -- reading the form ------------------------------------------------------------------

    def current_params(self) -> GenerationParams:
        """The form's values as parameters (FormError lists entries that are not numbers)."""
        values: dict[str, Any] = {
            "prompt": self.query_one("#prompt", PromptBox).text,
            "negative_prompt": self.query_one("#negative-prompt", PromptBox).text,
        }
        problems = []
        for form in self.forms:
            try:
                values.update(form.values())
            except FormError as error:
                problems += error.problems
        if problems:
            raise FormError(problems)
        for name in HIRES_PROMPT_FIELDS:
            values[name] = values.get(name) or None
        return dataclasses.replace(self.defaults, **values)

    def fill(self, params: GenerationParams | dict[str, Any]) -> None:
        """Set every control from parameters (a pasted infotext, the last generation)."""
        values = params if isinstance(params, dict) else dataclasses.asdict(params)
        if "prompt" in values:
            self.query_one("#prompt", PromptBox).text = values["prompt"] or ""
        if "negative_prompt" in values:
            self.query_one("#negative-prompt", PromptBox).text = values["negative_prompt"] or ""
        for form in self.forms:
            form.set_values(values)

    def _field(self, name: str) -> Any:
        return self.query_one(f"#{control_id(name)}")

    # -- actions ---------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"generate": self.action_generate, "interrupt": self.action_interrupt}
        actions.get(event.button.id or "", self.action_skip)()

    def action_generate(self) -> None:
        from sdtui.params.validate import ParameterError
        from sdtui.registry import UnknownNameError

        backend = self.app.backend
        if self.job_id is not None:
            self.notify("Already generating: interrupt it (Esc) or wait.", severity="warning")
            return
        if not backend.ready:
            self.notify(backend.status.message, title="Not ready yet", severity="warning")
            return
        try:
            params = backend.prepare(self.current_params())
            handle, _job = backend.submit_txt2img(params)
        except (FormError, ParameterError) as error:
            self.notify("\n".join(error.problems), title="Check the parameters", severity="error")
            return
        except (UnknownNameError, ValueError, OSError, RuntimeError) as error:
            self.notify(str(error), title="Cannot generate", severity="error")
            return
        self.job_id = handle.id
        self.results, self.selected = [], 0
        self.query_one("#thumbnails", Horizontal).remove_children()
        self.query_one("#progress", ProgressBar).update(total=params.steps, progress=0)
        self.query_one("#progress-text", Static).update("queued")

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

        prompt = self.query_one("#prompt", PromptBox).text
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
        self.notify("Parameters read from " + ("the prompt" if prompt.strip() else "last run"))

    def current_params_or_defaults(self) -> GenerationParams:
        try:
            return self.current_params()
        except FormError:
            return self.defaults

    def action_copy_infotext(self) -> None:
        if not self.results:
            return
        self.app.copy_to_clipboard(self.results[self.selected].infotext)
        self.notify("Infotext copied (OSC 52)")

    def action_open_folder(self) -> None:
        if not self.results:
            return
        folder = str(self.results[self.selected].path.parent)
        self.app.copy_to_clipboard(folder)
        self.notify(folder, title="Folder (path copied)")

    def action_select_image(self, offset: int) -> None:
        if self.results:
            self.select_result((self.selected + offset) % len(self.results))

    def palette_commands(self) -> Any:
        from textual.app import SystemCommand

        yield SystemCommand("Generate", "Generate images (F5 / Ctrl+G)", self.action_generate)
        yield SystemCommand("Interrupt", "Stop generating (Esc / F4)", self.action_interrupt)
        yield SystemCommand("Skip", "Skip the current image (F3)", self.action_skip)
        yield SystemCommand("Generate forever", "Toggle (F2)", self.action_toggle_forever)
        yield SystemCommand(
            "Read generation parameters",
            "From an infotext in the prompt, or the last generation (Alt+V)",
            self.action_read_params,
        )

    # -- job events ------------------------------------------------------------------------

    def _show_progress(self, event: Any) -> None:
        from sdtui.app import _progress_text

        self.query_one("#progress", ProgressBar).update(total=event.total, progress=event.step)
        self.query_one("#progress-text", Static).update(_progress_text(event))

    def _add_result(self, saved: Any) -> None:
        result = ResultImage(saved.path, saved.infotext, saved.seed, getattr(saved, "grid", False))
        self.results.append(result)
        thumbnail = Thumbnail(len(self.results) - 1, result.load())
        self.query_one("#thumbnails", Horizontal).mount(thumbnail)
        self.select_result(len(self.results) - 1)

    def _finish(self, event: Any) -> None:
        from sdtui.runtime.job_events import Failed, Interrupted

        self.job_id = None
        known = {result.path for result in self.results}
        for saved in getattr(event, "results", ()) or ():
            if saved.path not in known:
                self._add_result(saved)
        text = "done"
        if isinstance(event, Interrupted):
            text = "interrupted"
            self.forever = False
        elif isinstance(event, Failed):
            text = "failed"
            self.forever = False
            advice = " Free memory: lower the size or batch size." if event.out_of_memory else ""
            self.notify(event.error_message + advice, title="Generation failed", severity="error")
        self.query_one("#progress-text", Static).update(f"{text} · {len(self.results)} image(s)")
        if self.forever:
            self.action_generate()

    def select_result(self, index: int) -> None:
        self.selected = index
        result = self.results[index]
        self.query_one("#image", ImageView).image = result.load()
        self.query_one("#infotext", TextArea).text = f"{result.infotext}\n\n{result.path}"
        for thumbnail in self.query(Thumbnail):
            thumbnail.set_class(thumbnail.index == index, "-selected")
        name = "grid" if result.grid else f"image {index + 1}"
        self.query_one("#thumbnails-hint", Static).update(
            f"{name} of {len(self.results)} · Alt+←/→ select · Alt+C copy infotext · Alt+O folder"
        )

    def _selected_seed(self) -> int | None:
        if self.results:
            return self.results[self.selected].seed
        return self.last_seed
