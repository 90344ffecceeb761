"""A1111's Save and Zip buttons: copies in `log/images` and a row in `log/images/log.csv`.

    folder = save_folder(settings)                     # <data-dir>/log/images (outdir_save)
    saved = save_images(images, folder, naming)        # copies + one log.csv row
    archive = zip_images(images, folder, naming)       # the same, plus a .zip of them

As A1111's `save_files` (modules/ui_common.py):

* Each image is written into the save folder under the usual file-name pattern, without
  the date subfolder (`use_save_to_dirs_for_ui` is off by default): `00000-7-a cat.png`.
  sdtui copies the file, so its infotext and sdtui's JSON chunk stay as they were.
* `log.csv` lives in the save folder itself, with A1111's columns (`LOG_FIELDS`); one row
  per click, describing the first image saved, read from its infotext. A log written by an
  older A1111 with fewer columns gets the new header and its rows padded first.
* The zip is named `[datetime]_[[model_name]]_[seed]-[seed_last]` (A1111's default
  `grid_zip_filename_pattern`) and holds the saved copies under their names.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdtui.params.infotext import parse_infotext, split_size
from sdtui.services.outputs import NameContext, OutputNaming, apply_pattern

LOG_FILE = "log.csv"
LOG_FIELDS = (
    "prompt",
    "seed",
    "width",
    "height",
    "sampler",
    "cfgs",
    "steps",
    "filename",
    "negative_prompt",
    "sd_model_name",
    "sd_model_hash",
)
ZIP_PATTERN = "[datetime]_[[model_name]]_[seed]-[seed_last]"
DEFAULT_SAVE_FOLDER = "log/images"


@dataclass(frozen=True)
class ImageRecord:
    """An image the app shows: its file and the infotext it was made with."""

    path: Path
    infotext: str
    seed: int
    grid: bool = False


def save_folder(settings: Any) -> Path:
    """The Save button's folder: the `outdir_save` setting, relative to the data dir."""
    folder = Path(settings["outdir_save"] or DEFAULT_SAVE_FOLDER).expanduser()
    return settings.root / folder


def _copy(image: ImageRecord, folder: Path, naming: OutputNaming) -> Path:
    parsed = parse_infotext(image.infotext)
    context = NameContext(seed=image.seed, prompt=parsed.prompt)
    naming = dataclasses.replace(naming, save_to_dirs=False, extension=image.path.suffix[1:])
    basename = "grid" if image.grid else ""
    target = naming.path(folder, context, basename=basename, short=image.grid)
    shutil.copyfile(image.path, target)
    return target


def log_row(image: ImageRecord, filename: str) -> list[str]:
    """A1111's log.csv row for an image saved as `filename` (relative to the folder)."""
    parsed = parse_infotext(image.infotext)
    values = parsed.values
    width, height = split_size(values.get("Size", "")) or ("", "")
    return [
        parsed.prompt,
        values.get("Seed", str(image.seed)),
        str(width),
        str(height),
        values.get("Sampler", ""),
        values.get("CFG scale", ""),
        values.get("Steps", ""),
        filename,
        parsed.negative_prompt,
        values.get("Model", ""),
        values.get("Model hash", ""),
    ]


def _update_header(path: Path) -> None:
    """An older log with fewer columns: write today's header and pad its rows (A1111's
    `update_logfile`)."""
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    if not rows or tuple(rows[0]) == LOG_FIELDS:
        return
    padded = [row + [""] * (len(LOG_FIELDS) - len(row)) for row in rows[1:]]
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(LOG_FIELDS)
        writer.writerows(padded)
    os.replace(temporary, path)


def append_log(folder: Path, row: Sequence[str]) -> Path:
    path = folder / LOG_FILE
    if path.exists():
        _update_header(path)
    with open(path, "a", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        if file.tell() == 0:
            writer.writerow(LOG_FIELDS)
        writer.writerow(row)
    return path


def save_images(
    images: Sequence[ImageRecord], folder: Path, naming: OutputNaming, *, write_log: bool = True
) -> list[Path]:
    """Copy `images` into `folder`; one log.csv row for the first. Returns the copies."""
    if not images:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    copies = [_copy(image, folder, naming) for image in images]
    if write_log:
        append_log(folder, log_row(images[0], os.path.relpath(copies[0], folder)))
    return copies


def zip_name(images: Sequence[ImageRecord], now: dt.datetime | None = None) -> str:
    first = parse_infotext(images[0].infotext)
    seeds = [image.seed for image in images if not image.grid] or [images[0].seed]
    context = NameContext(
        seed=seeds[0], prompt=first.prompt, model_name=first.values.get("Model", "")
    )
    if now is not None:
        context.now = now
    return apply_pattern(ZIP_PATTERN.replace("[seed_last]", str(seeds[-1])), context)


def zip_images(
    images: Sequence[ImageRecord],
    folder: Path,
    naming: OutputNaming,
    *,
    write_log: bool = True,
    now: dt.datetime | None = None,
) -> Path:
    """Save `images` as the Save button does, then zip the copies into the save folder."""
    if not images:
        raise ValueError("nothing to zip: generate images first")
    copies = save_images(images, folder, naming, write_log=write_log)
    target = folder / f"{zip_name(images, now)}.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for copy in copies:
            archive.write(copy, os.path.relpath(copy, folder))
    return target
