"""`sdtui img2img --batch-input-dir DIR`: A1111's img2img Batch sub-tab from the command line.

    sdtui img2img --batch-input-dir in/ --batch-output-dir out/ --prompt "oil painting"
    sdtui img2img --batch-input-dir in/ --batch-mask-dir masks/ --batch-png-info prompt,seed
    sdtui img2img --batch-input-dir in/ --batch-output-dir out/ --batch-skip-existing

Every image of the input folder is run as `sdtui img2img --init` would run it, in one job
(`sdtui.services.img2img_batch` has A1111's rules: masks matched by name, PNG info, names in
the output folder). Without `--width` / `--height` (or an infotext's size) each image keeps
its own size, times `--scale-by`. The paths written go to stdout as they are for one image;
then a summary to stderr ("3 done (3 images written), 1 failed: bad.png: ...").

Exit codes: 0 when every input was done (or skipped: its output exists, or Skip); 1 when
any input failed or the job failed, after the other inputs ran (A1111 carries on past a bad
file too; the code tells a script to look); 2 for a bad request, before anything is loaded:
no input folder, no images in it, a missing mask folder, `--init` or `--out` with a batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sdtui.services.img2img_batch import PNG_INFO_FIELDS, BatchSpec, parse_png_info

ALL_PNG_INFO = ",".join(PNG_INFO_FIELDS)


def png_info_argument(text: str) -> tuple[str, ...]:
    try:
        return parse_png_info(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_batch_arguments(parser: argparse.ArgumentParser, source: Any) -> None:
    """The batch flags; `--batch-input-dir` goes into `source`, the group that holds
    `--init` (one of the two is required)."""
    source.add_argument(
        "--batch-input-dir",
        type=Path,
        metavar="DIR",
        help="img2img every image in DIR (A1111's Batch sub-tab) instead of one --init",
    )
    group = parser.add_argument_group("img2img batch (with --batch-input-dir)")
    group.add_argument(
        "--batch-output-dir",
        type=Path,
        metavar="DIR",
        help="write the images here, named after their input (default: outputs/img2img-images)",
    )
    group.add_argument(
        "--batch-mask-dir",
        type=Path,
        metavar="DIR",
        help="inpaint with the mask of the same name (one mask in DIR: for every image)",
    )
    group.add_argument(
        "--batch-png-info",
        type=png_info_argument,
        nargs="?",
        const=parse_png_info(ALL_PNG_INFO),
        metavar="FIELDS",
        help="take these from each image's infotext (prompts are appended): comma-separated, "
        f"of {ALL_PNG_INFO} (alone: all of them)",
    )
    group.add_argument(
        "--batch-png-info-dir",
        type=Path,
        metavar="DIR",
        help="read the infotext from the file of the same name in DIR instead",
    )
    group.add_argument(
        "--batch-skip-existing",
        action="store_true",
        help="skip images whose output is already in --batch-output-dir (reruns)",
    )


def batch_spec(args: argparse.Namespace) -> BatchSpec:
    """The batch the flags ask for, checked (ValueError: exit code 2, nothing loaded)."""
    for flag, value in (("--mask", args.mask), ("--mode", args.mode), ("--out", args.out)):
        if value is not None:
            other = {"--out": "--batch-output-dir", "--mask": "--batch-mask-dir"}.get(flag)
            instead = f"; use {other}" if other else ""
            raise ValueError(f"{flag} is for one --init image, not a batch{instead}")
    sized = any(v is not None for v in (args.width, args.height, args.infotext, args.from_image))
    if args.scale_by is not None and (args.width is not None or args.height is not None):
        raise ValueError("give either --scale-by or --width / --height, not both")
    scale = args.scale_by if args.scale_by is not None else (None if sized else 1.0)
    spec = BatchSpec(
        args.batch_input_dir,
        output_dir=args.batch_output_dir,
        mask_dir=args.batch_mask_dir,
        png_info=args.batch_png_info or (),
        png_info_dir=args.batch_png_info_dir,
        skip_existing=args.batch_skip_existing,
        scale_by=scale,
    )
    spec.check()
    return spec


def run_batch(args: argparse.Namespace) -> int:
    """Run the batch; print the paths written, then the summary (stderr)."""
    from sdtui.cli.generate import command_setup, params_from_arguments, run_job
    from sdtui.cli.script_flags import checked_script_inputs, script_from_arguments
    from sdtui.params.schema import img2img_defaults
    from sdtui.services.generation import RunSettings
    from sdtui.services.img2img_batch import Img2ImgBatchJob, summary
    from sdtui.services.requests import prepare_img2img

    spec = batch_spec(args)  # before anything is loaded or created
    script, script_args = script_from_arguments(args, "img2img")  # A1111: runs on each input
    requested = params_from_arguments(args, img2img_defaults())
    dirs, host, settings, model = command_setup(args, "img2img")
    params = prepare_img2img(
        requested, host, legacy_schedule=args.schedule is None,
        settings=settings.generation_defaults(),
    )  # fmt: skip
    script_inputs = checked_script_inputs(script, script_args, requested, params, dirs, "img2img")
    naming = settings.output_naming("img2img")
    upscaler = settings["upscaler_for_img2img"]
    jobs: list[Img2ImgBatchJob] = []

    def make_job(runtime: Any) -> Img2ImgBatchJob:
        job = Img2ImgBatchJob(
            runtime, host, dirs, params, model, naming=naming, resize_upscaler=upscaler,
            batch=spec, run_settings=RunSettings.from_settings(settings), **script_inputs,
        )  # fmt: skip
        jobs.append(job)
        return job

    code = run_job(args, host, make_job, "img2img")
    report = jobs[0].report if jobs else []
    total = jobs[0].total if jobs else None
    print(f"sdtui img2img: {summary(report, total)}", file=sys.stderr)
    failed = any(item.status == "failed" for item in report)
    return 1 if failed else code
