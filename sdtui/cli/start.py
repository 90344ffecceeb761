"""`sdtui` / `sdtui start`: start the terminal app.

`sdtui start --check` prints what the app would start with (data dir, checkpoints, device,
plugins, what is not built yet) and exits, for scripts and for diagnosing a machine.
"""

from __future__ import annotations

import argparse

from sdtui import __version__, hookimpl
from sdtui.cli.options import data_dirs_from
from sdtui.paths import DataDirs
from sdtui.plugins import get_host

MISSING = (
    "the Checkpoint Merger and Train tabs",
    "interrogators (CLIP, DeepBooru)",
    "depth and unCLIP conditioning",
)


class StartCommand:
    name = "start"
    help = "start sdtui (the default command)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="print what sdtui would start with (checkpoints, device, plugins) and exit",
        )
        parser.add_argument(
            "--no-device", action="store_true", help="with --check: skip probing the device"
        )
        parser.add_argument(
            "--graphics",
            choices=("auto", "kitty", "sixel", "halfblock"),
            help="how images are drawn in the terminal (default: the `graphics` setting, "
            "auto = detect)",
        )

    def run(self, args: argparse.Namespace) -> int:
        if not getattr(args, "check", False):
            return run_app(args)
        return self.check(args)

    def check(self, args: argparse.Namespace) -> int:
        dirs = data_dirs_from(args)
        dirs.create()
        print(f"sdtui {__version__}")
        print(describe_data_dir(dirs))
        if not getattr(args, "no_device", False):
            print(describe_device(args))
        host = get_host()
        print(f"plugins: {len(host.plugins())} loaded, {len(host.failures)} failed")
        print("not available yet:")
        for item in MISSING:
            print(f"  - {item}")
        return 0


def run_app(args: argparse.Namespace) -> int:
    """Start the TUI (the first frame paints before torch is imported)."""
    import sys

    from sdtui.widgets.image_view import prepare_graphics

    if not sys.stdin.isatty() or not sys.stdout.isatty():
        print(
            "sdtui: the app needs a terminal; `sdtui start --check` reports without one",
            file=sys.stderr,
        )
        return 2
    from sdtui.app import SdtuiApp
    from sdtui.services.backend import Backend

    dirs = data_dirs_from(args)
    dirs.create()
    backend = Backend(
        dirs, device=getattr(args, "device", None), precision=getattr(args, "precision", None)
    )
    prepare_graphics(getattr(args, "graphics", None) or backend.user_settings["graphics"])
    SdtuiApp(backend).run()
    return 0


def describe_data_dir(dirs: DataDirs) -> str:
    from sdtui.models.discovery import discover_checkpoints

    checkpoints = discover_checkpoints(dirs)
    lines = [f"data dir: {dirs.root}", f"checkpoints ({dirs.checkpoints}): {len(checkpoints)}"]
    if checkpoints and checkpoints[0].embedded:
        lines[-1] = f"checkpoints ({dirs.checkpoints}): none of yours"
        lines.append(f"  using sdtui's embedded default model: {checkpoints[0].path}")
        checkpoints = []
    else:
        lines += [f"  {checkpoint.name}" for checkpoint in checkpoints[:20]]
    if len(checkpoints) > 20:
        lines.append(f"  ... and {len(checkpoints) - 20} more (`sdtui models` lists all)")
    if not checkpoints:
        lines.append(
            f"  put Stable Diffusion checkpoints (.safetensors / .ckpt) into {dirs.checkpoints}"
        )
    return "\n".join(lines)


def describe_device(args: argparse.Namespace) -> str:
    from sdtui.runtime.device import choose_device, choose_dtype, describe

    try:
        device = choose_device(getattr(args, "device", None))
        dtype = choose_dtype(device, getattr(args, "precision", None))
    except ValueError as error:
        return f"device: {error}"
    return f"device: {describe(device, dtype)}"


@hookimpl
def register_commands(register) -> None:
    register(StartCommand())
