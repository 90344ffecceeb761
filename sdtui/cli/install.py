"""`sdtui install NAME`: pip install, in the environment sdtui runs in.

Installs keep the torch and torchvision already installed (a pip constraint pins them), so
a plugin cannot silently swap a working CUDA build for a multi-GB download of another one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from sdtui import hookimpl

PINNED = ("torch", "torchvision")


def pinned_constraints() -> str:
    lines = []
    for name in PINNED:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "\n".join(lines) + "\n"


def run_pip(arguments: list[str]) -> int:
    return subprocess.call([sys.executable, "-m", "pip", *arguments])


class InstallCommand:
    name = "install"
    help = "install plugins (or any package) with pip into sdtui's environment"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("packages", nargs="*", metavar="NAME", help="packages to install")
        parser.add_argument("-U", "--upgrade", action="store_true", help="upgrade if installed")
        parser.add_argument(
            "-e", "--editable", metavar="PATH", help="install a local plugin in editable mode"
        )

    def run(self, args: argparse.Namespace) -> int:
        if not args.packages and not args.editable:
            print("sdtui install: name at least one package (or -e PATH)", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory() as folder:
            constraints = Path(folder) / "keep-torch.txt"
            constraints.write_text(pinned_constraints())
            arguments = ["install", "-c", str(constraints)]
            if args.upgrade:
                arguments.append("--upgrade")
            if args.editable:
                arguments += ["-e", args.editable]
            return run_pip(arguments + list(args.packages))


@hookimpl
def register_commands(register) -> None:
    register(InstallCommand())
