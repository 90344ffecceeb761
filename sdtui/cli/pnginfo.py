"""`sdtui pnginfo IMAGE`: the generation parameters an image carries (A1111's PNG Info)."""

from __future__ import annotations

import argparse
import json
import sys

from sdtui import hookimpl


class PngInfoCommand:
    name = "pnginfo"
    help = "show the generation parameters stored in an image (PNG, JPEG, WebP, GIF)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("image", help="the image file")
        parser.add_argument("--json", action="store_true", help="print the parsed parameters")

    def run(self, args: argparse.Namespace) -> int:
        from sdtui.params.codec import params_from_infotext
        from sdtui.params.image_metadata import read_image_metadata

        try:
            metadata = read_image_metadata(args.image)
        except (OSError, ValueError) as error:
            print(f"sdtui pnginfo: {error}", file=sys.stderr)
            return 1
        if not args.json:
            if metadata.infotext is None:
                print(f"{args.image}: no generation parameters found", file=sys.stderr)
            else:
                print(metadata.infotext)
            for key, value in metadata.items.items():
                print(f"\n[{key}]\n{value}")
            return 0 if metadata.infotext is not None or metadata.items else 1
        parsed = params_from_infotext(metadata.infotext) if metadata.infotext else None
        report = {
            "infotext": metadata.infotext,
            "parameters": parsed.values if parsed else None,
            "info": parsed.info if parsed else {},
            "unknown": parsed.unknown if parsed else {},
            "sdtui_params": metadata.params,
            "items": metadata.items,
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0


@hookimpl
def register_commands(register) -> None:
    register(PngInfoCommand())
