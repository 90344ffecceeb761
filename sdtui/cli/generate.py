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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdtui import hookimpl
from sdtui.cli.options import data_dirs_from
from sdtui.cli.script_flags import (
    add_script_flags,
    checked_script_inputs,
    script_from_arguments,
    script_help,
)
from sdtui.params.schema import (
    IMG2IMG,
    INPAINT,
    GenerationParams,
    cli_flag,
    fields_of,
    spec,
    value_type,
)

SKIPPED_FIELDS = ("model",)  # --model takes a name or a path, handled below


def txt2img_field(name: str) -> bool:
    """The fields txt2img uses (img2img's and inpainting's are left out)."""
    return spec(name).section not in (IMG2IMG, INPAINT)


def add_schema_flags(
    parser: argparse.ArgumentParser,
    include: Callable[[str], bool] = txt2img_field,
    defaults: Any = None,
    *,
    title: str = "generation parameters (defaults as in A1111's UI)",
) -> None:
    """A flag for every field of `defaults`' schema (GenerationParams unless given) that
    `include` accepts, its help showing the default."""
    group = parser.add_argument_group(title)
    defaults = defaults if defaults is not None else GenerationParams()
    schema = type(defaults)
    for name in fields_of(schema):
        if name in SKIPPED_FIELDS or not include(name):
            continue
        field_spec, kind = spec(name, schema), value_type(name, schema)
        default = getattr(defaults, name)
        shown = "from settings" if default is None else repr(default)
        text = f"{field_spec.help} (default: {shown})"
        if kind is bool:
            group.add_argument(cli_flag(name), action=argparse.BooleanOptionalAction, help=text)
        elif kind is tuple:
            group.add_argument(cli_flag(name), nargs="*", metavar="NAME", help=text)
        else:
            group.add_argument(cli_flag(name), type=kind, metavar=kind.__name__.upper(), help=text)


def flag_overrides(args: argparse.Namespace, schema: type) -> dict[str, Any]:
    """The schema fields given on the command line (flags left out are None)."""
    overrides: dict[str, Any] = {}
    for name in fields_of(schema):
        value = getattr(args, name, None)
        if name not in SKIPPED_FIELDS and value is not None:
            overrides[name] = tuple(value) if value_type(name, schema) is tuple else value
    return overrides


def params_from_arguments(
    args: argparse.Namespace, base: GenerationParams | None = None
) -> GenerationParams:
    from sdtui.params.codec import params_from_infotext

    params = base or GenerationParams()
    infotext = infotext_argument(args)
    if infotext:
        params = params_from_infotext(infotext).apply_to(params)
    return dataclasses.replace(params, **flag_overrides(args, GenerationParams))


def infotext_argument(args: argparse.Namespace) -> str | None:
    """The infotext `--infotext` gives or `--from-image` carries (None for neither);
    ValueError for an image without one."""
    if getattr(args, "from_image", None):
        from sdtui.params.image_metadata import read_image_metadata

        infotext = read_image_metadata(args.from_image).infotext
        if infotext is None:
            raise ValueError(f"{args.from_image}: the image carries no generation parameters")
        return infotext
    return getattr(args, "infotext", None)


def sized_for(path: Path, params: GenerationParams, args: argparse.Namespace) -> GenerationParams:
    """Without a size from the command line or an infotext, the checkpoint's training
    resolution (128 for the default model, 1024 for SDXL) instead of 512."""
    from sdtui.models.default_model import native_size

    given = (args.width, args.height, args.infotext, args.from_image)
    size = None if any(value is not None for value in given) else native_size(path)
    return dataclasses.replace(params, width=size, height=size) if size else params


class GenerateCommand:
    name = "generate"
    help = "generate images (txt2img) and print the paths written"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", help="checkpoint name, title, hash or path")
        parser.add_argument("--out", type=Path, help="write images here instead of outputs/")
        parser.add_argument("--from-image", type=Path, help="start from this image's parameters")
        parser.add_argument("--infotext", help="start from this A1111 infotext")
        parser.add_argument(
            "--show",
            action="store_true",
            help="print each image in the terminal after its path (term-image when installed:"
            " Kitty / iTerm2 / blocks; otherwise coloured half-blocks)",
        )
        add_schema_flags(parser)
        add_script_flags(parser)

    def run(self, args: argparse.Namespace) -> int:
        return reporting_errors(self.name, self._run, args)

    def _run(self, args: argparse.Namespace) -> int:
        from sdtui.services.generation import RunSettings, Txt2ImgJob
        from sdtui.services.requests import prepare_txt2img

        if args.help_script:
            return script_help(args, "txt2img")
        script, script_args = script_from_arguments(args, "txt2img")
        dirs, host, settings, model = command_setup(args, "generate")
        requested = sized_for(model.path, params_from_arguments(args), args)
        params = prepare_txt2img(
            requested,
            host,
            legacy_schedule=args.schedule is None,
            settings=settings.generation_defaults(),
        )
        script_inputs = checked_script_inputs(
            script, script_args, requested, params, dirs, "txt2img"
        )
        naming = settings.output_naming("txt2img")

        def make_job(runtime: Any) -> Txt2ImgJob:
            return Txt2ImgJob(
                runtime, host, dirs, params, model, out_dir=args.out, naming=naming,
                run_settings=RunSettings.from_settings(settings), **script_inputs,
            )  # fmt: skip

        return run_job(args, host, make_job, "txt2img")


def command_setup(args: argparse.Namespace, command: str) -> tuple[Any, Any, Any, Any]:
    """(data dirs, plugin host, settings, chosen checkpoint) of a generating command (see
    `data_setup`)."""
    from sdtui.services.generation import choose_checkpoint

    dirs, host, settings = data_setup(args, command)
    model = choose_checkpoint(dirs, args.model or settings["sd_model_checkpoint"])
    return dirs, host, settings, model


def data_setup(args: argparse.Namespace, command: str) -> tuple[Any, Any, Any]:
    """(data dirs, plugin host, settings) of a command that runs models, with the upscaler
    files of the data dir registered and the face restorers pointed at its folders; the
    settings file's warnings and unusable upscaler files go to stderr."""
    from sdtui_plugins.builtin.face_restorers import configure_face_restorers
    from sdtui_plugins.builtin.model_upscalers import register_folder_upscalers

    from sdtui.plugins import get_host
    from sdtui.services.settings import Settings

    dirs = data_dirs_from(args)
    dirs.create()
    host = get_host()
    settings = Settings.load(dirs)
    for warning in settings.warnings:
        print(f"sdtui {command}: {warning}", file=sys.stderr)
    for path, reason in register_folder_upscalers(host, dirs):
        print(f"sdtui {command}: upscaler {path} is unusable: {reason}", file=sys.stderr)
    configure_face_restorers(dirs)
    return dirs, host, settings


def reporting_errors(
    command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """`run(args)`, a request's errors printed as `sdtui <command>: ...` with exit code 2."""
    from sdtui.models.checkpoint_file import CheckpointError
    from sdtui.models.discovery import ModelNotFoundError
    from sdtui.params.validate import ParameterError
    from sdtui.registry import UnknownNameError

    try:
        return run(args)
    except (
        ParameterError,
        ModelNotFoundError,
        CheckpointError,
        UnknownNameError,
        ValueError,
    ) as error:
        print(f"sdtui {command}: {error}", file=sys.stderr)
        return 2


def run_job(args: argparse.Namespace, host: Any, make_job: Callable[[Any], Any], kind: str) -> int:
    """Start the runtime, run the job `make_job(runtime)` with progress on stderr, print the
    paths it saved (and the images with --show); exit code 1 when it failed."""
    from sdtui.runtime import Runtime
    from sdtui.runtime.jobs import Failed, Finished, Interrupted, Progress

    runtime = Runtime.start(device=args.device, precision=args.precision, plugin_host=host)
    runtime.jobs.add_listener(
        lambda event: (
            isinstance(event, Progress)
            and print(
                f"\r{event.text or ''} step {event.step}/{event.total}", end="", file=sys.stderr
            )
        )
    )
    job = make_job(runtime)
    handle = runtime.jobs.submit(job, name=kind, kind=kind)
    try:
        final = handle.wait()
    except KeyboardInterrupt:
        runtime.jobs.interrupt()
        final = handle.wait()
    finally:
        runtime.shutdown()
    print(file=sys.stderr)
    for saved in job.saved:
        print(saved.path, flush=True)
        if getattr(args, "show", False):
            from sdtui.cli.show import show_image

            show_image(Path(saved.path))
    if isinstance(final, Failed):
        command = getattr(args, "command", None) or kind
        print(f"sdtui {command}: {final.error_message}", file=sys.stderr)
        return 1
    return 0 if isinstance(final, Finished | Interrupted) else 1


@hookimpl
def register_commands(register) -> None:
    register(GenerateCommand())
