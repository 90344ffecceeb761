"""Built-in model family detection: SD1.x, SD2.x, SDXL base / refiner, inpainting variants and
SD1 instruct-pix2pix.

Implements the `detect_model_family` hook with `sdtui.models.families.detect_family` (which
imports no torch; it is imported on first call, so loading this plugin stays fast). A
checkpoint the built-in rules do not recognise gives None, so another plugin may answer;
when none does, callers get the precise reason from `detect_family` itself.
"""

from __future__ import annotations

from typing import Any

from sdtui import hookimpl


@hookimpl
def detect_model_family(keys: dict[str, tuple[int, ...]], metadata: dict[str, str]) -> Any:
    from sdtui.models.families import FamilyDetectionError, detect_family

    try:
        return detect_family(keys, metadata)
    except FamilyDetectionError:
        return None
