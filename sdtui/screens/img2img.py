"""The img2img tab: txt2img's prompts, controls and results, with an image to start from.

Between the controls and the results sits the input (`sdtui.widgets.img2img_input`):
A1111's sub-tabs img2img, Sketch, Inpaint, Inpaint sketch, Inpaint upload and Batch (Alt+M
cycles them), the image's path (Ctrl+O; Tab completes, Enter opens), the painting canvas
(Alt+P focuses it) and, for inpaint upload, the mask's path. Batch runs every image of a
folder as one job (`Backend.submit_img2img_batch`; "Resize by" then scales each image) and
says at the end what was done and which files failed and why. The controls are
A1111's img2img ones: resize mode, width and height or "Resize by" (a scale of the image's
size, which then wins over width and height), denoising strength (0.75), sampler, CFG, seed,
batch; the inpaint group (mask blur, mask mode, masked content, inpaint area, padding) and
A1111's "Soft inpainting" group show in the inpaint sub-tabs. Alt+D is A1111's 📐: width
and height from the image, down to multiples of 8. Generate queues `Backend.submit_img2img`
with the sub-tab's image and mask; an empty painted mask is refused with a message rather
than run for nothing. The Script group lists the scripts that work in img2img; in Batch
the script runs on each input, as in A1111.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Collapsible, Input, Label, Static

from sdtui.keymap import IMG2IMG_KEYS, bindings
from sdtui.params.schema import MASK_MODES, GenerationParams, img2img_defaults
from sdtui.screens.generation import GenerationScreen, Group
from sdtui.screens.txt2img import GROUPS as TXT2IMG_GROUPS
from sdtui.widgets.img2img_batch import BatchPanel
from sdtui.widgets.img2img_input import INPAINT_MODES, ImageInput
from sdtui.widgets.param_form import FormError

SIZE_FIELDS = ("resize_mode", "width", "height")
INPAINT_FIELDS = (
    "mask_blur",
    "mask_mode",
    "inpainting_fill",
    "inpaint_area",
    "inpaint_full_res_padding",
)
SOFT_INPAINTING_FIELDS = (  # A1111's "Soft inpainting" accordion (sdtui.engine.soft_inpainting)
    "soft_inpainting",
    "soft_inpainting_schedule_bias",
    "soft_inpainting_preservation_strength",
    "soft_inpainting_transition_contrast_boost",
    "soft_inpainting_mask_influence",
    "soft_inpainting_difference_threshold",
    "soft_inpainting_difference_contrast",
)
INPAINT_GROUPS = ("Inpaint", "Soft inpainting")  # shown on the inpaint sub-tabs only
IMG2IMG_ADVANCED = (
    "img2img_fix_steps", "initial_noise_multiplier", "img2img_extra_noise",
    "img2img_color_correction", "inpainting_mask_weight",
)  # fmt: skip


def _txt2img_group(title: str) -> tuple[str, ...]:
    return next(names for group_title, names, _ in TXT2IMG_GROUPS if group_title == title)


GROUPS: tuple[Group, ...] = (
    ("", ("model", "vae"), False),
    ("", ("sampler", "schedule", "steps", "cfg_scale", "image_cfg_scale"), False),
    ("", SIZE_FIELDS, False),
    ("", ("denoising_strength", "batch_count", "batch_size"), False),
    ("", ("seed",), False),
    ("Seed extras", _txt2img_group("Seed extras"), True),
    ("Inpaint", INPAINT_FIELDS, False),
    ("Soft inpainting", SOFT_INPAINTING_FIELDS, True),
    ("Advanced", (*_txt2img_group("Advanced"), *IMG2IMG_ADVANCED), True),
)


def size_from_image(width: int, height: int, scale: float = 1.0) -> tuple[int, int]:
    """A1111's "Resize by" and 📐: the image's size times `scale`, down to multiples of 8
    (as `sdtui img2img` does), at least 8."""
    scaled_width, scaled_height = int(width * scale), int(height * scale)
    return max(8, scaled_width - scaled_width % 8), max(8, scaled_height - scaled_height % 8)


class Img2ImgScreen(GenerationScreen):
    TAB_ID = "img2img"
    BINDINGS: ClassVar = bindings(IMG2IMG_KEYS)
    GROUPS = GROUPS
    _batch_job: Any = None  # the batch job running, for its report at the end
    DEFAULT_CSS = """
    Img2ImgScreen #controls { width: 48; }
    Img2ImgScreen #input { width: 3fr; }
    Img2ImgScreen #results { width: 2fr; }
    Img2ImgScreen #resize-by-row { height: 1; }
    Img2ImgScreen #resize-by-row Label { width: 20; padding: 0 1 0 0; color: $text-muted; }
    Img2ImgScreen #resize-by { width: 1fr; }
    Img2ImgScreen #size-hint { color: $text-muted; height: auto; }
    """

    def make_defaults(self) -> GenerationParams:
        return img2img_defaults()

    # -- layout ----------------------------------------------------------------------------

    def compose_inputs(self) -> Iterable[Widget]:
        yield ImageInput(self._browse_root(), id="input")

    def group_extras(self, group: Group) -> Iterable[Widget]:
        if group[1] != SIZE_FIELDS:
            return ()
        label = Label("Resize by")
        label.tooltip = (
            "A1111's Resize by: the image's size times this (down to multiples of 8); "
            "empty: width and height above."
        )
        scale = Input(
            placeholder="off: width × height", type="number", id="resize-by", compact=True
        )
        return (
            Horizontal(label, scale, id="resize-by-row"),
            Static("", id="size-hint", markup=False),
        )

    def _browse_root(self) -> Path:
        dirs = self.app.backend.dirs
        for folder in (dirs.outputs, dirs.root):
            if folder.is_dir():
                return folder
        return Path.home()

    @property
    def image_input(self) -> ImageInput:
        return self.query_one("#input", ImageInput)

    def on_image_input_mode_changed(self, event: ImageInput.ModeChanged) -> None:
        # batch: a mask folder makes it inpainting
        for group in self._inpaint_groups():
            group.display = event.mode in (*INPAINT_MODES, "batch")

    def on_image_input_opened(self, event: ImageInput.Opened) -> None:
        self._show_size_hint()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "resize-by":
            self._show_size_hint()

    def _inpaint_groups(self) -> list[Widget]:
        return [group for group in self.query(Collapsible) if group.title in INPAINT_GROUPS]

    def _scale(self) -> float | None:
        """The "Resize by" scale; None while empty (FormError if it is no positive number)."""
        text = self.query_one("#resize-by", Input).value.strip()
        if not text:
            return None
        try:
            scale = float(text)
        except ValueError:
            raise FormError([f"Resize by must be a number, got {text!r}"]) from None
        if not 0 < scale <= 8:
            raise FormError([f"Resize by must be more than 0 and at most 8, got {text}"])
        return scale

    def _show_size_hint(self) -> None:
        image = self.image_input.image
        hint = self.query_one("#size-hint", Static)
        try:
            scale = self._scale()
        except FormError as error:
            hint.update(error.problems[0])
            return
        if image is None or scale is None:
            hint.update("")
            return
        width, height = size_from_image(image.width, image.height, scale)
        hint.update(f"{image.width}×{image.height} × {scale:g} → {width}×{height}")

    def on_mount(self) -> None:
        for group in self._inpaint_groups():
            group.display = False

    # -- the request -----------------------------------------------------------------------

    def adjust_values(self, values: dict[str, Any]) -> None:
        image = self.image_input.image
        scale = self._scale()
        if scale is not None and image is not None:
            values["width"], values["height"] = size_from_image(image.width, image.height, scale)

    def prepare(self, params: GenerationParams) -> GenerationParams:
        if self.image_input.image is None and self.image_input.mode != "batch":
            raise ValueError("Open an image first: type its path and press Enter (Ctrl+O).")
        return self.app.backend.prepare_img2img(params)

    def submit(self, params: GenerationParams) -> Any:
        panel = self.image_input
        if panel.mode == "batch":
            spec = panel.query_one(BatchPanel).spec(self._scale())
            handle, self._batch_job = self.app.backend.submit_img2img_batch(
                params, spec, **self.script_inputs
            )
            return handle
        init, mask = panel.inputs(params.mask_blur)
        painted = panel.mode in ("inpaint", "inpaint_sketch")
        empty = mask is not None and mask.getbbox() is None
        if painted and empty and params.mask_mode == MASK_MODES[0]:
            raise ValueError(
                "The mask is empty: paint the area to repaint (Alt+P focuses the canvas), "
                "or use the img2img sub-tab (Alt+M)."
            )
        handle, _job = self.app.backend.submit_img2img(params, [init], mask, **self.script_inputs)
        return handle

    def _finish(self, event: Any) -> None:
        job, self._batch_job = self._batch_job, None  # before a "forever" rerun starts
        super()._finish(event)
        if job is not None:
            from sdtui.services.img2img_batch import summary

            failed = any(item.status == "failed" for item in job.report)
            self.notify(
                summary(job.report, job.total),
                title="img2img batch",
                severity="warning" if failed else "information",
                timeout=30 if failed else 8,
            )

    # -- keys ------------------------------------------------------------------------------

    def action_next_mode(self) -> None:
        self.image_input.cycle_mode()

    def action_open_image(self) -> None:
        self.image_input.focus_path()

    def action_paint(self) -> None:
        panel = self.image_input
        if panel.mode not in ("sketch", "inpaint", "inpaint_sketch"):
            self.notify("Painting is for Sketch, Inpaint and Inpaint sketch (Alt+M).")
        elif panel.image is None:
            self.notify("Open an image first (Ctrl+O).", severity="warning")
        else:
            panel.canvas.surface.focus()

    def action_auto_size(self) -> None:
        image = self.image_input.image
        if image is None:
            self.notify("Open an image first (Ctrl+O).", severity="warning")
            return
        width, height = size_from_image(image.width, image.height)
        self._field("width").value, self._field("height").value = str(width), str(height)
        self.query_one("#resize-by", Input).value = ""
        self.notify(f"Size {width}×{height} from the image")

    # -- send to ---------------------------------------------------------------------------

    def receive(
        self, image: Any, values: dict[str, Any], target: str, shown_path: str | None = None
    ) -> None:
        """An image sent from another tab: its parameters, then the image on the sub-tab
        `target` names ("img2img" or "inpaint"). img2img also takes the image's size
        (A1111's `send_size`); inpaint keeps the infotext's."""
        if values:
            self.fill(values)
        panel = self.image_input
        panel.set_image(image, shown_path)
        panel.mode = "inpaint" if target == "inpaint" else "img2img"
        if target == "img2img":
            width, height = size_from_image(image.width, image.height)
            self._field("width").value, self._field("height").value = str(width), str(height)
            self.query_one("#resize-by", Input).value = ""

    def palette_commands(self) -> Any:
        from textual.app import SystemCommand

        yield from super().palette_commands()
        commands = (
            ("Next sub-tab", "img2img, Sketch, Inpaint, ... (Alt+M)", self.action_next_mode),
            ("Open image", "Type the input image's path (Ctrl+O)", self.action_open_image),
            ("Size from image", "Width and height from the image (Alt+D)", self.action_auto_size),
            ("Paint", "Focus the canvas (Alt+P)", self.action_paint),
        )
        for name, help_text, callback in commands:
            yield SystemCommand(name, help_text, callback)
