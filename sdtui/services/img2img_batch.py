"""img2img over a folder of images as one queued job: A1111's img2img Batch sub-tab.

    spec = BatchSpec(Path("in"), output_dir=Path("out"), mask_dir=Path("masks"),
                     png_info=("prompt", "seed"))
    spec.check()              # ValueError before anything loads: no such folder, no images, ...
    job = Img2ImgBatchJob(runtime, host, dirs, params, model, batch=spec)
    runtime.jobs.submit(job, name="img2img", kind="img2img")
    job.report                # one BatchItem per input: done, failed, skipped or exists, and why

Each input runs through `Img2ImgJob` (model cache, LoRA, engine call, saving with infotext),
so a batch image is made exactly as the img2img sub-tab would make it. A1111's rules
(`modules/img2img.py: process_batch`), and where sdtui differs:

* Inputs: the files of the input folder ending in .png, .jpg, .jpeg, .webp, .tif or .tiff,
  hidden files left out, in natural order (`img2` before `img10`); other files are ignored.
  A1111 also walks subfolders; sdtui reads the folder itself only. An input that cannot be
  read is reported and skipped, and the rest continue (A1111 prints it and goes on). The EXIF
  orientation of photos is applied.
* Masks (inpainting): a mask folder holding one image masks every input; otherwise an input's
  mask is the image with its name (stem) and any image extension, and an input without one
  is reported and skipped, as in A1111. An empty mask folder means plain img2img.
* PNG info ("Parameters to take from png info"): each input's own infotext (or that of the
  file with its name in `png_info_dir`). Its prompt and negative prompt are appended to the
  request's after a space; seed, CFG scale, sampler and steps replace the request's. An input
  without infotext runs with the request's values.
* Seeds: the request's seed is drawn once for the batch (A1111's fix_seed): every input
  starts from the same seed unless its PNG info gives one.
* Size: `scale_by` makes each input's size times the scale (down to multiples of 8, A1111's
  "Resize by"); None uses the request's width and height.
* Output folder: images are named after the input, A1111's `samples_filename_pattern` of
  the input's stem (`<stem>-[generation_number]` for several images an input), with no date
  subfolder: `a.png` -> `00000-a.png`, or `a.png` with "Add number to filename when saving"
  off (an existing name gets `-1`, `-2`, ...). Grids still go to the img2img grids folder.
  Without an output folder the images are named and placed as any img2img image.
* `skip_existing` (sdtui's own, for reruns; needs an output folder): an input with an output
  in the output folder already (`<stem>`, `NNNNN-<stem>`, `...-<n>`, any image extension)
  is not run again.
* Progress says "image i/n <name>" before the steps. Skip (F3) abandons the current image
  (with a batch count, its current batch, as in txt2img); Interrupt stops the job, keeping
  every image finished, the current input's included.

A failure of the engine itself (out of memory, a broken checkpoint) fails the job as in
img2img; problems of one input (unreadable, no mask, PNG info naming an unknown sampler, a
LoRA its prompt names that is not there) fail that input only. Torch-free to import.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.params.schema import GenerationParams
from sdtui.runtime.job_context import JobInterrupted
from sdtui.services.image_files import open_image
from sdtui.services.img2img_job import Img2ImgJob
from sdtui.services.outputs import OutputNaming

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
# short name: (A1111's label in "Parameters to take from png info", the parameter)
PNG_INFO_FIELDS: dict[str, tuple[str, str]] = {
    "prompt": ("Prompt", "prompt"),
    "negative": ("Negative prompt", "negative_prompt"),
    "seed": ("Seed", "seed"),
    "cfg": ("CFG scale", "cfg_scale"),
    "sampler": ("Sampler", "sampler"),
    "steps": ("Steps", "steps"),
}
APPENDED = ("prompt", "negative_prompt")  # added to the request's; the others replace it
STATUSES = ("done", "failed", "skipped", "exists", "interrupted")


def natural_key(name: str) -> list[Any]:
    """`img2` before `img10`: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name)]


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder` (by extension), hidden ones left out, in natural
    order."""
    names = [
        entry.name
        for entry in os.scandir(folder)
        if not entry.name.startswith(".")
        and entry.name.lower().endswith(IMAGE_SUFFIXES)
        and entry.is_file()
    ]
    return [folder / name for name in sorted(names, key=natural_key)]


def parse_png_info(text: str) -> tuple[str, ...]:
    """ "prompt,seed" (or A1111's labels: "Prompt, CFG scale") -> ("prompt", "seed");
    ValueError lists the valid names."""
    by_label = {label.casefold(): short for short, (label, _) in PNG_INFO_FIELDS.items()}
    chosen: list[str] = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        short = (
            part.casefold() if part.casefold() in PNG_INFO_FIELDS else by_label.get(part.casefold())
        )
        if short is None:
            raise ValueError(
                f"unknown PNG info field {part!r}; known: {', '.join(PNG_INFO_FIELDS)}"
            )
        if short not in chosen:
            chosen.append(short)
    if not chosen:
        raise ValueError(f"no PNG info fields given; known: {', '.join(PNG_INFO_FIELDS)}")
    return tuple(chosen)


def mask_for(source: Path, masks: Sequence[Path]) -> Path | None:
    """The mask of input `source`: the only mask there is, else the one with its stem."""
    if len(masks) == 1:
        return masks[0]
    return next((mask for mask in masks if mask.stem == source.stem), None)


def existing_outputs(folder: Path, stem: str) -> list[Path]:
    """Images in `folder` a batch made from an input named `stem` (`stem.png`,
    `00012-stem.png`, `stem-1.webp`, `00013-stem-2.png`)."""
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"(\d+-)?{re.escape(stem)}(-\d+)?")
    return [path for path in image_files(folder) if pattern.fullmatch(path.stem)]


def png_info_values(path: Path, fields: Sequence[str]) -> dict[str, Any]:
    """The chosen fields' parameter values from the infotext `path` carries; {} when it has
    none or cannot be read (A1111 then runs the request's values)."""
    from sdtui.params.codec import params_from_infotext
    from sdtui.params.image_metadata import read_image_metadata

    try:
        infotext = read_image_metadata(path).infotext
    except (OSError, ValueError):
        return {}
    if not infotext:
        return {}
    parsed = params_from_infotext(infotext)
    present = {PNG_INFO_FIELDS[short][1] for short in fields}
    return {name: value for name, value in parsed.values.items() if name in present}


def with_png_info(params: GenerationParams, values: dict[str, Any]) -> GenerationParams:
    """The request with an input's PNG info: prompts appended after a space, the rest
    replaced."""
    changes = dict(values)
    for name in APPENDED:
        if name in changes:
            own, added = getattr(params, name), changes[name]
            changes[name] = " ".join(part for part in (own, added) if part)
    return dataclasses.replace(params, **changes)


@dataclass(frozen=True)
class BatchSpec:
    """What the Batch sub-tab (or `sdtui img2img --batch-input-dir`) asks for."""

    input_dir: Path
    output_dir: Path | None = None
    mask_dir: Path | None = None
    png_info: tuple[str, ...] = ()  # short names of PNG_INFO_FIELDS
    png_info_dir: Path | None = None
    skip_existing: bool = False
    scale_by: float | None = None  # each input's size times this; None: the request's size

    def check(self) -> list[Path]:
        """The input images; ValueError saying what is wrong before anything is loaded."""
        _folder(self.input_dir, "input folder")
        sources = image_files(self.input_dir)
        if not sources:
            raise ValueError(
                f"input folder {self.input_dir}: no images in it ({', '.join(IMAGE_SUFFIXES)})"
            )
        if self.mask_dir is not None:
            _folder(self.mask_dir, "mask folder")
        if self.png_info_dir is not None:
            _folder(self.png_info_dir, "PNG info folder")
        unknown = [name for name in self.png_info if name not in PNG_INFO_FIELDS]
        if unknown:
            raise ValueError(
                f"unknown PNG info field {unknown[0]!r}; known: {', '.join(PNG_INFO_FIELDS)}"
            )
        if self.output_dir is not None:
            if self.output_dir.exists() and not self.output_dir.is_dir():
                raise ValueError(f"output folder {self.output_dir}: a file, not a folder")
            if self.output_dir.resolve() == self.input_dir.resolve():
                raise ValueError(
                    "the output folder is the input folder: the outputs would be inputs of "
                    "the next run; choose another folder"
                )
        elif self.skip_existing:
            raise ValueError("skipping existing outputs needs an output folder")
        if self.scale_by is not None and not self.scale_by > 0:
            raise ValueError(f"Resize by must be more than 0, got {self.scale_by}")
        return sources


def _folder(path: Path, what: str) -> None:
    if not path.exists():
        raise ValueError(f"{what} {path}: no such folder")
    if not path.is_dir():
        raise ValueError(f"{what} {path}: a file, not a folder")


@dataclass
class BatchItem:
    """What became of one input."""

    source: Path
    status: str = "skipped"  # one of STATUSES
    message: str = ""
    outputs: list[Path] = field(default_factory=list)


def summary(report: Sequence[BatchItem], total: int | None = None) -> str:
    """ "3 done (3 images written), 1 failed: bad.png: not an image sdtui can read (...)"."""
    count = {status: sum(item.status == status for item in report) for status in STATUSES}
    written = sum(len(item.outputs) for item in report)
    parts = [f"{count['done']} done ({written} image{'s' if written != 1 else ''} written)"]
    if count["exists"]:
        parts.append(f"{count['exists']} skipped (output exists)")
    if count["skipped"]:
        parts.append(f"{count['skipped']} skipped")
    if count["interrupted"] or (total is not None and len(report) < total):
        parts.append(f"interrupted after {len(report)} of {total or len(report)}")
    text = ", ".join(parts)
    failed = [item for item in report if item.status == "failed"]
    if failed:
        text += f", {len(failed)} failed: " + "; ".join(
            f"{item.source.name}: {item.message}" for item in failed
        )
    return text


class ImageProgress:
    """The job context for one input: its progress text says which image of the batch."""

    def __init__(self, context: Any, label: str) -> None:
        self._context = context
        self.label = label

    def progress(self, step: int, total: int, *, text: str | None = None) -> None:
        self._context.progress(step, total, text=f"{self.label} · {text}" if text else self.label)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _message(error: BaseException, source: Path) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return str(text).removeprefix(f"image {source}: ")


@dataclass
class Img2ImgBatchJob(Img2ImgJob):
    """Callable job: `runtime.jobs.submit(job, name="img2img", kind="img2img")`; returns
    `report` (also kept on the job after an interrupt or a failure)."""

    batch: BatchSpec | None = None
    report: list[BatchItem] = field(default_factory=list)
    total: int = 0  # inputs found when the job started

    def __call__(self, context: Any) -> list[BatchItem]:
        if self.batch is None:
            raise ValueError("an img2img batch needs a BatchSpec (batch=...)")
        sources = self.batch.check()
        masks = image_files(self.batch.mask_dir) if self.batch.mask_dir else []
        base = (self.params, self.naming)
        self.report, self.total = [], len(sources)

        def run(numbered: tuple[int, Path]) -> None:
            self._run_one(context, base, *numbered, masks)

        try:
            context.for_each(list(enumerate(sources, 1)), run)
        finally:
            self.params, self.naming = base
            self.init_images, self.mask = [], None
        return self.report

    def _run_one(
        self,
        context: Any,
        base: tuple[GenerationParams, OutputNaming],
        number: int,
        source: Path,
        masks: Sequence[Path],
    ) -> None:
        assert self.batch is not None
        item = BatchItem(source, "skipped", "skipped")
        self.report.append(item)
        scoped = ImageProgress(context, f"image {number}/{self.total} {source.name}")
        scoped.progress(0, 1)
        if self.batch.skip_existing and self.batch.output_dir is not None:
            found = existing_outputs(self.batch.output_dir, source.stem)
            if found:
                item.status, item.message = "exists", f"{found[0].name} exists"
                return
        first = len(self.saved)
        try:
            image, mask = self._inputs(source, masks)
            self.params = self._params_for(base[0], source, image)
            self.init_images, self.mask = [image], mask
            self.naming = self._naming_for(base[1], source)
            super().__call__(scoped)
        except (ValueError, LookupError) as error:
            item.status, item.message = "failed", _message(error, source)
        except JobInterrupted:
            item.status, item.message = "interrupted", "interrupted"
            raise
        else:
            finished = len(self.saved) > first
            item.status, item.message = ("done", "") if finished else ("skipped", "skipped")
        finally:
            item.outputs = [saved.path for saved in self.saved[first:]]

    def _inputs(self, source: Path, masks: Sequence[Path]) -> tuple[Any, Any]:
        from PIL import ImageOps

        image = ImageOps.exif_transpose(open_image(source, "image"))
        if not masks:
            return image, None
        path = mask_for(source, masks)
        if path is None:
            assert self.batch is not None
            raise ValueError(f"no mask named {source.stem}.* in {self.batch.mask_dir}")
        return image, open_image(path, "mask")

    def _params_for(self, base: GenerationParams, source: Path, image: Any) -> GenerationParams:
        """The request for one input: its size (with `scale_by`) and its PNG info, checked."""
        from sdtui.services.requests import prepare_img2img

        assert self.batch is not None
        params = base
        if self.batch.scale_by is not None:
            from sdtui.engine.masking import scale_size

            width, height = scale_size(image.width, image.height, self.batch.scale_by)
            params = dataclasses.replace(params, width=width, height=height)
        if self.batch.png_info:
            folder = self.batch.png_info_dir
            info_path = folder / source.name if folder is not None else source
            params = with_png_info(params, png_info_values(info_path, self.batch.png_info))
        if params == base:
            return base
        return prepare_img2img(params, self.plugin_host, legacy_schedule=False)

    def _naming_for(self, base: OutputNaming, source: Path) -> OutputNaming:
        """A1111's names in an output folder: the input's stem, no date subfolder."""
        assert self.batch is not None
        if self.batch.output_dir is None:
            return base
        several = self.params.batch_count > 1 or self.params.batch_size > 1
        pattern = f"{source.stem}-[generation_number]" if several else source.stem
        return dataclasses.replace(
            base, filename_pattern=pattern, save_to_dirs=False, images_folder=self.batch.output_dir
        )
