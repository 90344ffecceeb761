"""Where images are saved and what they are called, as A1111 does it.

    outputs/txt2img-images/2024-07-27/00000-1234567890.png
    outputs/txt2img-grids/2024-07-27/grid-0000.png
    outputs/extras-images/00000.png
    outputs/init-images/<md5 of the pixels>.png   (img2img inputs, A1111's save_init_img)

A filename is `NNNNN-<pattern>.<ext>` (or `<basename>-NNNN-<pattern>`) where NNNNN is one
more than the highest number already in the folder, and the pattern's `[tokens]` are
filled from the image (`[seed]`, `[prompt_words]`, `[model_name]`, `[date]`, ...).
Characters illegal in file names are replaced and parts are capped at 128 characters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdtui.paths import DataDirs

INVALID_CHARACTERS = '#<>:"/\\|?*\n\r\t'
MAX_PART_LENGTH = 128
DEFAULT_TIME_FORMAT = "%Y%m%d%H%M%S"
NON_LETTERS = re.compile(r"[\s" + re.escape(string.punctuation) + "]+")
PATTERN = re.compile(r"(.*?)(?:\[([^\[\]]+)\]|$)", re.S)
PATTERN_ARGUMENT = re.compile(r"(.*)<([^>]*)>$")
SKIP = object()  # the token and the text before it are left out

OUTPUT_KINDS = {
    "txt2img": ("txt2img-images", "txt2img-grids"),
    "img2img": ("img2img-images", "img2img-grids"),
    "extras": ("extras-images", "extras-images"),
}


def sanitize_part(text: str, replace_spaces: bool = True) -> str:
    if replace_spaces:
        text = text.replace(" ", "_")
    text = text.translate({ord(char): "_" for char in INVALID_CHARACTERS})
    return text.lstrip(" ")[:MAX_PART_LENGTH].rstrip(" .")


@dataclass
class NameContext:
    """What a filename pattern can refer to, for one image."""

    seed: int | None = None
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str = ""
    schedule: str = ""
    width: int | None = None
    height: int | None = None
    model_name: str = ""
    model_hash: str = ""
    styles: tuple[str, ...] = ()
    clip_skip: int | None = None
    denoising_strength: float | None = None
    vae_filename: str = ""
    batch_index: int = 0
    batch_size: int = 1
    iteration: int = 0
    batch_count: int = 1
    job_timestamp: str = ""
    now: dt.datetime = field(default_factory=dt.datetime.now)
    max_prompt_words: int = 8


def _prompt_words(context: NameContext) -> str:
    words = [word for word in NON_LETTERS.split(context.prompt) if word] or ["empty"]
    return sanitize_part(" ".join(words[: context.max_prompt_words]), replace_spaces=False)


def _datetime(context: NameContext, *arguments: str) -> str:
    time_format = arguments[0] if arguments and arguments[0] else DEFAULT_TIME_FORMAT
    moment = context.now
    if len(arguments) > 1:
        try:
            from zoneinfo import ZoneInfo

            moment = moment.astimezone(ZoneInfo(arguments[1]))
        except (KeyError, ValueError, OSError):
            pass
    try:
        text = moment.strftime(time_format)
    except ValueError:
        text = moment.strftime(DEFAULT_TIME_FORMAT)
    return sanitize_part(text, replace_spaces=False)


def _hash(text: str, *arguments: str) -> str:
    length = int(arguments[0]) if arguments and arguments[0].isdigit() else 8
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _batch_number(context: NameContext) -> object:
    return SKIP if context.batch_size == 1 else context.batch_index + 1


def _generation_number(context: NameContext) -> object:
    if context.batch_count == 1 and context.batch_size == 1:
        return SKIP
    return context.iteration * context.batch_size + context.batch_index + 1


TOKENS: dict[str, Callable[..., object]] = {
    "seed": lambda c: "" if c.seed is None else c.seed,
    "steps": lambda c: c.steps,
    "cfg": lambda c: c.cfg_scale,
    "width": lambda c: c.width,
    "height": lambda c: c.height,
    "styles": lambda c: sanitize_part(", ".join(c.styles) or "None", replace_spaces=False),
    "sampler": lambda c: sanitize_part(c.sampler, replace_spaces=False),
    "scheduler": lambda c: sanitize_part(c.schedule, replace_spaces=False),
    "sampler_scheduler": lambda c: sanitize_part(
        f"{c.sampler} {c.schedule}".strip(), replace_spaces=False
    ),
    "model_hash": lambda c: c.model_hash,
    "model_name": lambda c: sanitize_part(c.model_name, replace_spaces=False),
    "date": lambda c: c.now.strftime("%Y-%m-%d"),
    "datetime": _datetime,
    "job_timestamp": lambda c: c.job_timestamp,
    "prompt_hash": lambda c, *a: _hash(c.prompt, *a),
    "negative_prompt_hash": lambda c, *a: _hash(c.negative_prompt, *a),
    "full_prompt_hash": lambda c, *a: _hash(f"{c.prompt} {c.negative_prompt}", *a),
    "prompt": lambda c: sanitize_part(c.prompt),
    "prompt_spaces": lambda c: sanitize_part(c.prompt, replace_spaces=False),
    "prompt_words": _prompt_words,
    "batch_number": _batch_number,
    "batch_size": lambda c: c.batch_size,
    "generation_number": _generation_number,
    "clip_skip": lambda c: c.clip_skip,
    "denoising": lambda c: c.denoising_strength if c.denoising_strength else SKIP,
    "vae_filename": lambda c: sanitize_part(c.vae_filename, replace_spaces=False),
    "none": lambda c: "",
}


def apply_pattern(pattern: str, context: NameContext) -> str:
    """Fill `[token]` / `[token<arg>]` placeholders; unknown tokens stay as written."""
    result = ""
    for match in PATTERN.finditer(pattern):
        text, token = match.groups()
        if token is None:
            result += text
            continue
        arguments: list[str] = []
        name = token
        while argument := PATTERN_ARGUMENT.match(name):
            name, value = argument.groups()
            arguments.insert(0, value)
        function = TOKENS.get(name.lower())
        value = function(context, *arguments) if function else None
        if value is SKIP:
            continue
        result += text + (f"[{token}]" if value is None else str(value))
    return result


def next_sequence_number(folder: Path, basename: str = "") -> int:
    """One more than the highest `NNNNN` (or `basename-NNNN`) already in `folder`."""
    prefix = f"{basename}-" if basename else ""
    highest = -1
    if folder.is_dir():
        for name in os.listdir(folder):
            if name.startswith(prefix):
                first = os.path.splitext(name[len(prefix) :])[0].split("-")[0]
                if first.isdigit():
                    highest = max(highest, int(first))
    return highest + 1


def temporary_folder(dirs: DataDirs) -> Path:
    """Where results that the settings do not keep are written (A1111 shows those from
    gradio's temporary files): `<data-dir>/sdtui/temp`."""
    return dirs.own / "temp"


@dataclass(frozen=True)
class OutputNaming:
    """A1111's saving settings that decide folders and file names."""

    filename_pattern: str = ""  # samples_filename_pattern
    add_number: bool = True  # save_images_add_number
    save_to_dirs: bool = True
    directories_pattern: str = "[date]"
    extension: str = "png"
    images_folder: Path | None = None  # the outdir_* settings; None: outputs/<kind>-images
    grids_folder: Path | None = None  # None: outputs/<kind>-grids
    # A1111's outdir_init_images when save_init_img is on; None: init images are not saved
    init_images_folder: Path | None = None
    grid_extension: str | None = None  # grid_format; None: the images' extension
    jpeg_quality: int = 80  # jpeg_quality: JPEG and lossy WebP
    write_infotext: bool = True  # enable_pnginfo: the infotext (and sdtui's JSON) in the file
    save_txt: bool = False  # save_txt: the infotext in name.txt beside name.png
    # samples_save / grid_save: off, generated images / grids go to the temporary folder
    # (shown as results, kept with Save) instead of the outputs folders (not Extras': A1111
    # saves those regardless)
    keep_images: bool = True
    keep_grids: bool = True

    def folder(self, dirs: DataDirs, kind: str, context: NameContext, grid: bool = False) -> Path:
        images, grids = OUTPUT_KINDS[kind]
        if kind != "extras" and not (self.keep_grids if grid else self.keep_images):
            return temporary_folder(dirs) / (grids if grid else images)
        folder = (self.grids_folder if grid else self.images_folder) or dirs.outputs / (
            grids if grid else images
        )
        if self.save_to_dirs and kind != "extras":
            sub = apply_pattern(self.directories_pattern or "[prompt_words]", context)
            folder = folder / sub.lstrip(" ").rstrip("\\ /")
        return folder

    def path(
        self,
        folder: Path,
        context: NameContext,
        basename: str = "",
        suffix: str = "",
        short: bool = False,
        grid: bool = False,
    ) -> Path:
        """A file name in `folder` that does not exist yet. `short` (grids, extras) leaves
        the pattern out: `grid-0000.png`, `00000.png`; `grid`: in the grids' format."""
        extension = (self.grid_extension or self.extension) if grid else self.extension
        if short or context.seed is None:
            pattern = ""
        else:
            default = "[seed]" if self.save_to_dirs else "[seed]-[prompt_spaces]"
            pattern = self.filename_pattern or default
        decoration = apply_pattern(pattern, context) + suffix
        add_number = self.add_number or not decoration
        if decoration and add_number:
            decoration = f"-{decoration}"
        if not add_number:
            return _unique(folder / f"{decoration}.{extension}")
        start = next_sequence_number(folder, basename)
        for offset in range(500):
            number = start + offset
            stem = f"{basename}-{number:04}" if basename else f"{number:05}"
            candidate = folder / f"{stem}{decoration}.{extension}"
            if not candidate.exists():
                return candidate
        return _unique(candidate)


PNG_MODES = ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA")


def write_output(
    image: Any,
    target: Path,
    naming: OutputNaming,
    infotext: str | None,
    params: dict[str, Any] | None = None,
) -> Path:
    """Save a generated image as the saving settings say: its infotext and sdtui's JSON in
    the file unless enable_pnginfo is off, JPEG / WebP at jpeg_quality, and with save_txt
    the infotext in `<name>.txt` beside it (A1111 writes that one either way)."""
    from sdtui.params.image_metadata import save_image

    keep = naming.write_infotext
    path = save_image(
        image,
        target,
        infotext=infotext if keep else None,
        params=params if keep else None,
        jpeg_quality=naming.jpeg_quality,
    )
    if naming.save_txt and infotext is not None:
        text = path.with_suffix(".txt")
        partial = text.with_name(f".{text.name}.part")
        partial.write_text(f"{infotext}\n", encoding="utf-8")
        os.replace(partial, text)
    return path


def save_init_image(image: Any, folder: Path) -> str:
    """A1111's save_init_img: a PIL `image` as `<md5 of image.tobytes()>.png` in `folder`,
    as it was given (its own text chunks kept); returns the md5 ("Init image hash")."""
    from PIL import PngImagePlugin

    digest = hashlib.md5(image.tobytes(), usedforsecurity=False).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    chunks = PngImagePlugin.PngInfo()
    for key, value in image.info.items():
        if isinstance(key, str) and isinstance(value, str):
            chunks.add_text(key, value)
    if image.mode not in PNG_MODES:
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    target = folder / f"{digest}.png"
    partial = target.with_name(f".{target.name}.part")
    image.save(partial, format="PNG", pnginfo=chunks)
    os.replace(partial, target)  # the same pixels keep the same name: overwritten
    return digest


def _unique(path: Path) -> Path:
    """`name.png`, else `name-1.png`, `name-2.png`, ..."""
    candidate, counter = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{counter}{path.suffix}")
        counter += 1
    return candidate
