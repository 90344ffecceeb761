"""Parameters inside image files, where A1111 and its peers put them.

PNG: the infotext in the `parameters` text chunk (what A1111, Forge, ComfyUI's loaders and
the usual metadata readers look at) plus our resolved parameters as JSON in an
`sdtui_params` chunk. JPEG and WebP: the infotext in EXIF UserComment with piexif's
"UNICODE" encoding, as A1111 writes it. GIF: the comment. Writes are atomic (a temporary
file, then `os.replace`), so an interrupted save never leaves a half-written image.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

PARAMETERS_KEY = "parameters"
JSON_KEY = "sdtui_params"
EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
UNICODE_PREFIX = b"UNICODE\x00"
ASCII_PREFIX = b"ASCII\x00\x00\x00"
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}


@dataclass
class ImageMetadata:
    infotext: str | None = None
    params: dict[str, Any] | None = None  # our JSON chunk, if present
    items: dict[str, str] = field(default_factory=dict)  # every other text item, raw


def encode_user_comment(text: str) -> bytes:
    return UNICODE_PREFIX + text.encode("utf-16-be", errors="replace")


def decode_user_comment(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    prefix, body = data[:8], data[8:]
    if prefix == UNICODE_PREFIX:
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return body.decode("utf-16")
        return body.decode("utf-16-be", errors="replace")
    if prefix in (ASCII_PREFIX, b"\x00" * 8):
        return body.decode("ascii", errors="replace").rstrip("\x00")
    return data.decode("utf-8", errors="replace").rstrip("\x00")


def save_image(
    image: Image.Image,
    path: str | os.PathLike[str],
    *,
    infotext: str | None = None,
    params: Mapping[str, Any] | None = None,
    extra_text: Mapping[str, str] | None = None,
    jpeg_quality: int = 80,
    webp_lossless: bool = False,
) -> Path:
    """Write `image` with its parameters, atomically; the format follows the suffix."""
    path = Path(path)
    image_format = FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: unknown image format; known: {', '.join(FORMATS)}")
    options = _format_options(
        image_format, infotext, params, extra_text, jpeg_quality, webp_lossless
    )
    if image_format in ("JPEG",) and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        image.save(temporary, format=image_format, **options)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _format_options(
    image_format: str,
    infotext: str | None,
    params: Mapping[str, Any] | None,
    extra_text: Mapping[str, str] | None,
    jpeg_quality: int,
    webp_lossless: bool,
) -> dict[str, Any]:
    if image_format == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in (extra_text or {}).items():
            info.add_text(key, value)
        if infotext is not None:
            info.add_text(PARAMETERS_KEY, infotext)
        if params is not None:
            info.add_text(JSON_KEY, json.dumps(params, ensure_ascii=False, sort_keys=True))
        return {"pnginfo": info}
    if image_format == "GIF":
        return {"comment": infotext.encode("utf-8")} if infotext else {}
    options: dict[str, Any] = {"quality": jpeg_quality}
    if image_format == "WEBP" and webp_lossless:
        options = {"lossless": True}
    if infotext is not None:
        exif = Image.Exif()
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = encode_user_comment(infotext)
        options["exif"] = exif.tobytes()
    return options


def read_image_metadata(path: str | os.PathLike[str]) -> ImageMetadata:
    """The parameters an image carries, from whichever place its format keeps them."""
    try:
        with Image.open(path) as image:
            return image_metadata(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from error


def image_metadata(image: Image.Image) -> ImageMetadata:
    """The parameters an open image carries (its text chunks, EXIF UserComment or comment)."""
    info = dict(image.info)
    exif = image.getexif()
    items = {str(k): v for k, v in info.items() if isinstance(v, str)}
    metadata = ImageMetadata(items=items)
    metadata.infotext = items.pop(PARAMETERS_KEY, None)
    raw_json = items.pop(JSON_KEY, None)
    if raw_json:
        try:
            metadata.params = json.loads(raw_json)
        except ValueError:
            items[JSON_KEY] = raw_json
    if metadata.infotext is None:
        comment = exif.get_ifd(EXIF_IFD).get(USER_COMMENT)
        if comment:
            metadata.infotext = decode_user_comment(comment)
        elif isinstance(info.get("comment"), bytes):
            metadata.infotext = info["comment"].decode("utf-8", errors="replace")
    return metadata
