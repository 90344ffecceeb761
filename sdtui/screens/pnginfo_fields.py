"""What the PNG Info tab makes of an image's metadata (no Textual here: plain functions).

parameter_rows(infotext)       # [(key, raw value, what sdtui reads it as), ...]
parameters_to_send(metadata)   # the field values "Send to txt2img" pastes, or None
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sdtui.params.codec import SIZE_KEYS, params_from_infotext, split_legacy_sampler
from sdtui.params.infotext import parse_infotext
from sdtui.params.schema import PARAMS, spec

UNKNOWN = "unknown (kept)"
INFO = "info"
# Not pasted: A1111's `disable_weights_auto_swap` (on by default) keeps the selected
# checkpoint when reading parameters from PNG info or pasted text.
NOT_PASTED = ("model",)
# the values' entry holding a pasted script's infotext keys ("Script", "X Type", ...), which
# a generation tab turns into its Script selection (sdtui.services.scripts.pasted_script)
PASTED_SCRIPT = "pasted_script"
NOT_PASTED_NOTE = " (not sent: the selected checkpoint stays)"


@cache
def _fields_by_key() -> dict[str, tuple[str, ...]]:
    by_key: dict[str, tuple[str, ...]] = dict(SIZE_KEYS)
    for name in PARAMS:
        key = spec(name).infotext
        if key and key not in SIZE_KEYS:
            by_key[key] = (*by_key.get(key, ()), name)
    return by_key


def parameter_rows(infotext: str) -> list[tuple[str, str, str]]:
    """Every part of an infotext as (key, value as written, the sdtui fields it sets).

    The prompts come first, then the keys of the parameter line in their order; keys that
    sdtui has no field for say "info" (hashes, version) or "unknown (kept)"."""
    raw = parse_infotext(infotext)
    parsed = params_from_infotext(infotext)
    rows = [("Prompt", raw.prompt, "prompt")]
    if raw.negative_prompt:
        rows.append(("Negative prompt", raw.negative_prompt, "negative_prompt"))
    for key, value in raw.values.items():
        rows.append((key, value, _read_as(key, value, parsed, raw.values)))
    return rows


def _read_as(key: str, value: str, parsed: Any, present: dict[str, str]) -> str:
    if key in parsed.unknown:
        return UNKNOWN
    if key in parsed.info:
        return INFO
    names = _fields_by_key().get(key, ())
    if key == "Sampler" and "Schedule type" not in present and split_legacy_sampler(value)[1]:
        names = (*names, "schedule")  # "DPM++ 2M Karras": sampler and schedule in one
    if key in ("Hires upscale", "Hires resize"):
        names = ("enable_hires", *names)
    shown = [
        f"{name} = {parsed.values[name]}" + (NOT_PASTED_NOTE if name in NOT_PASTED else "")
        for name in names
        if name in parsed.values
    ]
    return ", ".join(shown) or UNKNOWN


def parameters_to_send(metadata: Any) -> dict[str, Any] | None:
    """The field values to paste into a tab: from the infotext (A1111's behaviour; a text
    without a parameter line is all prompt), else from sdtui's JSON chunk; None without
    either. Fields the image does not carry are left out, so the tab keeps its values."""
    if metadata is None:
        return None
    if metadata.infotext and metadata.infotext.strip():
        parsed = params_from_infotext(metadata.infotext)
        values = dict(parsed.values)
        if parsed.unknown.get("Script"):
            values[PASTED_SCRIPT] = dict(parsed.unknown)
    elif isinstance(metadata.params, dict):
        values = {
            name: tuple(value) if isinstance(value, list) else value
            for name, value in metadata.params.items()
            if name in PARAMS
        }
    else:
        return None
    for name in NOT_PASTED:
        values.pop(name, None)
    return values
