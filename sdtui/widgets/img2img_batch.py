"""The img2img tab's Batch sub-tab: the folders and options of A1111's "From directory" batch.

    panel = BatchPanel(base=outputs, id="batch")
    spec = panel.spec(scale_by=None)   # BatchSpec, checked; ValueError says what is wrong

Input folder, output folder (empty: `outputs/img2img-images`, named as any img2img image),
mask folder (optional: inpaint with the mask named like each image, or the only mask there
is), A1111's "PNG info" options (which parameters each image's own infotext gives, and an
optional folder to read the infotext from instead) and "skip images whose output exists"
for reruns. Paths complete folders with Tab; relative paths start at `base`. The rules are
`sdtui.services.img2img_batch`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical
from textual.widgets import Checkbox, Label, Static

from sdtui.widgets.file_browser import PathInput

if TYPE_CHECKING:
    from sdtui.services.img2img_batch import BatchSpec

FOLDERS = (
    ("input", "Input folder", "the images to run (png, jpg, webp, tif)"),
    ("output", "Output folder", "empty: outputs/img2img-images"),
    ("mask", "Mask folder", "optional: masks named like the images (inpaint)"),
)
HINT = (
    "Every image of the input folder, as one job (F5). In an output folder the images are "
    "named after their input. Prompts from PNG info are appended to yours."
)


class BatchPanel(Vertical):
    DEFAULT_CSS = """
    BatchPanel { height: auto; }
    BatchPanel .batch-row { height: 1; }
    BatchPanel .batch-row Label { width: 16; color: $text-muted; }
    BatchPanel .batch-row Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    BatchPanel #batch-hint { color: $text-muted; height: auto; margin: 0 0 1 0; }
    BatchPanel #batch-png-title { margin: 1 0 0 0; }
    BatchPanel #batch-png-fields { layout: grid; grid-size: 3; height: auto; }
    BatchPanel Checkbox { width: 1fr; }
    """

    def __init__(self, base: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.base = base

    def compose(self) -> ComposeResult:
        # the job's module (and the generation services under it) loads when the panel
        # does, not on the app's first frame
        from sdtui.services.img2img_batch import PNG_INFO_FIELDS

        yield Static(HINT, id="batch-hint", markup=False)
        for key, label, placeholder in FOLDERS:
            with Horizontal(classes="batch-row"):
                yield Label(label)
                yield PathInput(self.base, suffixes=(), placeholder=placeholder, id=_id(key))
        yield Label("Parameters to take from PNG info", id="batch-png-title")
        with Container(id="batch-png-fields"):
            for short, (label, _name) in PNG_INFO_FIELDS.items():
                yield Checkbox(label, False, id=f"batch-png-{short}", compact=True)
        with Horizontal(classes="batch-row"):
            yield Label("PNG info folder")
            yield PathInput(
                self.base,
                suffixes=(),
                placeholder="optional: infotext from the files of the same name",
                id=_id("png-info"),
            )
        yield Checkbox(
            "Skip images whose output exists (needs an output folder)",
            False,
            id="batch-skip-existing",
            compact=True,
        )

    def folder(self, key: str) -> Path | None:
        """The folder typed into `key`'s field (input, output, mask, png-info), resolved."""
        return self.query_one(f"#{_id(key)}", PathInput).path

    def set_folder(self, key: str, text: str) -> None:
        self.query_one(f"#{_id(key)}", PathInput).value = text

    @property
    def png_info(self) -> tuple[str, ...]:
        from sdtui.services.img2img_batch import PNG_INFO_FIELDS

        return tuple(
            short
            for short in PNG_INFO_FIELDS
            if self.query_one(f"#batch-png-{short}", Checkbox).value
        )

    def spec(self, scale_by: float | None) -> BatchSpec:
        """The batch asked for, checked (ValueError: what is wrong, before anything runs)."""
        from sdtui.services.img2img_batch import BatchSpec

        source = self.folder("input")
        if source is None:
            raise ValueError("Batch: type the input folder's path (the images to run).")
        spec = BatchSpec(
            source,
            output_dir=self.folder("output"),
            mask_dir=self.folder("mask"),
            png_info=self.png_info,
            png_info_dir=self.folder("png-info"),
            skip_existing=self.query_one("#batch-skip-existing", Checkbox).value,
            scale_by=scale_by,
        )
        spec.check()
        return spec


def _id(key: str) -> str:
    return f"batch-{key}-dir"
