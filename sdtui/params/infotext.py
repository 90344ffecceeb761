"""A1111's infotext: the text in a PNG's `parameters` chunk.

    <prompt, may span lines>
    Negative prompt: <negative prompt, may span lines>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, ...

Writing follows A1111's `create_infotext`: a fixed key order, then the extra keys in the
order A1111 inserts them, then `Version`; keys whose value is None are left out; a value
containing `,`, `:` or a newline is JSON-quoted. Reading follows A1111's
`parse_generation_parameters`: the last line holds the parameters only if it has at least
three `key: value` pairs, quoted values are unquoted, and `WxH` values split into `-1`/`-2`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PARAM_PATTERN = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
SIZE_PATTERN = re.compile(r"^(\d+)x(\d+)$")
NEGATIVE_PREFIX = "Negative prompt:"

# The keys A1111 always writes in this order (when not None), before any extra key.
FIXED_ORDER = (
    "Steps", "Sampler", "Schedule type", "CFG scale", "Image CFG scale", "Seed",
    "Face restoration", "Size", "Model hash", "Model", "FP8 weight",
    "Cache FP16 weight for LoRA", "VAE hash", "VAE", "Variation seed",
    "Variation seed strength", "Seed resize from", "Denoising strength",
    "Conditional mask weight", "Clip skip", "ENSD", "Token merging ratio",
    "Token merging ratio hr", "Init image hash", "RNG", "Tiling",
)  # fmt: skip
LAST_KEYS = ("Version", "User")


def format_value(value: Any) -> str:
    """Numbers as A1111's UI hands them over: 7.0 -> "7", 0.7 -> "0.7"."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def quote(text: str) -> str:
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def join_infotext(prompt: str, negative_prompt: str, values: Mapping[str, Any]) -> str:
    """Assemble an infotext from ordered key/values (None values are skipped)."""
    pairs = []
    for key, value in values.items():
        if value is None:
            continue
        text = format_value(value)
        pairs.append(key if text == key else f"{key}: {quote(text)}")
    negative = f"\n{NEGATIVE_PREFIX} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{', '.join(pairs)}".strip()


def order_keys(values: Mapping[str, Any], extra_order: tuple[str, ...] = ()) -> dict[str, Any]:
    """A1111's order: fixed keys, then extras (in `extra_order`, then as given), then last."""
    ordered = {key: values[key] for key in FIXED_ORDER if key in values}
    for key in extra_order:
        if key in values and key not in LAST_KEYS:
            ordered.setdefault(key, values[key])
    for key, value in values.items():
        if key not in LAST_KEYS:
            ordered.setdefault(key, value)
    ordered.update({key: values[key] for key in LAST_KEYS if key in values})
    return ordered


@dataclass
class Infotext:
    """A parsed infotext: the prompts and the raw `key -> value` strings, in order."""

    prompt: str = ""
    negative_prompt: str = ""
    values: dict[str, str] = field(default_factory=dict)


def parse_infotext(text: str) -> Infotext:
    *lines, last = text.strip().split("\n")
    if len(PARAM_PATTERN.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX) :].strip()
        (negative if in_negative else prompt).append(line)
    values: dict[str, str] = {}
    for key, value in PARAM_PATTERN.findall(last):
        values[key] = unquote(value)
    return Infotext("\n".join(prompt), "\n".join(negative), values)


def split_size(value: str) -> tuple[int, int] | None:
    match = SIZE_PATTERN.match(value.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None
