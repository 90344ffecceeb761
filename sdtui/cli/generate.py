"""`sdtui generate`: txt2img from the command line; prints the paths it wrote.

Every parameter of the schema is a flag (`--prompt`, `--negative-prompt`, `--sampler`,
`--schedule`, `--steps`, `--cfg-scale`, `--seed`, `--width`, `--height`, `--batch-count`,
`--batch-size`, ...), derived from `sdtui.params.schema`. `--from-image X.png` or
`--infotext TEXT` start from an image's parameters (A1111's or ours); flags override them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from sdtui import hookimpl
from sdtui.cli.options import data_dirs_from
from sdtui.params.schema import PARAMS, GenerationParams, cli_flag, spec, value_type

SKIPPED_FIELDS = ("model",)  # --model takes a name or a path, handled below


def add_schema_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("generation parameters (defaults as in A1111's UI)")
    defaults = GenerationParams()
    for name in PARAMS:
        if name in SKIPPED_FIELDS:
            continue
        field_spec, kind = spec(name), value_type(name)
        default = getattr(defaults, name)
        shown = "from settings" if default is None else repr(default)
        text = f"{field_spec.help} (default: {shown})"
        if kind is bool:
            group.add_argument(cli_flag(name), action=argparse.BooleanOptionalAction, help=text)
        elif kind is tuple:
            group.add_argument(cli_flag(name), nargs="*", metavar="NAME", help=text)
        else:
            group.add_argument(cli_flag(name), type=kind, metavar=kind.__name__.upper(), help=text)


def params_from_arguments(args: argparse.Namespace) -> GenerationParams:
    from sdtui.params.codec import params_from_infotext

    params = GenerationParams()
    infotext = getattr(args, "infotext", None)
    if getattr(args, "from_image", None):
        from sdtui.params.image_metadata import read_image_metadata

        infotext = read_image_metadata(args.from_image).infotext
        if infotext is None:
            raise ValueError(f"{args.from_image}: the image carries no generation parameters")
    if infotext:
        params = params_from_infotext(infotext).apply_to(params)
    overrides: dict[str, Any] = {}
    for name in PARAMS:
        value = getattr(args, name, None)
        if name not in SKIPPED_FIELDS and value is not None:
            overrides[name] = tuple(value) if value_type(name) is tuple else value
    return dataclasses.replace(params, **overrides)


def canonical_sampler(params: GenerationParams, host: Any, legacy_schedule: bool) -> Any:
    """A1111 names, aliases and legacy "DPM++ 2M Karras" names -> the sampler's own name."""
    from sdtui.params.codec import split_legacy_sampler

    sampler, schedule = params.sampler, None
    if sampler not in host.samplers:
        sampler, schedule = split_legacy_sampler(sampler)
        if sampler not in host.samplers:
            sampler, schedule = params.sampler, None  # let the registry's error list them
    changes = {"sampler": host.samplers.resolve_name(sampler)}
    if schedule and legacy_schedule:
        changes["schedule"] = schedule
    return dataclasses.replace(params, **changes)


class GenerateCommand:
    name = "generate"
    help = "generate images (txt2img) and print the paths written"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", help="checkpoint name, title, hash or path")
        parser.add_argument("--out", type=Path, help="write images here instead of outputs/")
        parser.add_argument("--from-image", type=Path, help="start from this image's parameters")
        parser.add_argument("--infotext", help="start from this A1111 infotext")
        add_schema_flags(parser)

    def run(self, args: argparse.Namespace) -> int:
        from sdtui.models.checkpoint_file import CheckpointError
        from sdtui.models.discovery import ModelNotFoundError
        from sdtui.params.validate import ParameterError
        from sdtui.registry import UnknownNameError

        try:
            return self._run(args)
        except (
            ParameterError,
            ModelNotFoundError,
            CheckpointError,
            UnknownNameError,
            ValueError,
        ) as error:
            print(f"sdtui generate: {error}", file=sys.stderr)
            return 2

    def _run(self, args: argparse.Namespace) -> int:
        from sdtui.params.validate import resolve, validate
        from sdtui.plugins import get_host
        from sdtui.runtime import Runtime
        from sdtui.runtime.jobs import Failed, Finished, Interrupted, Progress
        from sdtui.services.generation import Txt2ImgJob, choose_checkpoint

        dirs = data_dirs_from(args)
        dirs.create()
        host = get_host()
        params = canonical_sampler(params_from_arguments(args), host, args.schedule is None)
        from sdtui.engine.upscale import LATENT_MODES

        schedules = ["Automatic", *host.schedules.names()]
        upscalers = [*LATENT_MODES, *host.upscalers.names()]
        choices = {
            "sampler": host.samplers.names(),
            "schedule": schedules,
            "hires_upscaler": upscalers,
            "hires_schedule": schedules,
        }
        if params.hires_sampler:
            choices["hires_sampler"] = host.samplers.names()
        validate(params, choices)
        params = resolve(params)
        model = choose_checkpoint(dirs, args.model)
        runtime = Runtime.start(device=args.device, precision=args.precision, plugin_host=host)
        runtime.jobs.add_listener(
            lambda event: (
                isinstance(event, Progress)
                and print(
                    f"\r{event.text or ''} step {event.step}/{event.total}", end="", file=sys.stderr
                )
            )
        )
        job = Txt2ImgJob(runtime, host, dirs, params, model, out_dir=args.out)
        handle = runtime.jobs.submit(job, name="txt2img", kind="txt2img")
        try:
            final = handle.wait()
        except KeyboardInterrupt:
            runtime.jobs.interrupt()
            final = handle.wait()
        finally:
            runtime.shutdown()
        print(file=sys.stderr)
        for saved in job.saved:
            print(saved.path)
        if isinstance(final, Failed):
            print(f"sdtui generate: {final.error_message}", file=sys.stderr)
            return 1
        return 0 if isinstance(final, Finished | Interrupted) else 1


@hookimpl
def register_commands(register) -> None:
    register(GenerateCommand())
