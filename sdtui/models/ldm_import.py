"""An LDM-layout state dict -> diffusers UNet / VAE and transformers CLIP text encoders.

    components = load_components(state_dict, metadata=metadata)   # family detected
    components.unet, components.vae, components.text_encoder, components.text_encoder_2

Modules are built from the resolved architecture configs (`architectures.resolve_configs`)
with parameters on the meta device, then take the checkpoint's tensors directly
(`load_state_dict(assign=True)`: no copy unless a dtype is asked for). Loading is strict:
every module tensor must be in the file with the right shape, and every tensor in the file
must be used, except known non-weights (`is_ignorable`: the DDPM schedule buffers, EMA copies,
`position_ids`, `logit_scale`, `attn_mask`, `v_pred`); otherwise `CheckpointKeysError` lists
what was missing, unexpected or mis-shaped. Components absent from the file are None.

The key rules are the same ones the exporter uses (`sdtui.models.ldm_layout`), so exporting a
loaded model gives back the file's tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sdtui.models.architectures import build_component, parameters_on_meta, resolve_configs
from sdtui.models.families import LAYOUTS, Family, detect_family, key_renames
from sdtui.models.ldm_layout import component_rules

SCHEDULE_BUFFERS = frozenset(
    {
        "betas",
        "alphas_cumprod",
        "alphas_cumprod_prev",
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod",
        "posterior_variance",
        "posterior_log_variance_clipped",
        "posterior_mean_coef1",
        "posterior_mean_coef2",
        "logvar",
        "v_pred",
        "ztsnr",
    }
)
IGNORED_PREFIXES = ("model_ema.", "denoiser.", "first_stage_model.loss.")
IGNORED_SUFFIXES = (".position_ids", ".logit_scale", ".attn_mask")
_LIST_LIMIT = 12


class CheckpointKeysError(ValueError):
    """The checkpoint's tensors do not match the architecture."""


def is_ignorable(key: str) -> bool:
    """Tensors a checkpoint may carry that are not weights of our modules."""
    return (
        key in SCHEDULE_BUFFERS
        or key.startswith(IGNORED_PREFIXES)
        or key.endswith(IGNORED_SUFFIXES)
    )


@dataclass
class Components:
    """The modules of one checkpoint, the family and configs they were built from."""

    family: Family
    configs: dict[str, dict[str, Any]]
    unet: torch.nn.Module | None = None
    vae: torch.nn.Module | None = None
    text_encoder: torch.nn.Module | None = None
    text_encoder_2: torch.nn.Module | None = None
    ignored_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)

    def modules(self) -> dict[str, torch.nn.Module]:
        names = ("unet", "vae", "text_encoder", "text_encoder_2")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    more = f" (+{len(items) - _LIST_LIMIT} more)" if len(items) > _LIST_LIMIT else ""
    return f"{title} ({len(items)}): {shown}{more}"


def convert_component(
    name: str,
    state_dict: Mapping[str, torch.Tensor],
    family: Family,
    expected: Mapping[str, tuple[int, ...]],
    config: Mapping[str, Any],
) -> tuple[dict[str, torch.Tensor], set[str]]:
    """The module state dict (names -> tensors of the `expected` shapes) for one component,
    and the LDM keys it used. Raises CheckpointKeysError on missing or mis-shaped tensors."""
    prefix, layout = LAYOUTS[family.architecture][name]
    converted: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    wrong: list[str] = []
    for rule in component_rules(layout, expected, prefix, config):
        if rule.ldm_key not in state_dict:
            missing.append(rule.ldm_key)
            continue
        used.add(rule.ldm_key)
        shapes = [tuple(expected[key]) for key in rule.module_keys]
        tensor = state_dict[rule.ldm_key]
        try:
            parts = rule.split(tensor, shapes)
        except RuntimeError:  # a reshape or split that the sizes do not allow
            parts = []
        if [tuple(part.shape) for part in parts] != shapes:
            wrong.append(f"{rule.ldm_key} {tuple(tensor.shape)} (expected {shapes})")
            continue
        converted.update(zip(rule.module_keys, parts, strict=True))
    if missing or wrong:
        details = [_listing("missing", missing)] if missing else []
        details += [_listing("wrong shape", wrong)] if wrong else []
        raise CheckpointKeysError(
            f"{family.label} {name} does not match its architecture: " + "; ".join(details)
        )
    return converted, used


def load_component(
    name: str,
    state_dict: Mapping[str, torch.Tensor],
    family: Family,
    config: Mapping[str, Any],
    dtype: torch.dtype | None = None,
) -> tuple[torch.nn.Module, set[str]]:
    """Build one component from its config and load its tensors from the LDM state dict."""
    with parameters_on_meta():
        module = build_component(name, config)
    expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    converted, used = convert_component(name, state_dict, family, expected, config)
    module.load_state_dict(converted, strict=True, assign=True)
    if dtype is not None:
        module.to(dtype)
    return module.eval(), used


def load_components(
    state_dict: Mapping[str, torch.Tensor],
    family: Family | None = None,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    metadata: Mapping[str, str] | None = None,
    dtype: torch.dtype | None = None,
    strict: bool = True,
) -> Components:
    """All components found in an LDM-layout state dict. `family` and `configs` default to
    what the keys, shapes and `metadata` say; `strict` rejects unknown tensors. Older key
    spellings are renamed first (`families.key_renames`); reported keys use the new names."""
    metadata = metadata or {}
    renames = key_renames(state_dict)
    if renames:
        state_dict = {renames.get(key, key): tensor for key, tensor in state_dict.items()}
    shapes = {key: tuple(tensor.shape) for key, tensor in state_dict.items()}
    family = family or detect_family(shapes, metadata)
    configs = dict(configs) if configs is not None else resolve_configs(family, shapes, metadata)
    result = Components(family=family, configs={k: dict(v) for k, v in configs.items()})
    used: set[str] = set()
    for name, (prefix, _layout) in LAYOUTS[family.architecture].items():
        if not any(key.startswith(prefix) for key in state_dict):
            continue
        if name not in configs:
            raise CheckpointKeysError(f"no config for the {name} found under {prefix!r}")
        module, keys = load_component(name, state_dict, family, configs[name], dtype)
        setattr(result, name, module)
        used |= keys
    rest = [key for key in state_dict if key not in used]
    result.ignored_keys = sorted(key for key in rest if is_ignorable(key))
    result.unexpected_keys = sorted(key for key in rest if not is_ignorable(key))
    if strict and result.unexpected_keys:
        raise CheckpointKeysError(
            f"{family.label} checkpoint has tensors no component uses: "
            + _listing("unexpected", result.unexpected_keys)
        )
    return result


def load_ldm_safetensors(
    path: str | Path, *, dtype: torch.dtype | None = None, strict: bool = True
) -> Components:
    """Load a single-file `.safetensors` checkpoint (detecting its family from the file)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    return load_components(load_file(str(path)), metadata=metadata, dtype=dtype, strict=strict)
