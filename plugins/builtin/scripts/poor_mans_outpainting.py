"""A1111's Poor man's outpainting (`scripts/poor_mans_outpainting.py`): a bigger canvas
with the input in it, its new border inpainted tile by tile.

    sdtui img2img --init photo.png --prompt "a meadow" --denoising-strength 0.8 \
        --script "Poor man's outpainting" --script-arg pixels=64 --script-arg direction=left,right

A1111's algorithm: the canvas grows by `pixels` in each chosen direction and then to the
next multiple of 64 on each axis (the growth shared between the two sides in proportion:
left gets pixels * extra // (left + right), right the rest); the input sits in it, the new
border black. The mask is white except a black rectangle over the input, inset by twice the
mask blur on every side that grew (drawn as PIL draws rectangles: both corners included).
The canvas and the mask are cut into tiles of the request's width x height overlapping by
`pixels` (sdtui.core.tiles, A1111's split_grid); each tile that reaches into the border is
inpainted on its own (mask blur doubled, Whole picture, the chosen masked content; batch
size and count 1, the seed + 1 for each tile), the tiles inside the input are kept, and
all are blended back (A1111's combine_grid). Only the combined image is saved (the images
folder, the first tile's infotext).

Where sdtui differs: A1111 also hands the sampler a second, sharper "latent mask" (the
rectangle inset by mask blur // 2, unblurred); sdtui's img2img takes one mask, so the
latents are repainted where the blurred mask is (as any inpainting). The mask mode is
always "Inpaint masked" (A1111 keeps an "Inpaint not masked" from the inpaint tab, which
would repaint the input instead). A tile larger than the canvas is cut to it, not padded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sdtui.params.schema import MASKED_CONTENT
from sdtui.services.script_options import ScriptError, ScriptOption

DIRECTIONS = ("left", "right", "up", "down")
DIRECTION_OPTION = ScriptOption(
    "direction",
    "Outpainting direction",
    str,
    ", ".join(DIRECTIONS),
    help="any of left, right, up, down (commas or spaces)",
)


def parse_directions(text: str) -> tuple[str, ...]:
    """`"left, up"` -> ("left", "up"); ScriptError for an unknown or missing direction."""
    words = [word.strip().casefold() for word in text.replace(",", " ").split()]
    unknown = [word for word in words if word not in DIRECTIONS]
    if unknown or not words:
        what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "none given"
        raise ScriptError(
            f"Poor man's outpainting: Outpainting direction: {what}; "
            f"choose from {', '.join(DIRECTIONS)}"
        )
    return tuple(direction for direction in DIRECTIONS if direction in words)


@dataclass(frozen=True)
class Canvas:
    width: int
    height: int
    left: int
    right: int
    up: int
    down: int

    @property
    def inner(self) -> tuple[int, int, int, int]:
        """Where the input lies: left, top, right, bottom (exclusive)."""
        return self.left, self.up, self.width - self.right, self.height - self.down

    def inside(self, box: tuple[int, int, int, int]) -> bool:
        """Whether a tile lies within the input (A1111 keeps such tiles as they are)."""
        left, top, right, bottom = self.inner
        return box[0] >= left and box[1] >= top and box[2] <= right and box[3] <= bottom


def canvas_of(width: int, height: int, pixels: int, directions: tuple[str, ...]) -> Canvas:
    """A1111's enlarged canvas for a `width` x `height` input."""
    left, right, up, down = (pixels if d in directions else 0 for d in DIRECTIONS)
    target_width = math.ceil((width + left + right) / 64) * 64
    target_height = math.ceil((height + up + down) / 64) * 64
    if left > 0:
        left = left * (target_width - width) // (left + right)
    if right > 0:
        right = target_width - width - left
    if up > 0:
        up = up * (target_height - height) // (up + down)
    if down > 0:
        down = target_height - height - up
    return Canvas(target_width, target_height, left, right, up, down)


def outpaint_mask(canvas: Canvas, mask_blur: int) -> Any:
    """White (repaint) but for the input's rectangle, inset by 2 x blur where it grew."""
    from PIL import Image, ImageDraw

    inset = 2 * mask_blur
    mask = Image.new("L", (canvas.width, canvas.height), "white")
    ImageDraw.Draw(mask).rectangle(
        (
            canvas.left + (inset if canvas.left > 0 else 0),
            canvas.up + (inset if canvas.up > 0 else 0),
            canvas.width - canvas.right - (inset if canvas.right > 0 else 0),
            canvas.height - canvas.down - (inset if canvas.down > 0 else 0),
        ),
        fill="black",
    )
    return mask


class PoorMansOutpainting:
    """Enlarge the canvas and inpaint the new border, tile by tile."""

    name = "Poor man's outpainting"
    aliases = ("poor_mans_outpainting",)
    modes = ("img2img",)
    options = (
        ScriptOption("pixels", "Pixels to expand", int, 128, minimum=8, maximum=256),
        ScriptOption("mask_blur", "Mask blur", int, 4, minimum=0, maximum=64),
        ScriptOption("inpainting_fill", "Masked content", str, "fill", choices=MASKED_CONTENT),
        DIRECTION_OPTION,
    )

    def check(self, request: Any) -> None:
        from sdtui_plugins.builtin.scripts.img2img_tiles import check_overlap

        parse_directions(request.options["direction"])
        params = request.params
        pixels = request.options["pixels"]
        check_overlap(self.name, "Pixels to expand", pixels, params.width, params.height)

    def run(self, context: Any, request: Any) -> None:
        import dataclasses

        from PIL import Image
        from sdtui_plugins.builtin.scripts.img2img_tiles import fit_tile, request_grid, tile_run

        from sdtui.core.tiles import combine_tiles
        from sdtui.engine.masking import flatten

        options, params = request.options, request.params
        pixels, blur = options["pixels"], options["mask_blur"]
        init = flatten(context.job.init_images[0])
        canvas = canvas_of(init.width, init.height, pixels, parse_directions(options["direction"]))
        image = Image.new("RGB", (canvas.width, canvas.height))
        image.paste(init, (canvas.left, canvas.up))
        mask = outpaint_mask(canvas, blur)
        grid = request_grid(canvas.width, canvas.height, params.width, params.height, pixels)
        boxes = list(grid.boxes())
        work = [index for index, box in enumerate(boxes) if not canvas.inside(box)]
        base = dataclasses.replace(
            params,
            mask_blur=2 * blur,
            inpainting_fill=options["inpainting_fill"],
            inpaint_area="Whole picture",
            mask_mode="Inpaint masked",
        )
        runs = [tile_run(base, grid, params.seed + number) for number in range(len(work))]
        context.plan(runs)
        tiles = [image.crop(box) for box in boxes]
        first = None
        for index, run in zip(work, runs, strict=True):
            box = boxes[index]
            made = context.process(run, save=False, init_images=[tiles[index]], mask=mask.crop(box))
            if made:
                tiles[index] = fit_tile(made[0].image, grid)
                first = first or made[0]
            else:  # skipped: black, as A1111
                tiles[index] = Image.new("RGB", tiles[index].size)
        if first is not None:
            context.save_image(combine_tiles(grid, tiles), first)
