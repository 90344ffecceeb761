"""A1111's SD upscale (`scripts/sd_upscale.py`): upscale the input, then img2img it tile by
tile at the request's width x height and blend the tiles back.

    sdtui img2img --init photo.png --prompt "a castle" --width 512 --height 512 \
        --denoising-strength 0.3 --script "SD upscale" --script-arg upscaler=Lanczos

The input (transparency flattened) is enlarged `scale_factor` times by the chosen upscaler
(sdtui.engine.upscalers.run_upscaler, in tiles of the ESRGAN_tile settings; A1111's
default, "None", leaves it as it is and the factor then does nothing). The result is cut
into tiles of the request's width x height overlapping by `overlap` px (A1111's split_grid,
sdtui.core.tiles), every tile goes through img2img at the request's denoising strength,
`batch_size` tiles per run, and the tiles are blended back over the overlaps (A1111's
combine_grid). Seeds as A1111's: each run's seed is one more than the last run's (a run's
items add their index), and batch count n repeats the whole upscale with seed + n. Tiles
are not saved; each combined image is (the images folder, its first tile's infotext with
A1111's `SD upscale overlap` and `SD upscale upscaler`). Progress counts the steps of every
tile. A mask is not used. A tile larger than the upscaled image is cut to it (A1111 pads it
with black) and runs at its size rounded up to a multiple of 8.
"""

from __future__ import annotations

from typing import Any

from sdtui.services.script_options import ScriptError, ScriptOption


def find_upscaler(host: Any, name: str) -> Any:
    """A registered upscaler by name (any case) or by its position in the list (A1111's
    radio index); ScriptError lists the known ones."""
    from sdtui.registry import UnknownNameError

    names = host.upscalers.names()
    if name.strip().isdigit() and int(name) < len(names):
        name = names[int(name)]
    try:
        return host.upscalers.get(name.strip())
    except UnknownNameError as error:
        raise ScriptError(f"SD upscale: {error}") from None


class SDUpscale:
    """Upscale the input, then img2img it tile by tile (tiles of width x height)."""

    name = "SD upscale"
    aliases = ("sd_upscale",)
    modes = ("img2img",)
    options = (
        ScriptOption("overlap", "Tile overlap", int, 64, minimum=0, maximum=256),
        ScriptOption(
            "upscaler",
            "Upscaler",
            str,
            "None",
            help="a registered upscaler's name (or its index in the list); None: no upscaling",
        ),
        ScriptOption("scale_factor", "Scale Factor", float, 2.0, minimum=1, maximum=4),
    )

    def check(self, request: Any) -> None:
        from sdtui_plugins.builtin.scripts.img2img_tiles import check_overlap

        params = request.params
        find_upscaler(request.host, request.options["upscaler"])
        overlap = request.options["overlap"]
        check_overlap(self.name, "Tile overlap", overlap, params.width, params.height)

    def run(self, context: Any, request: Any) -> None:
        from PIL import Image
        from sdtui_plugins.builtin.scripts.img2img_tiles import fit_tile, request_grid, tile_run

        from sdtui.core.tiles import combine_tiles
        from sdtui.engine.masking import flatten
        from sdtui.engine.upscalers import run_upscaler
        from sdtui.services.scripts import infotext_with

        options, params = request.options, request.params
        upscaler = find_upscaler(request.host, options["upscaler"])
        image = flatten(context.job.init_images[0])
        if upscaler.name != "None":
            tiling = context.job.run_settings  # A1111's ESRGAN_tile settings, as given the job
            image = run_upscaler(
                upscaler, image, options["scale_factor"], tile=tiling.upscaler_tile,
                overlap=tiling.upscaler_tile_overlap, check=context.check,
            )  # fmt: skip
        overlap = options["overlap"]
        grid = request_grid(image.width, image.height, params.width, params.height, overlap)
        tiles = [image.crop(box) for box in grid.boxes()]
        size = params.batch_size
        chunks = [tiles[start : start + size] for start in range(0, len(tiles), size)]
        runs = [
            [
                tile_run(params, grid, params.seed + n + i, len(chunk))
                for i, chunk in enumerate(chunks)
            ]
            for n in range(params.batch_count)
        ]
        context.plan([run for upscale in runs for run in upscale])
        extra = {"SD upscale overlap": overlap, "SD upscale upscaler": upscaler.name}
        for upscale in runs:
            done: list[Any] = []
            first = None
            for run, chunk in zip(upscale, chunks, strict=True):
                made = context.process(run, save=False, init_images=chunk, mask=None)
                first = first or next(iter(made), None)
                made = made + [None] * (len(chunk) - len(made))  # skipped: black, as A1111
                done += [
                    fit_tile(result.image, grid) if result else Image.new("RGB", chunk[0].size)
                    for result in made[: len(chunk)]
                ]
            if first is not None:
                text = infotext_with(first.infotext, extra)
                context.save_image(combine_tiles(grid, done), first, infotext=text)
