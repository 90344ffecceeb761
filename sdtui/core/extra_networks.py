"""A1111's extra-network prompt tags: `<lora:name:te[:unet[:dyn]]>`, `<lora:name:unet=0.5:te=1>`.

    text, requests = extra_networks("a cat <lora:add_detail:0.8> <lyco:grain:1:0.5>")
    # text == "a cat  ", requests == [NetworkRequest("add_detail", 0.8, 0.8),
    #                                 NetworkRequest("grain", 1.0, 0.5)]

Rules (A1111 `extra_networks.parse_prompt`, `extra_networks_lora.activate`):

* Comment lines are removed first (a tag in a comment does nothing), then every
  `<kind:args>` (regex `<(\\w+):([^>]+)>`) is cut out of the prompt, whatever the kind.
* `args` split at `:`; an item with exactly one `=` is named (`te=0.5`), the others are
  positional: name, te multiplier, unet multiplier, dyn (rank cut).
* te defaults to 1.0 (A1111's `extra_networks_default_multiplier`); unet defaults to te;
  named values override positional ones.
* `lora` and its alias `lyco` make `NetworkRequest`s; other kinds (`hypernet`, ...) are
  returned as `ExtraNetworkTag`s for whoever handles them.

Where A1111 would crash (no name, a multiplier that is not a number) `ExtraNetworkError`
names the tag and what is wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from sdtui.core.prompt_parser import strip_comments

# Identical to A1111's `re_extra_net` (and to sdtui.engine.prompt_chunks.EXTRA_NETWORK).
EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
LORA_KINDS = ("lora", "lyco")
DEFAULT_MULTIPLIER = 1.0


class ExtraNetworkError(ValueError):
    """A tag A1111 could not use either; the message quotes it."""


@dataclass(frozen=True)
class ExtraNetworkTag:
    """One `<kind:arg1:arg2...>` tag: positional and named (`key=value`) arguments."""

    kind: str
    text: str  # the whole tag as written
    positional: tuple[str, ...] = ()
    named: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, kind: str, args: str, text: str) -> ExtraNetworkTag:
        positional: list[str] = []
        named: dict[str, str] = {}
        for item in args.split(":"):
            parts = item.split("=", 2)
            if len(parts) == 2:
                named[parts[0].strip()] = parts[1]
            else:
                positional.append(item)
        return cls(kind, text, tuple(positional), named)


@dataclass(frozen=True)
class NetworkRequest:
    """A LoRA asked for by a prompt: its name as written and the two multipliers."""

    name: str
    te: float = DEFAULT_MULTIPLIER
    unet: float = DEFAULT_MULTIPLIER
    dyn: int | None = None  # keep only the first `dyn` ranks (A1111's dyn_dim)

    @property
    def key(self) -> tuple[str, float, float, int | None]:
        return (self.name, self.te, self.unet, self.dyn)


def _number(tag: ExtraNetworkTag, what: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ExtraNetworkError(
            f"{tag.text}: the {what} multiplier {text!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise ExtraNetworkError(f"{tag.text}: the {what} multiplier must be finite, not {text!r}")
    return value


def _dyn(tag: ExtraNetworkTag, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ExtraNetworkError(f"{tag.text}: dyn {text!r} is not a whole number") from None
    if value < 1:
        raise ExtraNetworkError(f"{tag.text}: dyn must be at least 1, not {value}")
    return value


def network_request(tag: ExtraNetworkTag) -> NetworkRequest:
    """The LoRA request a `<lora:...>` tag makes (A1111's positional/named rules)."""
    known = {"te", "unet", "dyn"}
    unknown = sorted(set(tag.named) - known)
    if unknown:
        raise ExtraNetworkError(
            f"{tag.text}: unknown argument {unknown[0]!r}; known: te=, unet=, dyn="
        )
    if not tag.positional or not tag.positional[0].strip():
        raise ExtraNetworkError(f"{tag.text}: no network name (write <lora:name:multiplier>)")
    if len(tag.positional) > 4:
        raise ExtraNetworkError(
            f"{tag.text}: too many arguments; write <lora:name:te[:unet[:dyn]]>"
        )
    name, *rest = tag.positional
    te_text = tag.named.get("te", rest[0] if rest else None)
    te = DEFAULT_MULTIPLIER if te_text is None else _number(tag, "te", te_text)
    unet_text = tag.named.get("unet", rest[1] if len(rest) > 1 else None)
    unet = te if unet_text is None else _number(tag, "unet", unet_text)
    dyn_text = tag.named.get("dyn", rest[2] if len(rest) > 2 else None)
    dyn = None if dyn_text is None else _dyn(tag, dyn_text)
    return NetworkRequest(name.strip(), te, unet, dyn)


@dataclass(frozen=True)
class ParsedPrompt:
    """A prompt without its extra-network tags, and what the tags asked for."""

    text: str
    lora: tuple[NetworkRequest, ...] = ()
    other: tuple[ExtraNetworkTag, ...] = ()


def parse_extra_networks(prompt: str, *, comments: bool = True) -> ParsedPrompt:
    """Cut every extra-network tag out of `prompt` (after removing comment lines)."""
    tags: list[ExtraNetworkTag] = []

    def found(match: re.Match[str]) -> str:
        tags.append(ExtraNetworkTag.parse(match[1], match[2], match[0]))
        return ""

    text = EXTRA_NETWORK.sub(found, strip_comments(prompt) if comments else prompt)
    lora = tuple(network_request(tag) for tag in tags if tag.kind in LORA_KINDS)
    other = tuple(tag for tag in tags if tag.kind not in LORA_KINDS)
    return ParsedPrompt(text, lora, other)


def extra_networks(prompt: str) -> tuple[str, list[NetworkRequest]]:
    """(prompt without tags, the LoRA requests in prompt order)."""
    parsed = parse_extra_networks(prompt)
    return parsed.text, list(parsed.lora)


def strip_extra_networks(prompt: str) -> str:
    """The prompt as the text encoder sees it: no comments, no extra-network tags."""
    return EXTRA_NETWORK.sub("", strip_comments(prompt))
