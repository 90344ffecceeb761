"""The LoRA networks a generation's prompts ask for, per pass, and their infotext.

    first, hires = pass_networks(params, loaded)   # lists of AppliedNetwork
    patch = network_patch(model); patch.apply(first) ... patch.remove()
    extra = lora_hashes_extra(first, hires)         # {"Lora hashes": "..."} or {}

As A1111: the first pass uses the tags of the prompt, the hires pass those of the hires
prompt (the prompt itself when that is empty); tags in the negative prompt are not network
requests. `loaded` maps the names prompts use to networks read by the caller
(`sdtui.models.networks.load_loras`); a name missing from it is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sdtui.core.extra_networks import NetworkRequest, parse_extra_networks
from sdtui.models.networks import AppliedNetwork, LoraNetwork, lora_hashes_infotext
from sdtui.params.schema import GenerationParams


def _requests(params: GenerationParams) -> tuple[list[NetworkRequest], list[NetworkRequest]]:
    first = list(parse_extra_networks(params.prompt).lora)
    if not params.enable_hires:
        return first, first
    hires = list(parse_extra_networks(params.hires_prompt or params.prompt).lora)
    return first, hires


def requested_names(params: GenerationParams) -> list[str]:
    """The LoRA names the prompts of a request mention, first pass first, each once."""
    first, hires = _requests(params)
    return list(dict.fromkeys(request.name for request in [*first, *hires]))


def applied_networks(
    requests: Sequence[NetworkRequest], loaded: Mapping[str, LoraNetwork] | None
) -> list[AppliedNetwork]:
    applied = []
    for request in requests:
        network = (loaded or {}).get(request.name)
        if network is None:
            known = ", ".join(sorted(loaded or {})) or "none"
            raise ValueError(f"LoRA {request.name!r} is asked for but not loaded (loaded: {known})")
        applied.append(AppliedNetwork(network, request.te, request.unet, request.dyn))
    return applied


def pass_networks(
    params: GenerationParams, loaded: Mapping[str, LoraNetwork] | None
) -> tuple[list[AppliedNetwork], list[AppliedNetwork]]:
    """(first pass networks, hires pass networks)."""
    first, hires = _requests(params)
    return applied_networks(first, loaded), applied_networks(hires, loaded)


def lora_hashes_extra(*passes: Sequence[AppliedNetwork]) -> dict[str, str]:
    """{"Lora hashes": ...} over the networks of all passes (as A1111 collects them)."""
    hashes: dict[str, str | None] = {}
    for networks in passes:
        for applied in networks:
            hashes.setdefault(applied.network.name, applied.network.short_hash)
    text = lora_hashes_infotext(hashes)
    return {"Lora hashes": text} if text else {}
