"""`sdtui upscale`: A1111's Extras tab from the command line; prints the paths it wrote.

    sdtui upscale photo.png --upscaler "R-ESRGAN 4x+" --scale 4
    sdtui upscale a.png b.png --upscaler Lanczos --scale-to-width 1024 --scale-to-height 768
    sdtui upscale --input-dir in/ --out out/ --upscaler "R-ESRGAN 4x+" --gfpgan-visibility 1

Every Extras parameter is a flag derived from `sdtui.params.extras_schema` (the Extras
screen's controls come from the same declarations). One file is a single image
(`outputs/extras-images/00000.png`); several files or `--input-dir` are a batch whose
outputs keep the input names (A1111's `use_original_name_batch`; `--no-keep-names`).
`--scale-to-width` / `--scale-to-height` without `--resize-mode` mean "Scale to".
Exit codes: 0 all written, 1 an input failed or the job failed, 2 a bad request (nothing
read or written).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from sdtui import hookimpl
from sdtui.cli.generate import (
    add_schema_flags,
    data_setup,
    flag_overrides,
    reporting_errors,
    run_job,
)
from sdtui.params.extras_schema import SCALE_TO, ExtrasParams


class UpscaleCommand:
    name = "upscale"
    help = "upscale images and restore faces (A1111's Extras tab); prints the paths written"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("inputs", nargs="*", type=Path, metavar="IN", help="image files")
        parser.add_argument(
            "--input-dir", type=Path, help="every image in this folder (Batch from Directory)"
        )
        parser.add_argument("--out", type=Path, help="write here instead of outputs/extras-images")
        parser.add_argument(
            "--keep-names",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="batch outputs keep the input names (default: the use_original_name_batch "
            "setting, on)",
        )
        add_schema_flags(
            parser,
            lambda name: True,
            ExtrasParams(),
            title="extras parameters (defaults as in A1111's Extras tab)",
        )

    def run(self, args: argparse.Namespace) -> int:
        return reporting_errors(self.name, self._run, args)

    def _run(self, args: argparse.Namespace) -> int:
        from sdtui.services.extras_job import (
            ExtrasJob,
            ExtrasOptions,
            check_extras_request,
            check_output_folder,
            file_inputs,
            folder_inputs,
        )

        params = params_from_arguments(args)
        if not args.inputs and args.input_dir is None:
            print("sdtui upscale: give image files or --input-dir", file=sys.stderr)
            return 2
        dirs, host, settings = data_setup(args, "upscale")
        params = check_extras_request(params, host)
        batch = args.input_dir is not None or len(args.inputs) > 1
        keep = settings["use_original_name_batch"] if args.keep_names is None else args.keep_names
        try:
            inputs = file_inputs(list(args.inputs), keep_names=batch and keep)
            if args.input_dir is not None:
                inputs += folder_inputs(args.input_dir, keep_names=keep)
            check_output_folder(inputs, args.out)
        except ValueError as error:
            print(f"sdtui upscale: {error}", file=sys.stderr)
            return 2
        job = ExtrasJob(
            host, dirs, params, inputs, ExtrasOptions.from_settings(settings), out_dir=args.out
        )
        code = run_job(args, host, lambda runtime: job, "extras")
        failed = [item for item in job.report if item.status == "failed"]
        for item in failed:
            print(f"sdtui upscale: {item.source}: {item.message}", file=sys.stderr)
        return code or (1 if failed else 0)


def params_from_arguments(args: argparse.Namespace) -> ExtrasParams:
    overrides = flag_overrides(args, ExtrasParams)
    sized = "scale_to_width" in overrides or "scale_to_height" in overrides
    if sized and "resize_mode" not in overrides:
        overrides["resize_mode"] = SCALE_TO
    return dataclasses.replace(ExtrasParams(), **overrides)


@hookimpl
def register_commands(register) -> None:
    register(UpscaleCommand())
