"""Architecture values read from the tensor shapes of an LDM-layout checkpoint.

`infer_component(layout, shapes, prefix, shipped)` returns the config values the shapes
determine (widths, depths, channels, context width, text width and depth) for one component,
plus fitted values for what shapes cannot show when the model is not the full-size one:
attention heads (kept from the shipped config when the widths match; else the shipped rule:
a fixed head count for SD1's UNet, 64 channels per head otherwise, reduced until it divides
the width) and group-norm groups (the largest count <= the shipped one dividing every width).
Fitted values are a guess for small custom models: exact values belong in the
`sdtui.architecture` metadata, which sdtui's exporter always writes. No torch needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Shapes = Mapping[str, tuple[int, ...]]


def _strip(shapes: Shapes, prefix: str) -> dict[str, tuple[int, ...]]:
    return {
        key[len(prefix) :]: tuple(shape) for key, shape in shapes.items() if key.startswith(prefix)
    }


def _indices(shapes: Shapes, pattern: str) -> list[int]:
    found = {int(match[1]) for key in shapes if (match := re.match(pattern, key))}
    return sorted(found)


def _require(shapes: Shapes, key: str, what: str) -> tuple[int, ...]:
    if key not in shapes:
        raise ValueError(f"{what}: expected tensor {key!r} is missing")
    return shapes[key]


def fit_heads(width: int, shipped_width: int, shipped_heads: int, fixed_count: bool) -> int:
    """Heads for a block `width` wide, following the shipped block's rule."""
    heads = shipped_heads if fixed_count else width * shipped_heads // shipped_width
    heads = max(1, min(heads, width))
    while width % heads:
        heads -= 1
    return heads


def fit_groups(widths: list[int], preferred: int) -> int:
    return max(g for g in range(1, preferred + 1) if all(width % g == 0 for width in widths))


def _fit_unet_heads(widths: list[int], shipped: Mapping[str, Any]) -> int | list[int]:
    shipped_widths = list(shipped["block_out_channels"])
    shipped_heads = shipped.get("attention_head_dim", 8)
    if widths == shipped_widths:
        return shipped_heads
    fixed = isinstance(shipped_heads, int)
    heads_list = [shipped_heads] * len(shipped_widths) if fixed else list(shipped_heads)
    fitted = []
    for i, width in enumerate(widths):
        j = min(i, len(shipped_widths) - 1)
        fitted.append(fit_heads(width, shipped_widths[j], heads_list[j], fixed))
    return fitted[0] if fixed and len(set(fitted)) == 1 else fitted


def _transformer_depths(shapes: Shapes, first_layers: list[int]) -> list[int]:
    depths = []
    for index in first_layers:
        blocks = _indices(shapes, rf"input_blocks\.{index}\.1\.transformer_blocks\.(\d+)\.")
        depths.append(len(blocks) or 1)
    return depths


def infer_unet(shapes: Shapes, shipped: Mapping[str, Any]) -> dict[str, Any]:
    conv_in = _require(shapes, "input_blocks.0.0.weight", "UNet")
    inputs = _indices(shapes, r"input_blocks\.(\d+)\.")
    blocks = 1 + len(_indices(shapes, r"input_blocks\.(\d+)\.0\.op\.weight"))
    layers = (len(inputs) - 1 - (blocks - 1)) // blocks
    span = layers + 1
    first = [1 + block * span for block in range(blocks)]
    widths = [_require(shapes, f"input_blocks.{i}.0.out_layers.3.weight", "UNet")[0] for i in first]
    down_attention = [f"input_blocks.{i}.1.proj_in.weight" in shapes for i in first]
    up_attention = [f"output_blocks.{b * span}.1.proj_in.weight" in shapes for b in range(blocks)]
    depths = _transformer_depths(shapes, first)
    attention_depths = {d for d, has in zip(depths, down_attention, strict=True) if has}
    config: dict[str, Any] = {
        "in_channels": conv_in[1],
        "out_channels": _require(shapes, "out.2.weight", "UNet")[0],
        "block_out_channels": widths,
        "layers_per_block": layers,
        "down_block_types": [
            "CrossAttnDownBlock2D" if has else "DownBlock2D" for has in down_attention
        ],
        "up_block_types": ["CrossAttnUpBlock2D" if has else "UpBlock2D" for has in up_attention],
        "transformer_layers_per_block": (
            attention_depths.pop() if len(attention_depths) == 1 else depths
        ),
        "attention_head_dim": _fit_unet_heads(widths, shipped),
        "norm_num_groups": fit_groups(widths, shipped.get("norm_num_groups", 32)),
    }
    for key, shape in shapes.items():
        if key.endswith("attn2.to_k.weight"):
            config["cross_attention_dim"] = shape[1]
        if key.endswith(".1.proj_in.weight"):
            config["use_linear_projection"] = len(shape) == 2
    if "label_emb.0.0.weight" in shapes:
        config["projection_class_embeddings_input_dim"] = shapes["label_emb.0.0.weight"][1]
    return config


def infer_vae(shapes: Shapes, shipped: Mapping[str, Any]) -> dict[str, Any]:
    blocks = len(_indices(shapes, r"encoder\.down\.(\d+)\."))
    layers = len(_indices(shapes, r"encoder\.down\.0\.block\.(\d+)\."))
    widths = [
        _require(shapes, f"encoder.down.{i}.block.0.conv2.weight", "VAE")[0] for i in range(blocks)
    ]
    return {
        "in_channels": _require(shapes, "encoder.conv_in.weight", "VAE")[1],
        "out_channels": _require(shapes, "decoder.conv_out.weight", "VAE")[0],
        "latent_channels": _require(shapes, "decoder.conv_in.weight", "VAE")[1],
        "block_out_channels": widths,
        "layers_per_block": layers,
        "down_block_types": ["DownEncoderBlock2D"] * blocks,
        "up_block_types": ["UpDecoderBlock2D"] * blocks,
        "norm_num_groups": fit_groups(widths, shipped.get("norm_num_groups", 32)),
    }


def _text_config(
    hidden: int, vocab: int, positions: int, layers: int, inner: int, shipped: Mapping[str, Any]
) -> dict[str, Any]:
    shipped_hidden = shipped["hidden_size"]
    if hidden == shipped_hidden:
        heads = shipped["num_attention_heads"]
    else:
        heads = fit_heads(hidden, shipped_hidden, shipped["num_attention_heads"], False)
    return {
        "hidden_size": hidden,
        "vocab_size": vocab,
        "max_position_embeddings": positions,
        "num_hidden_layers": layers,
        "intermediate_size": inner,
        "num_attention_heads": heads,
    }


def infer_clip(shapes: Shapes, shipped: Mapping[str, Any]) -> dict[str, Any]:
    tokens = _require(shapes, "text_model.embeddings.token_embedding.weight", "CLIP text encoder")
    positions = _require(shapes, "text_model.embeddings.position_embedding.weight", "CLIP")
    layers = len(_indices(shapes, r"text_model\.encoder\.layers\.(\d+)\."))
    inner = _require(shapes, "text_model.encoder.layers.0.mlp.fc1.weight", "CLIP")[0]
    return _text_config(tokens[1], tokens[0], positions[0], layers, inner, shipped)


def infer_open_clip(shapes: Shapes, shipped: Mapping[str, Any]) -> dict[str, Any]:
    tokens = _require(shapes, "token_embedding.weight", "OpenCLIP text encoder")
    positions = _require(shapes, "positional_embedding", "OpenCLIP text encoder")
    layers = len(_indices(shapes, r"transformer\.resblocks\.(\d+)\."))
    inner = _require(shapes, "transformer.resblocks.0.mlp.c_fc.weight", "OpenCLIP")[0]
    config = _text_config(tokens[1], tokens[0], positions[0], layers, inner, shipped)
    if "text_projection" in shapes:
        config["projection_dim"] = shapes["text_projection"][1]
        config["architectures"] = ["CLIPTextModelWithProjection"]
    else:
        config["architectures"] = ["CLIPTextModel"]
    return config


def infer_component(
    layout: str, shapes: Shapes, prefix: str, shipped: Mapping[str, Any]
) -> dict[str, Any]:
    """Config values for the component stored under `prefix` (a families.LAYOUTS entry)."""
    inner = _strip(shapes, prefix)
    if layout == "unet":
        return infer_unet(inner, shipped)
    if layout == "vae":
        return infer_vae(inner, shipped)
    if layout == "clip":
        return infer_clip(inner, shipped)
    if layout == "open_clip":
        return infer_open_clip(inner, shipped)
    raise ValueError(f"unknown layout {layout!r}; known: unet, vae, clip, open_clip")
