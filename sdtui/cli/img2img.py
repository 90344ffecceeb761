"""`sdtui img2img`: img2img and inpainting from the command line; prints the paths it wrote.

    sdtui img2img --init photo.png --prompt "oil painting" --denoising-strength 0.6
    sdtui img2img --init photo.png --mask mask.png --prompt "a red hat" --inpainting-fill fill

`--init` is the image to start from, `--mask` a mask of the same picture (white = repaint;
an alpha channel or grey levels, any size: it is stretched over the image). `--mode` is
`img2img`, or `inpaint` (the default with a mask). The size is the image's own (rounded
down to multiples of 8) unless `--width` / `--height`, an infotext's `Size` or `--scale-by`
(A1111's "Resize by") say otherwise; `--resize-mode` says how the image becomes that size.
The schema's flags work as in `sdtui generate` (hires fix aside), with A1111's img2img
defaults (denoising strength 0.75), plus the img2img and inpainting ones: `--resize-mode`,
`--mask-blur`, `--mask-mode`, `--inpainting-fill`, `--inpaint-area`,
`--inpaint-full-res-padding`, `--initial-noise-multiplier`, `--inpainting-mask-weight`,
`--img2img-fix-steps`. Images are saved to `outputs/img2img-images/<date>/` with their
infotext. An init image or mask that cannot be read is an error (exit code 2) before
anything is loaded or written. `--batch-input-dir DIR` runs every image of a folder instead
(A1111's Batch sub-tab; `sdtui.cli.img2img_batch`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from sdtui import hookimpl
from sdtui.cli.generate import (
    GenerateCommand,
    add_schema_flags,
    command_setup,
    params_from_arguments,
    run_job,
)
from sdtui.cli.img2img_batch import add_batch_arguments, run_batch
from sdtui.cli.script_flags import (
    add_script_flags,
    checked_script_inputs,
    script_from_arguments,
    script_help,
)
from sdtui.params.schema import HIRES, img2img_defaults, spec
from sdtui.services.image_files import open_image

MODES = ("img2img", "inpaint")


def img2img_field(name: str) -> bool:
    """The fields img2img uses: all but hires fix's (its denoising strength is img2img's)."""
    return spec(name).section != HIRES or name == "denoising_strength"


def _mode(args: argparse.Namespace) -> str:
    mode = args.mode or ("inpaint" if args.mask else "img2img")
    if mode == "inpaint" and args.mask is None:
        raise ValueError("--mode inpaint needs --mask MASK.png (white = repaint)")
    if mode == "img2img" and args.mask is not None:
        raise ValueError("a mask is for --mode inpaint (leave --mode out to inpaint)")
    return mode


def size_from_image(image: Any, args: argparse.Namespace) -> tuple[int, int]:
    """The image's size times --scale-by (default 1), down to multiples of 8."""
    from sdtui.engine.masking import scale_size

    if args.scale_by is not None and (args.width is not None or args.height is not None):
        raise ValueError("give either --scale-by or --width / --height, not both")
    return scale_size(image.width, image.height, 1.0 if args.scale_by is None else args.scale_by)


class Img2ImgCommand(GenerateCommand):
    name = "img2img"
    help = "img2img and inpainting from an image (and a mask); print the paths written"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        # one of the two is required (checked in _run, so that --help-script needs neither)
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--init", type=Path, help="the image to start from")
        add_batch_arguments(parser, source)
        parser.add_argument("--mask", type=Path, help="inpainting mask (white = repaint)")
        parser.add_argument(
            "--mode", choices=MODES, help="img2img, or inpaint (the default with --mask)"
        )
        parser.add_argument(
            "--scale-by",
            type=float,
            metavar="FLOAT",
            help="size: the init image's times this (A1111's Resize by; default: its own size)",
        )
        parser.add_argument("--model", help="checkpoint name, title, hash or path")
        parser.add_argument("--out", type=Path, help="write images here instead of outputs/")
        parser.add_argument("--from-image", type=Path, help="start from this image's parameters")
        parser.add_argument("--infotext", help="start from this A1111 infotext")
        parser.add_argument(
            "--show", action="store_true", help="print each image in the terminal after its path"
        )
        add_schema_flags(parser, img2img_field, img2img_defaults())
        add_script_flags(parser)

    def _run(self, args: argparse.Namespace) -> int:
        from sdtui.services.generation import RunSettings
        from sdtui.services.img2img_job import Img2ImgJob
        from sdtui.services.requests import prepare_img2img

        if args.help_script:
            return script_help(args, "img2img")
        if args.batch_input_dir is not None:
            return run_batch(args)
        if args.init is None:
            raise ValueError("give --init IMAGE (or --batch-input-dir DIR)")
        script, script_args = script_from_arguments(args, "img2img")
        mode = _mode(args)  # the inputs first: a bad file writes nothing
        init = open_image(args.init, "init image")
        mask = open_image(args.mask, "mask") if mode == "inpaint" else None
        width, height = size_from_image(init, args)
        base = dataclasses.replace(img2img_defaults(), width=width, height=height)
        requested = params_from_arguments(args, base)
        dirs, host, settings, model = command_setup(args, "img2img")
        params = prepare_img2img(
            requested,
            host,
            legacy_schedule=args.schedule is None,
            settings=settings.generation_defaults(),
        )
        script_inputs = checked_script_inputs(
            script, script_args, requested, params, dirs, "img2img"
        )
        naming = settings.output_naming("img2img")
        upscaler = settings["upscaler_for_img2img"]

        def make_job(runtime: Any) -> Img2ImgJob:
            return Img2ImgJob(
                runtime, host, dirs, params, model, out_dir=args.out, naming=naming,
                init_images=[init], mask=mask, resize_upscaler=upscaler,
                run_settings=RunSettings.from_settings(settings), **script_inputs,
            )  # fmt: skip

        return run_job(args, host, make_job, "img2img")


@hookimpl
def register_commands(register) -> None:
    register(Img2ImgCommand())
