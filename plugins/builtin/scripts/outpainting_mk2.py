"""A1111's Outpainting mk2 (`scripts/outpainting_mk_2.py`): the canvas grows one direction
at a time, the new strip filled with noise matched to the image and inpainted.

    sdtui img2img --init photo.png --prompt "a meadow" --steps 80 --sampler "Euler a" \
        --denoising-strength 0.8 --script "Outpainting mk2" --script-arg direction=right

A1111's algorithm: the growth per side is Poor man's outpainting's (the canvas to the next
multiple of 64, shared between opposite sides). Left, right, up, down in turn: the image
(one per batch item) goes onto a canvas `pixels` larger on that side, rounded up to a
multiple of 64; the mask is white but for a black rectangle over the image, inset by the
mask blur on the new side (PIL's rectangle, both corners included); the canvas is filled
with `matched_noise` (fall-off exponent, colour variation); the part next to the new side,
at most the request's width (height) across, is inpainted ("original" masked content, mask
blur x 4, Whole picture, Inpaint masked), pasted back and the canvas cropped to the grown
size. One img2img run per direction with the whole batch (the request's seed each time);
batch count repeats everything. Each final image is saved (the first run's infotext), and
a grid when there are several.

Where sdtui differs: A1111 also hands the sampler a sharper "latent mask" (inset by twice
the mask blur, unblurred); sdtui's img2img takes one mask. A strip whose size is not a
multiple of 8 runs at the next one up and is resized back. As in A1111, the rectangle's
right (bottom) edge is measured from the canvas rounded up to 64, so where the grown size
is not a multiple of 64 the mask keeps part of the new strip as the black canvas (only the
blur repaints it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from sdtui_plugins.builtin.scripts.poor_mans_outpainting import (
    DIRECTION_OPTION,
    canvas_of,
    parse_directions,
)

from sdtui.services.script_options import ScriptOption


def _up_to(length: int, step: int) -> int:
    return math.ceil(length / step) * step


@dataclasses.dataclass(frozen=True)
class Strip:
    """One direction's growth of an image: the canvas (rounded up to 64), where the grown
    image ends in it, the part to inpaint and the mask over the canvas."""

    side: str
    canvas_size: tuple[int, int]
    grown: tuple[int, int]  # width, height after this step
    crop: tuple[int, int, int, int]
    mask: Any  # L, canvas_size


def strip_of(size: tuple[int, int], side: str, pixels: int, blur: int, tile: tuple) -> Strip:
    """A1111's `expand` geometry for an image of `size` grown by `pixels` on `side`, the
    inpainted part at most `tile` (the request's width, height) across."""
    from PIL import Image, ImageDraw

    horizontal = side in ("left", "right")
    grown = (size[0] + (pixels if horizontal else 0), size[1] + (0 if horizontal else pixels))
    width, height = _up_to(grown[0], 64), _up_to(grown[1], 64)
    mask = Image.new("L", (width, height), "white")
    ImageDraw.Draw(mask).rectangle(
        (
            pixels + blur if side == "left" else 0,
            pixels + blur if side == "up" else 0,
            width - pixels - blur if side == "right" else grown[0],
            height - pixels - blur if side == "down" else grown[1],
        ),
        fill="black",
    )
    across = min(tile[0], grown[0]) if horizontal else width
    down = height if horizontal else min(tile[1], grown[1])
    left = 0 if side == "left" else width - across
    top = 0 if side == "up" else height - down
    return Strip(side, (width, height), grown, (left, top, left + across, top + down), mask)


def fill_strip(image: Any, strip: Strip, fall_off: float, color_variation: float) -> Any:
    """The image on the strip's canvas, its masked part matched noise (RGB)."""
    import numpy as np
    from PIL import Image
    from sdtui_plugins.builtin.scripts.matched_noise import matched_noise

    canvas = Image.new("RGB", strip.canvas_size)
    offset = strip.grown[0] - image.width if strip.side == "left" else 0
    canvas.paste(image, (offset, strip.grown[1] - image.height if strip.side == "up" else 0))
    pixels = np.asarray(canvas) / 255.0
    mask = np.repeat((np.asarray(strip.mask) / 255.0)[:, :, None], 3, axis=2)
    noised = matched_noise(pixels, mask, fall_off, color_variation)
    return Image.fromarray(np.clip(noised * 255.0, 0.0, 255.0).astype(np.uint8), "RGB")


class OutpaintingMk2:
    """Grow the canvas one direction at a time, filling with matched noise, inpainting."""

    name = "Outpainting mk2"
    aliases = ("outpainting_mk_2", "outpainting_mk2")
    modes = ("img2img",)
    options = (
        ScriptOption("pixels", "Pixels to expand", int, 128, minimum=8, maximum=256),
        ScriptOption("mask_blur", "Mask blur", int, 8, minimum=0, maximum=64),
        DIRECTION_OPTION,
        ScriptOption(
            "noise_q", "Fall-off exponent (lower=higher detail)", float, 1.0, minimum=0, maximum=4
        ),
        ScriptOption("color_variation", "Color variation", float, 0.05, minimum=0, maximum=1),
    )

    def check(self, request: Any) -> None:
        parse_directions(request.options["direction"])

    def run(self, context: Any, request: Any) -> None:
        from PIL import Image
        from sdtui_plugins.builtin.scripts.img2img_tiles import multiple_of_8

        from sdtui.engine.images import image_grid
        from sdtui.engine.masking import flatten

        options, params = request.options, request.params
        blur = options["mask_blur"]
        init = flatten(context.job.init_images[0])
        directions = parse_directions(options["direction"])
        canvas = canvas_of(init.width, init.height, options["pixels"], directions)
        grow = {"left": canvas.left, "right": canvas.right, "up": canvas.up, "down": canvas.down}
        sides = [side for side in ("left", "right", "up", "down") if grow[side] > 0]
        base = dataclasses.replace(
            params,
            mask_blur=4 * blur,
            inpainting_fill="original",
            inpaint_area="Whole picture",
            mask_mode="Inpaint masked",
            resize_mode="Just resize",
            batch_count=1,
            seed=-1 if request.random_seed else params.seed,  # A1111: -1 draws every run
        )
        context.plan([base] * (len(sides) * params.batch_count))
        finals: list[Any] = []
        first = None
        for _ in range(params.batch_count):
            images = [init] * params.batch_size
            for side in sides:
                strip = strip_of(
                    images[0].size, side, grow[side], blur, (params.width, params.height)
                )
                filled = [
                    fill_strip(image, strip, options["noise_q"], options["color_variation"])
                    for image in images
                ]
                box = strip.crop
                size = (box[2] - box[0], box[3] - box[1])
                run = dataclasses.replace(
                    base,
                    width=multiple_of_8(size[0]),
                    height=multiple_of_8(size[1]),
                    batch_size=len(images),
                )
                made = context.process(
                    run,
                    save=False,
                    init_images=[image.crop(box) for image in filled],
                    mask=strip.mask.crop(box),
                )
                first = first or next(iter(made), None)
                for index, result in enumerate(made[: len(filled)]):
                    part = result.image
                    if part.size != size:
                        part = part.resize(size, resample=Image.Resampling.LANCZOS)
                    filled[index].paste(part, box[:2])
                images = [image.crop((0, 0, *strip.grown)) for image in filled]
            finals += images
        if first is None:
            return
        for image in finals:
            context.save_image(image, first)
        if len(finals) > 1:
            context.save_grid(image_grid(finals, params.batch_size), first)
