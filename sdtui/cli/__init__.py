"""The `sdtui` command line.

Subcommands are objects registered through the `register_commands` hook (one module per
command under `sdtui/cli/`, and third-party plugins add their own), so adding a command never
edits this file. With no subcommand, `sdtui` runs `start`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sdtui import __version__
from sdtui.cli.options import add_common_options
from sdtui.plugins import PluginHost, get_host

DEFAULT_COMMAND = "start"


def build_parser(host: PluginHost) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdtui",
        description="AUTOMATIC1111-class Stable Diffusion studio for the terminal.",
    )
    parser.add_argument("--version", action="version", version=f"sdtui {__version__}")
    add_common_options(parser, suppress_defaults=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in host.commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        add_common_options(sub, suppress_defaults=True)
        command.add_arguments(sub)
    return parser


def report_plugin_failures(host: PluginHost) -> None:
    for failure in host.failures:
        print(f"warning: {failure}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    host = get_host()
    parser = build_parser(host)
    args = parser.parse_args(argv)
    name = args.command or DEFAULT_COMMAND
    if name != "plugins":  # `sdtui plugins` shows failures in its own output
        report_plugin_failures(host)
    if name not in host.commands:
        parser.error(f"command {name!r} is not available (its plugin did not load)")
    try:
        return int(host.commands.get(name).run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
