"""`sdtui uninstall NAME`: pip uninstall, from the environment sdtui runs in."""

from __future__ import annotations

import argparse

from sdtui import hookimpl
from sdtui.cli.install import run_pip


class UninstallCommand:
    name = "uninstall"
    help = "uninstall plugins (or any package) with pip from sdtui's environment"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("packages", nargs="+", metavar="NAME", help="packages to remove")
        parser.add_argument("-y", "--yes", action="store_true", help="do not ask")

    def run(self, args: argparse.Namespace) -> int:
        return run_pip(["uninstall", *(["-y"] if args.yes else []), *args.packages])


@hookimpl
def register_commands(register) -> None:
    register(UninstallCommand())
