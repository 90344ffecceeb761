"""`sdtui plugins`: which plugins are loaded, their versions and hooks, and what failed.

Plugin modules are kept light (heavy code is imported lazily), so this lists them without
importing torch; versions come from package metadata.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from sdtui import hookimpl
from sdtui.plugins import PluginHost, get_host


class PluginsCommand:
    name = "plugins"
    help = "list installed plugins with their versions and hooks"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--all", action="store_true", help="include the built-in plugins")

    def run(self, args: argparse.Namespace) -> int:
        host = get_host()
        print(render_json(host, args.all) if args.json else render_table(host, args.all))
        return 0


def _rows(host: PluginHost, include_builtin: bool) -> list[dict]:
    return [
        {**asdict(info), "hooks": list(info.hooks)}
        for info in host.plugins()
        if include_builtin or not info.builtin
    ]


def render_json(host: PluginHost, include_builtin: bool) -> str:
    failures = [{"plugin": f.plugin, "stage": f.stage, "error": f.error} for f in host.failures]
    return json.dumps({"plugins": _rows(host, include_builtin), "failures": failures}, indent=2)


def render_table(host: PluginHost, include_builtin: bool) -> str:
    rows = _rows(host, include_builtin)
    lines = []
    if rows:
        width = max(len("NAME"), *(len(row["name"]) for row in rows))
        version_width = max(len("VERSION"), *(len(row["version"]) for row in rows))
        lines.append(f"{'NAME':<{width}}  {'VERSION':<{version_width}}  HOOKS")
        for row in rows:
            hooks = ", ".join(row["hooks"]) or "-"
            lines.append(f"{row['name']:<{width}}  {row['version']:<{version_width}}  {hooks}")
    else:
        hint = "" if include_builtin else " (--all shows the built-in ones)"
        lines.append(f"no third-party plugins installed{hint}")
    lines.extend(f"FAILED  {failure}" for failure in host.failures)
    return "\n".join(lines)


@hookimpl
def register_commands(register) -> None:
    register(PluginsCommand())
