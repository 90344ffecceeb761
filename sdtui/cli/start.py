"""`sdtui` / `sdtui start`: start the app.

The terminal UI arrives with the TUI issue and the embedded default model with its own
issue; until then `start` prepares the data directory, reports what is there (checkpoints,
device, plugins), points at `sdtui generate`, and says plainly what is still missing.
"""

from __future__ import annotations

import argparse

from sdtui import __version__, hookimpl
from sdtui.cli.options import data_dirs_from
from sdtui.paths import DataDirs
from sdtui.plugins import get_host

MISSING = (
    "the terminal UI (txt2img, img2img, Extras, PNG Info, ... screens) is not built yet;"
    " `sdtui generate --prompt ...` makes images from the command line",
    "the SDXL refiner, LoRA and textual-inversion embeddings are not wired into generation yet",
    "no embedded default model yet: bring your own checkpoint",
)


class StartCommand:
    name = "start"
    help = "start sdtui (the default command)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--no-device", action="store_true", help="skip probing the device (no torch import)"
        )

    def run(self, args: argparse.Namespace) -> int:
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


def describe_data_dir(dirs: DataDirs) -> str:
    from sdtui.models.discovery import discover_checkpoints

    checkpoints = discover_checkpoints(dirs)
    lines = [f"data dir: {dirs.root}", f"checkpoints ({dirs.checkpoints}): {len(checkpoints)}"]
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
