"""A1111's Extras postprocessing of one image: upscale (one or two upscalers, blended) and
face restoration (GFPGAN, CodeFormer), returning the image and the `extras` infotext.

    processed = postprocess(image, ExtrasParams(upscaler="R-ESRGAN 4x+"), tools)
    processed.image, processed.infotext   # "Postprocess upscale by: 4, Postprocess upscaler: ..."

Follows `scripts/postprocessing_upscale.py`, `_gfpgan.py` and `_codeformer.py` of A1111 1.10:

* Order: upscale, then GFPGAN, then CodeFormer (A1111's script order); `upscale_first` off
  restores faces first.
* "Scale by" uses the factor; with a max side length the longer side is limited to it (the
  image is then scaled to that size without cropping, "Max side length" in the infotext).
  "Scale to" scales by the larger of the two ratios (the image covers the size), then with
  "Crop to fit" cuts the overhang around the centre.
* Upscaler 1 "None" skips upscaling (not even a resize), as in A1111. Upscaler 2 with a
  visibility above 0 upscales the same input and is blended over the first result.
* Face restorers are blended with the input at their visibility (1: the restored image).
* Upscaled images are kept in a small cache (A1111's `upscaling_max_images_in_cache`), so
  changing only Upscaler 2's visibility or the face settings does not upscale again.

Where sdtui differs: A1111 rounds an upscaled size down to a multiple of 8; sdtui keeps
`int(size * factor)` (the upscaler contract of `sdtui.engine.upscalers`). The image is
processed in RGB (an alpha channel is dropped). Torch is imported only by the upscalers and
face restorers themselves.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from sdtui.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE, Check, Progress, run_upscaler
from sdtui.params.extras_schema import SCALE_TO, ExtrasParams
from sdtui.params.infotext import format_value, quote
from sdtui.services.face_restoration import restore_with

GFPGAN = "GFPGAN"
CODEFORMER = "CodeFormer"
DEFAULT_CACHE_SIZE = 5  # A1111's upscaling_max_images_in_cache


class UpscaleCache:
    """The last few upscaled images, by input pixels and everything that shapes the result."""

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.size = size
        self._images: OrderedDict[tuple[Any, ...], Image.Image] = OrderedDict()

    @staticmethod
    def key(image: Image.Image, *parts: Any) -> tuple[Any, ...]:
        digest = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()
        return (digest, image.size, image.mode, *parts)

    def get(self, key: tuple[Any, ...]) -> Image.Image | None:
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
        return image

    def put(self, key: tuple[Any, ...], image: Image.Image) -> None:
        if self.size <= 0:
            return
        self._images[key] = image
        self._images.move_to_end(key)
        while len(self._images) > self.size:
            self._images.popitem(last=False)

    def __len__(self) -> int:
        return len(self._images)


@dataclass
class ExtrasTools:
    """What postprocessing needs from the outside: the plugin host's upscalers and face
    restorers, the tiling settings (A1111's ESRGAN_tile, ESRGAN_tile_overlap), the cache,
    and the job's interrupt check and progress."""

    host: Any
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    cache: UpscaleCache = field(default_factory=UpscaleCache)
    check: Check | None = None
    progress: Progress | None = None
    status: Callable[[str], None] | None = None  # "Upscaling with ...", "GFPGAN", ...
    unload_faces: bool = False  # face_restoration_unload: restorers back to RAM after use


@dataclass
class Processed:
    image: Image.Image
    info: dict[str, Any]  # A1111's pp.info, in the order A1111 adds the keys

    @property
    def infotext(self) -> str:
        """The `extras` chunk: `key: value` pairs joined by ", " (a key equal to its value
        alone), values quoted like A1111's infotext."""
        parts = []
        for key, value in self.info.items():
            if value is None:
                continue
            text = format_value(value)
            parts.append(key if key == text else f"{key}: {quote(text)}")
        return ", ".join(parts)


def limit_size(width: float, height: float, limit: int) -> tuple[int, int]:
    """A1111's limit_size_by_one_dimention: the longer side down to `limit`, the other in
    proportion (floored); unchanged when it fits or `limit` is 0."""
    if limit and height > width and height > limit:
        width, height = limit * width // height, limit
    elif limit and width > limit:
        width, height = limit, limit * height // width
    return int(width), int(height)


def target_size(image: Image.Image, params: ExtrasParams) -> tuple[int, int]:
    """The size an Extras upscale makes of `image` (what A1111's firstpass announces)."""
    if params.resize_mode == SCALE_TO:
        return params.scale_to_width, params.scale_to_height
    width, height = int(image.width * params.scale), int(image.height * params.scale)
    return limit_size(width, height, params.max_side_length)


def postprocess(image: Image.Image, params: ExtrasParams, tools: ExtrasTools) -> Processed:
    """`image` through the Extras steps `params` asks for (see the module docstring)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    info: dict[str, Any] = {}
    steps = [_upscale_step, _gfpgan_step, _codeformer_step]
    if not params.upscale_first:
        steps = [_gfpgan_step, _codeformer_step, _upscale_step]
    for step in steps:
        image = step(image, params, tools, info)
    return Processed(image, info)


def _upscale_step(
    image: Image.Image, params: ExtrasParams, tools: ExtrasTools, info: dict[str, Any]
) -> Image.Image:
    if not params.upscales:
        return image
    first = tools.host.upscalers.get(params.upscaler)
    second = None
    if params.upscaler_2 != "None" and params.upscaler_2_visibility > 0:
        second = tools.host.upscalers.get(params.upscaler_2)
    result = _upscale(image, first, params, tools, info)
    info["Postprocess upscaler"] = first.name
    if second is not None:
        other = _upscale(image, second, params, tools, info)
        if other.mode != result.mode:
            other = other.convert(result.mode)
        if other.size != result.size:  # an upscaler that ignored the contract's size
            other = other.resize(result.size, resample=Image.Resampling.LANCZOS)
        result = Image.blend(result, other, params.upscaler_2_visibility)
        info["Postprocess upscaler 2"] = second.name
    return result


def _upscale(
    image: Image.Image,
    upscaler: Any,
    params: ExtrasParams,
    tools: ExtrasTools,
    info: dict[str, Any],
) -> Image.Image:
    """A1111's ScriptPostprocessingUpscale.upscale with one upscaler."""
    to_size = params.resize_mode == SCALE_TO
    crop = params.crop_to_fit
    width, height = params.scale_to_width, params.scale_to_height
    if to_size:
        factor = max(width / image.width, height / image.height)
        info["Postprocess upscale to"] = f"{width}x{height}"
    else:
        factor = params.scale
        info["Postprocess upscale by"] = params.scale
        limit = params.max_side_length
        if limit and max(image.size) * factor > limit:
            to_size, crop = True, False
            width, height = limit_size(image.width * factor, image.height * factor, limit)
            factor = max(width / image.width, height / image.height)
            info["Max side length"] = limit
    key = UpscaleCache.key(image, upscaler.name, factor, tools.tile, tools.overlap)
    upscaled = tools.cache.get(key)
    if upscaled is None:
        if tools.status is not None:
            tools.status(f"Upscaling with {upscaler.name}")
        upscaled = run_upscaler(
            upscaler,
            image,
            factor,
            tile=tools.tile,
            overlap=tools.overlap,
            progress=tools.progress,
            check=tools.check,
        )
        tools.cache.put(key, upscaled)
    if to_size and crop:
        upscaled = _crop_to(upscaled, width, height)
        info["Postprocess crop to"] = f"{width}x{height}"
    return upscaled


def _crop_to(image: Image.Image, width: int, height: int) -> Image.Image:
    """The centred `width` x `height` part of an image that covers that size (A1111's
    paste at `size // 2 - image // 2`); a side short by rounding is stretched first."""
    if image.width < width or image.height < height:
        cover = (max(image.width, width), max(image.height, height))
        image = image.resize(cover, resample=Image.Resampling.LANCZOS)
    left, top = image.width // 2 - width // 2, image.height // 2 - height // 2
    return image.crop((left, top, left + width, top + height))


def _gfpgan_step(
    image: Image.Image, params: ExtrasParams, tools: ExtrasTools, info: dict[str, Any]
) -> Image.Image:
    if params.gfpgan_visibility <= 0:
        return image
    image = _restore(image, GFPGAN, params.gfpgan_visibility, tools, {})
    info["GFPGAN visibility"] = round(params.gfpgan_visibility, 3)
    return image


def _codeformer_step(
    image: Image.Image, params: ExtrasParams, tools: ExtrasTools, info: dict[str, Any]
) -> Image.Image:
    if params.codeformer_visibility <= 0:
        return image
    options = {"weight": params.codeformer_weight}
    image = _restore(image, CODEFORMER, params.codeformer_visibility, tools, options)
    info["CodeFormer visibility"] = round(params.codeformer_visibility, 3)
    info["CodeFormer weight"] = round(params.codeformer_weight, 3)
    return image


def _restore(
    image: Image.Image,
    name: str,
    visibility: float,
    tools: ExtrasTools,
    options: dict[str, Any],
) -> Image.Image:
    restorer = tools.host.face_restorers.get(name)
    if tools.check is not None:
        tools.check()
    if tools.status is not None:
        tools.status(f"Restoring faces with {name}")
    restored = restore_with(restorer, image, tools.unload_faces, **options)
    if restored.size != image.size:
        raise ValueError(
            f"face restorer {name!r} returned a {restored.width}x{restored.height} image "
            f"for a {image.width}x{image.height} one"
        )
    if restored.mode != image.mode:
        restored = restored.convert(image.mode)
    if visibility < 1.0:
        restored = Image.blend(image, restored, visibility)
    return restored
