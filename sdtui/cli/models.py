"""`sdtui models`: the checkpoints and VAEs sdtui sees, as A1111 names them.

Listing never reads the files; `--hash` computes (and caches) A1111's model hashes.
"""

from __future__ import annotations

import argparse
import json

from sdtui import hookimpl
from sdtui.cli.options import data_dirs_from


class ModelsCommand:
    name = "models"
    help = "list checkpoints and VAEs in the data directory"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument(
            "--hash", action="store_true", help="compute A1111's model hashes (reads every file)"
        )

    def run(self, args: argparse.Namespace) -> int:
        from sdtui.models.discovery import discover_checkpoints, discover_vaes

        dirs = data_dirs_from(args)
        checkpoints = discover_checkpoints(dirs)
        vaes = discover_vaes(dirs)
        rows = [
            {
                "name": checkpoint.name,
                "model_name": checkpoint.model_name,
                "path": str(checkpoint.path),
                "hash": checkpoint.short_hash if args.hash else None,
            }
            for checkpoint in checkpoints
        ]
        if args.json:
            vae_rows = {name: str(path) for name, path in vaes.items()}
            print(json.dumps({"checkpoints": rows, "vaes": vae_rows}, indent=2))
            return 0
        print(
            f"checkpoints in {dirs.checkpoints}:"
            if rows
            else f"no checkpoints in {dirs.checkpoints}"
        )
        for row in rows:
            print(f"  {row['name']}" + (f" [{row['hash']}]" if row["hash"] else ""))
        print(f"VAEs in {dirs.vae}:" if vaes else f"no VAEs in {dirs.vae}")
        for name in vaes:
            print(f"  {name}")
        return 0


@hookimpl
def register_commands(register) -> None:
    register(ModelsCommand())
