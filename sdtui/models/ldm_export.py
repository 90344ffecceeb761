"""Our diffusers / transformers modules -> one state dict in the LDM single-file layout.

    tensors = export_ldm_state_dict(family=FAMILIES["sd1"], unet=unet, vae=vae,
                                    text_encoder=text_encoder)
    save_ldm_safetensors(path, family, unet=unet, vae=vae, text_encoder=text_encoder)

The keys are those A1111, Forge and ComfyUI read (`model.diffusion_model.*`,
`first_stage_model.*`, `cond_stage_model.transformer.text_model.*` / `cond_stage_model.model.*`,
`conditioner.embedders.N.*` for SDXL); see `sdtui.models.ldm_layout` for the tensor rules.
Modules on the `meta` device export too (shapes only), which is how tests build full-size key
manifests without allocating weights. `save_ldm_safetensors` also writes the metadata that
`sdtui.models.families` documents, so sdtui reloads the file with exactly these configs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sdtui.models.families import (
    LAYOUTS,
    META_ARCHITECTURE,
    META_FAMILY,
    META_NATIVE_SIZE,
    META_PREDICTION_TYPE,
    Family,
)
from sdtui.models.ldm_layout import component_rules

TEXT_CONFIG_KEYS = (
    "architectures",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
    "vocab_size",
    "hidden_act",
    "layer_norm_eps",
    "projection_dim",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)


def module_config(module: torch.nn.Module) -> dict[str, Any]:
    """The architecture config of a diffusers model or transformers CLIP text model."""
    config = module.config
    if hasattr(config, "to_dict"):  # transformers
        values = config.to_dict()
        values["architectures"] = [type(module).__name__]
        return {key: values[key] for key in TEXT_CONFIG_KEYS if key in values}
    return {key: value for key, value in dict(config).items() if not key.startswith("_")}


def export_component(name: str, module: torch.nn.Module, family: Family) -> dict[str, torch.Tensor]:
    """One component's tensors under its LDM names for this family."""
    layouts = LAYOUTS[family.architecture]
    if name not in layouts:
        raise ValueError(
            f"{family.label} checkpoints have no {name}; components: {', '.join(layouts)}"
        )
    prefix, layout = layouts[name]
    state = module.state_dict()
    rules = component_rules(layout, state, prefix, module_config(module))
    return {rule.ldm_key: rule.export([state[key] for key in rule.module_keys]) for rule in rules}


def export_ldm_state_dict(
    *,
    family: Family,
    unet: torch.nn.Module | None = None,
    vae: torch.nn.Module | None = None,
    text_encoder: torch.nn.Module | None = None,
    text_encoder_2: torch.nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """All given components in one LDM-layout state dict."""
    modules = {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
    }
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        if module is not None:
            tensors.update(export_component(name, module, family))
    return tensors


def ldm_metadata(family: Family, configs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """sdtui's safetensors metadata for a checkpoint of this family with these configs."""
    metadata = {META_FAMILY: family.id, META_ARCHITECTURE: json.dumps(configs, sort_keys=True)}
    if family.prediction_type:
        metadata[META_PREDICTION_TYPE] = family.prediction_type
    if family.native_size:
        metadata[META_NATIVE_SIZE] = str(family.native_size)
    return metadata


def save_ldm_safetensors(
    path: str | Path,
    family: Family,
    *,
    metadata: Mapping[str, str] | None = None,
    dtype: torch.dtype | None = None,
    **modules: torch.nn.Module | None,
) -> dict[str, str]:
    """Write the given components (unet=, vae=, text_encoder=, text_encoder_2=) as one
    single-file LDM checkpoint with sdtui's metadata (plus `metadata`); returns the metadata."""
    from safetensors.torch import save_file

    tensors = export_ldm_state_dict(family=family, **modules)
    configs = {name: module_config(m) for name, m in modules.items() if m is not None}
    header = {**ldm_metadata(family, configs), **(metadata or {})}
    prepared = {
        key: (tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor)
        .detach()
        .contiguous()
        .cpu()
        for key, tensor in tensors.items()
    }
    save_file(prepared, str(path), metadata=header)
    return header
