"""The Extras tab's work as one runtime job: single image, several files, or a folder.

    job = ExtrasJob(host, dirs, params, inputs=[ExtrasInput(path=Path("a.png"))],
                    options=ExtrasOptions.from_settings(settings))
    check_extras_request(params, host)          # ParameterError before anything is queued
    runtime.jobs.submit(job, name="extras", kind="extras")
    job.saved                                   # ExtrasSaved per image written
    job.report                                  # one ExtrasItem per input: done / failed / ...

Each input goes through `sdtui.services.extras.postprocess` and is written as soon as it is
done, as A1111's `modules/postprocessing.py` does:

* Folder: the output folder given (A1111's "Batch from Directory" output directory), else
  the `outdir_extras_samples` setting (`outputs/extras-images`), no date subfolder.
* Name: `00000.png` (5 digits, one more than the highest there); inputs of a batch with
  "keep original names" (A1111's `use_original_name_batch`, on by default) keep their stem,
  `photo.jpg` -> `photo.png`, replacing an output of that name (A1111's default "Replace").
  With `use_upscaler_name_as_suffix` the upscaler's name follows: `00000-R-ESRGAN 4x+.png`.
  A batch that keeps original names may not write into its own input folder (it would
  overwrite the inputs): refused before anything runs.
* Metadata: the source's own text chunks are kept (its `parameters` infotext, sdtui's JSON,
  anything else) and A1111's `extras` chunk is added (`Postprocess upscale by: 4,
  Postprocess upscaler: R-ESRGAN 4x+`). JPEG / WebP outputs carry the source's infotext in
  EXIF (or the extras text when the source had none; A1111 writes the extras text there).
* An input that cannot be read is reported and skipped; the others continue. A problem of
  the request itself (an unknown upscaler, a face restorer without weights) fails the job.
  Interrupt stops after the current tile, keeping every image already written.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sdtui.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE
from sdtui.params.extras_schema import ExtrasParams
from sdtui.params.validate import ParameterError, validate
from sdtui.paths import DataDirs
from sdtui.runtime.job_context import JobInterrupted
from sdtui.services.extras import ExtrasTools, Processed, UpscaleCache, postprocess
from sdtui.services.face_restoration import restorer_problem
from sdtui.services.image_files import open_image
from sdtui.services.outputs import NameContext, OutputNaming, sanitize_part

EXTRAS_KEY = "extras"  # A1111's PNG chunk for the postprocessing infotext
STATUSES = ("done", "failed", "interrupted")


@dataclass(frozen=True)
class ExtrasInput:
    """One image to process: a file, or an image already in memory (the TUI's single image,
    "send to extras"); `keep_name` names the output after the file (batch modes)."""

    path: Path | None = None
    image: Any = None  # a PIL image; its `info` text items are its metadata
    keep_name: bool = False

    @property
    def label(self) -> str:
        return self.path.name if self.path is not None else "image"


@dataclass(frozen=True)
class ExtrasOptions:
    """The settings Extras reads (A1111's keys in the comments)."""

    naming: OutputNaming = field(default_factory=OutputNaming)  # outdir_extras_samples, format
    tile: int = DEFAULT_TILE  # ESRGAN_tile
    overlap: int = DEFAULT_OVERLAP  # ESRGAN_tile_overlap
    upscaler_suffix: bool = False  # use_upscaler_name_as_suffix
    jpeg_quality: int = 80
    unload_faces: bool = False  # face_restoration_unload

    @classmethod
    def from_settings(cls, settings: Any) -> ExtrasOptions:
        values = settings.values
        return cls(
            naming=settings.output_naming("extras"),
            tile=int(values.get("ESRGAN_tile", DEFAULT_TILE)),
            overlap=int(values.get("ESRGAN_tile_overlap", DEFAULT_OVERLAP)),
            upscaler_suffix=bool(values.get("use_upscaler_name_as_suffix", False)),
            jpeg_quality=int(values.get("jpeg_quality", 80)),
            unload_faces=bool(values.get("face_restoration_unload", False)),
        )


@dataclass
class ExtrasSaved:
    path: Path
    infotext: str  # the extras chunk
    source: Path | None  # the input file, when there was one
    source_infotext: str | None  # the input's generation infotext, kept in the output


@dataclass
class ExtrasItem:
    source: str
    status: str  # one of STATUSES
    message: str = ""
    output: Path | None = None


def check_extras_request(params: ExtrasParams, host: Any) -> ExtrasParams:
    """`params` with the upscaler names spelled as registered; ParameterError listing every
    problem (ranges, unknown upscalers, nothing to do, a face restorer without weights)."""
    upscalers = ["None", *(n for n in host.upscalers.names() if n != "None")]
    folded = {name.casefold(): name for name in upscalers}
    params = dataclasses.replace(
        params,
        upscaler=folded.get(params.upscaler.casefold(), params.upscaler),
        upscaler_2=folded.get(params.upscaler_2.casefold(), params.upscaler_2),
    )
    choices: Mapping[str, Collection[str]] = {"upscaler": upscalers, "upscaler_2": upscalers}
    problems: list[str] = []
    try:
        validate(params, choices)
    except ParameterError as error:
        problems += error.problems
    if not params.does_anything:
        problems.append(
            "nothing to do: choose Upscaler 1, or a GFPGAN or CodeFormer visibility above 0"
        )
    for name, visibility in (
        ("GFPGAN", params.gfpgan_visibility),
        ("CodeFormer", params.codeformer_visibility),
    ):
        if visibility > 0:
            problem = restorer_problem(host, name)
            if problem:
                problems.append(problem)
    if problems:
        raise ParameterError(problems)
    return params


def check_output_folder(inputs: list[ExtrasInput], out_dir: Path | None) -> None:
    """ValueError when keeping original names would overwrite an input."""
    if out_dir is None:
        return
    target = out_dir.expanduser().resolve()
    for item in inputs:
        if item.keep_name and item.path is not None and item.path.resolve().parent == target:
            raise ValueError(
                f"the output folder {out_dir} holds the inputs: keeping their names would "
                "overwrite them; choose another output folder"
            )


@dataclass
class ExtrasJob:
    """Callable job: `runtime.jobs.submit(job, name="extras", kind="extras")`."""

    kind: ClassVar[str] = "extras"
    plugin_host: Any
    dirs: DataDirs
    params: ExtrasParams  # checked (check_extras_request)
    inputs: list[ExtrasInput]
    options: ExtrasOptions = field(default_factory=ExtrasOptions)
    out_dir: Path | None = None  # None: the outdir_extras_samples setting
    cache: UpscaleCache = field(default_factory=UpscaleCache)  # the app keeps one between jobs
    saved: list[ExtrasSaved] = field(default_factory=list)
    report: list[ExtrasItem] = field(default_factory=list)

    def __call__(self, context: Any) -> list[ExtrasSaved]:
        check_output_folder(self.inputs, self.out_dir)
        total = len(self.inputs)
        for index, item in enumerate(self.inputs):
            label = f"image {index + 1}/{total} {item.label}" if total > 1 else item.label
            try:
                context.check()
            except JobInterrupted:
                self._mark_rest_interrupted(index)
                raise
            context.progress(0, 1, text=label)
            try:
                image, metadata = self._read(item)
            except ValueError as error:
                self.report.append(ExtrasItem(item.label, "failed", str(error)))
                continue
            tools = ExtrasTools(
                self.plugin_host,
                tile=self.options.tile,
                overlap=self.options.overlap,
                unload_faces=self.options.unload_faces,
                cache=self.cache,
                check=context.check,
                progress=lambda done, count, label=label: context.progress(done, count, text=label),
            )
            try:
                processed = postprocess(image, self.params, tools)
            except JobInterrupted:
                self._mark_rest_interrupted(index)
                raise
            saved = self._save(item, metadata, processed)
            self.saved.append(saved)
            self.report.append(ExtrasItem(item.label, "done", output=saved.path))
            context.add_result(saved)
        return self.saved

    def _mark_rest_interrupted(self, first: int) -> None:
        for item in self.inputs[first:]:
            self.report.append(ExtrasItem(item.label, "interrupted"))

    @staticmethod
    def _read(item: ExtrasInput) -> tuple[Any, Any]:
        """The input's pixels (EXIF orientation applied) and the metadata it carries, from
        one read of the file."""
        from PIL import ImageOps

        from sdtui.params.image_metadata import image_metadata

        if item.image is not None:
            return item.image, image_metadata(item.image)
        if item.path is None:
            raise ValueError("an extras input needs a path or an image")
        image = open_image(item.path, "image")
        return ImageOps.exif_transpose(image), image_metadata(image)

    # -- saving ----------------------------------------------------------------------------

    def _save(self, item: ExtrasInput, metadata: Any, processed: Processed) -> ExtrasSaved:
        """Write the result with the source's metadata (`image_metadata`) and the extras
        chunk."""
        from sdtui.params.image_metadata import save_image

        items = {k: v for k, v in metadata.items.items() if k != EXTRAS_KEY}
        path = self._output_path(item, processed)
        path.parent.mkdir(parents=True, exist_ok=True)
        extras_text, source_text = processed.infotext, metadata.infotext
        png = path.suffix.lower() == ".png"
        save_image(
            processed.image,
            path,
            infotext=source_text if (png or source_text) else extras_text,
            params=metadata.params if png else None,
            extra_text={**items, EXTRAS_KEY: extras_text} if png else None,
            jpeg_quality=self.options.jpeg_quality,
        )
        return ExtrasSaved(path, extras_text, item.path, source_text)

    def _output_path(self, item: ExtrasInput, processed: Processed) -> Path:
        naming = self.options.naming
        folder = self.out_dir or naming.folder(self.dirs, "extras", NameContext())
        upscaler = processed.info.get("Postprocess upscaler")
        suffix = ""
        if self.options.upscaler_suffix and upscaler:
            suffix = sanitize_part(str(upscaler), replace_spaces=False)
        if item.keep_name and item.path is not None:
            stem = item.path.stem + (f"-{suffix}" if suffix else "")
            return folder / f"{stem}.{naming.extension}"
        return naming.path(folder, NameContext(), suffix=suffix, short=True)


def folder_inputs(folder: Path, keep_names: bool = True) -> list[ExtrasInput]:
    """The images of a folder as batch inputs (A1111's "Batch from Directory"); ValueError
    when it is not a folder or holds no images."""
    from sdtui.services.img2img_batch import image_files

    if not folder.is_dir():
        raise ValueError(f"input folder {folder}: no such folder")
    files = image_files(folder)
    if not files:
        raise ValueError(f"input folder {folder}: no images (.png, .jpg, .webp, .tif)")
    return [ExtrasInput(path=path, keep_name=keep_names) for path in files]


def file_inputs(paths: list[Path], keep_names: bool) -> list[ExtrasInput]:
    """Named files as inputs; ValueError naming the first that does not exist."""
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"image {path}: no such file")
    return [ExtrasInput(path=path, keep_name=keep_names) for path in paths]
