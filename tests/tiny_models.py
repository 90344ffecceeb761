"""Tiny random Stable Diffusion models and single-file LDM checkpoints for tests.

    path = write_tiny_checkpoint(tmp_path / "tiny-sd1.safetensors", "sd1")
    modules = build_tiny_components("sdxl", seed=1)      # {"unet": ..., "vae": ..., ...}
    shapes = full_size_manifest("sdxl-inpaint")          # LDM key -> shape, no weights

Tiny models keep the real structure (UNet with attention and plain blocks, SDXL's added
time embedding and deeper transformer stacks, a 4-level VAE that downsamples 8x, CLIP text
encoders with the real 49408-token vocabulary and 77 positions) at widths 8-64: a 64 px
image is an 8x8 latent. Every parameter is drawn from a seeded normal distribution, so two
different tensors never agree by accident. Families: sd1, sd1-inpaint, sd1-pix2pix
(instruct-pix2pix: 8 input channels), sd2, sd2-inpaint, sdxl, sdxl-inpaint, sdxl-refiner.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import torch

from sdtui.models.architectures import build_component, family_configs
from sdtui.models.families import FAMILIES, Family
from sdtui.models.ldm_export import export_ldm_state_dict, save_ldm_safetensors

TEXT_WIDTH = 32
# SDXL's second encoder is wider, as bigG is wider than CLIP-L: diffusers tells the two apart
# by width, and would load the first encoder's weights into both if they were equal.
TEXT_WIDTH_2 = 48


def _text(act: str, projection: bool, width: int = TEXT_WIDTH) -> dict[str, Any]:
    return {
        "architectures": ["CLIPTextModelWithProjection" if projection else "CLIPTextModel"],
        "hidden_size": width,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "hidden_act": act,
        "layer_norm_eps": 1e-05,
        "projection_dim": width,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
    }


_VAE = {
    "block_out_channels": [8, 16, 32, 32],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 64,
}
_SD_UNET = {
    "block_out_channels": [16, 32],
    "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "norm_num_groups": 8,
    "cross_attention_dim": TEXT_WIDTH,
    "sample_size": 8,
}
_XL_UNET = {
    "block_out_channels": [16, 32, 32],
    "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "transformer_layers_per_block": [1, 1, 2],
    "attention_head_dim": [2, 4, 4],
    "norm_num_groups": 8,
    "addition_time_embed_dim": 8,
    "sample_size": 8,
}
TINY_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "sd1": {
        "unet": {**_SD_UNET, "attention_head_dim": 4},
        "vae": _VAE,
        "text_encoder": _text("quick_gelu", False),
    },
    "sd2": {
        "unet": {**_SD_UNET, "attention_head_dim": [2, 4], "use_linear_projection": True},
        "vae": _VAE,
        "text_encoder": _text("gelu", True),
    },
    "sdxl": {
        "unet": {
            **_XL_UNET,
            "cross_attention_dim": TEXT_WIDTH + TEXT_WIDTH_2,
            "projection_class_embeddings_input_dim": TEXT_WIDTH_2 + 6 * 8,
        },
        "vae": _VAE,
        "text_encoder": _text("quick_gelu", False),
        "text_encoder_2": _text("gelu", True, TEXT_WIDTH_2),
    },
    "sdxl-refiner": {
        "unet": {
            **_XL_UNET,
            "cross_attention_dim": TEXT_WIDTH_2,
            "projection_class_embeddings_input_dim": TEXT_WIDTH_2 + 5 * 8,
        },
        "vae": _VAE,
        "text_encoder_2": _text("gelu", True, TEXT_WIDTH_2),
    },
}


def as_family(family: Family | str) -> Family:
    return FAMILIES[family] if isinstance(family, str) else family


def tiny_configs(family: Family | str) -> dict[str, dict[str, Any]]:
    """Full configs of the tiny model of a family (shipped configs with tiny overrides)."""
    family = as_family(family)
    configs = family_configs(family)
    for name, override in TINY_OVERRIDES[family.architecture].items():
        configs[name].update(copy.deepcopy(override))
    configs["unet"]["in_channels"] = family.in_channels
    return configs


def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Fill every parameter from a seeded normal distribution (scale 0.1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    return module.eval()


def build_tiny_components(family: Family | str, seed: int = 0) -> dict[str, torch.nn.Module]:
    """Random tiny modules of a family: {"unet", "vae", "text_encoder"[, "text_encoder_2"]}."""
    configs = tiny_configs(family)
    return {
        name: randomize(build_component(name, config), seed + index)
        for index, (name, config) in enumerate(configs.items())
    }


def write_tiny_checkpoint(
    path: str | Path,
    family: Family | str = "sd1",
    *,
    seed: int = 0,
    metadata: bool = True,
    dtype: torch.dtype | None = None,
) -> Path:
    """A tiny random single-file LDM `.safetensors` of a family. With `metadata=False` the
    file has no sdtui metadata (architecture must then come from shapes)."""
    family = as_family(family)
    path = Path(path)
    modules = build_tiny_components(family, seed)
    save_ldm_safetensors(path, family, dtype=dtype, **modules)
    if not metadata:
        from safetensors.torch import load_file, save_file

        save_file(load_file(str(path)), str(path), metadata={"format": "pt"})
    return path


def full_size_manifest(family: Family | str) -> dict[str, tuple[int, ...]]:
    """LDM key -> shape of a full-size checkpoint of a family, built on the meta device
    (no memory, no weights) and named by our exporter. A fresh dict each call."""
    return dict(_full_size_manifest(as_family(family)))


@cache
def _full_size_manifest(family: Family) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        modules = {
            name: build_component(name, config) for name, config in family_configs(family).items()
        }
    tensors = export_ldm_state_dict(family=family, **modules)
    return {key: tuple(tensor.shape) for key, tensor in tensors.items()}
