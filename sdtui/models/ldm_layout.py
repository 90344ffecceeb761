"""The correspondence between our modules' tensor names and the LDM single-file layout.

One table serves both directions: `component_rules(layout, module_keys, prefix, config)`
lists, for every tensor a diffusers / transformers module holds, the LDM key it is stored
under and how the tensor changes on the way (`TensorRule.op`):

    copy       same tensor
    conv1x1    diffusers' linear [C, C] <-> LDM VAE attention's 1x1 conv [C, C, 1, 1]
    transpose  transformers Linear weight [out, in] <-> OpenCLIP `text_projection` [in, out]
    concat     q, k, v projections <-> OpenCLIP's fused `in_proj_weight` / `in_proj_bias`

Layout facts (UNet): diffusers' down block b, layer j is LDM `input_blocks.{1 + b*(L+1) + j}`
(L = layers per block; `.0` the resnet, `.1` the transformer), its downsampler
`input_blocks.{(b+1)*(L+1)}.0.op`; up block b, layer j (L+1 layers) is
`output_blocks.{b*(L+1) + j}`, its upsampler the last layer's `.1.conv` (`.2.conv` when the
block has attention); the mid block is `middle_block.0/1/2`. VAE: the decoder's up blocks are
numbered in reverse (`decoder.up.{n-1-i}`), resnets are `block.{j}` (`mid.block_1/2`), the mid
attention is `mid.attn_1.{norm,q,k,v,proj_out}`. This module only names keys; it needs no
torch beyond the tensors handed to `TensorRule.export` / `split`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

_RESNET_NAMES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
_OPEN_CLIP_FIXED = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
    "text_projection.weight": "text_projection",
}
_OPEN_CLIP_LAYER = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


@dataclass(frozen=True)
class TensorRule:
    """One LDM tensor and the module tensors it is made of."""

    ldm_key: str
    module_keys: tuple[str, ...]
    op: str = "copy"

    def export(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        """The LDM tensor from the module's tensors (in `module_keys` order)."""
        if self.op == "concat":
            return torch.cat(tensors, dim=0)
        (tensor,) = tensors
        if self.op == "conv1x1":
            return tensor.reshape(*tensor.shape, 1, 1)
        if self.op == "transpose":
            return tensor.t().contiguous()
        return tensor

    def split(self, tensor: torch.Tensor, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
        """The module's tensors (with the given shapes) from the LDM tensor."""
        if self.op == "concat":
            return list(torch.split(tensor, [shape[0] for shape in shapes], dim=0))
        if self.op == "conv1x1":
            return [tensor.reshape(shapes[0])]
        if self.op == "transpose":
            return [tensor.t().contiguous()]
        return [tensor]


def _resnet(rest: str, names: Mapping[str, str]) -> str:
    head, _, tail = rest.partition(".")
    return f"{names.get(head, head)}.{tail}"


def _unet_key(key: str, layers: int, up_with_attention: set[int]) -> str:
    head, _, param = key.rpartition(".")
    if head in _UNET_FIXED:
        return f"{_UNET_FIXED[head]}.{param}"
    span = layers + 1
    if match := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        index = 1 + block * span + layer
        if kind == "resnets":
            return f"input_blocks.{index}.0.{_resnet(rest, _RESNET_NAMES)}"
        return f"input_blocks.{index}.1.{rest}"
    if match := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(match[1]) + 1) * span}.0.op.{match[2]}"
    if match := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(match[1])}.{_resnet(match[2], _RESNET_NAMES)}"
    if match := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{match[1]}"
    if match := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(match[1]), match[2], int(match[3]), match[4]
        index = block * span + layer
        if kind == "resnets":
            return f"output_blocks.{index}.0.{_resnet(rest, _RESNET_NAMES)}"
        return f"output_blocks.{index}.1.{rest}"
    if match := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(match[1])
        slot = 2 if block in up_with_attention else 1
        return f"output_blocks.{block * span + layers}.{slot}.conv.{match[2]}"
    raise KeyError(f"no LDM name for UNet tensor {key!r}")


def unet_rules(keys: Iterable[str], config: Mapping[str, Any]) -> list[TensorRule]:
    layers = config.get("layers_per_block", 2)
    if not isinstance(layers, int):
        raise ValueError(f"layers_per_block must be one number for the LDM layout, not {layers!r}")
    keys = list(keys)
    up_with_attention = {
        int(match[1]) for key in keys if (match := re.match(r"up_blocks\.(\d+)\.attentions\.", key))
    }
    return [TensorRule(_unet_key(key, layers, up_with_attention), (key,)) for key in keys]


def _vae_key(key: str, up_blocks: int) -> tuple[str, str]:
    names = {"conv_shortcut": "nin_shortcut"}
    if match := re.fullmatch(
        r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key
    ):
        side, name, param = match[1], match[2], match[3]
        op = "conv1x1" if param == "weight" and name != "group_norm" else "copy"
        return f"{side}.mid.attn_1.{_VAE_ATTENTION[name]}.{param}", op
    if match := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{match[1]}.mid.block_{int(match[2]) + 1}.{_resnet(match[3], names)}", "copy"
    if match := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{match[1]}.block.{match[2]}.{_resnet(match[3], names)}", "copy"
    if match := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)", key):
        return f"encoder.down.{match[1]}.downsample.{match[2]}", "copy"
    if match := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        block = up_blocks - 1 - int(match[1])
        return f"decoder.up.{block}.block.{match[2]}.{_resnet(match[3], names)}", "copy"
    if match := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)", key):
        return f"decoder.up.{up_blocks - 1 - int(match[1])}.upsample.{match[2]}", "copy"
    return key.replace("conv_norm_out.", "norm_out."), "copy"


def vae_rules(keys: Iterable[str], config: Mapping[str, Any]) -> list[TensorRule]:
    up_blocks = len(config["up_block_types"])
    rules = []
    for key in keys:
        ldm_key, op = _vae_key(key, up_blocks)
        rules.append(TensorRule(ldm_key, (key,), op))
    return rules


def clip_rules(keys: Iterable[str]) -> list[TensorRule]:
    """transformers CLIPTextModel (with or without the `text_model.` level) -> `text_model.*`."""
    return [
        TensorRule(key if key.startswith("text_model.") else f"text_model.{key}", (key,))
        for key in keys
    ]


def _open_clip_key(inner: str) -> tuple[str, str]:
    if inner in _OPEN_CLIP_FIXED:
        return _OPEN_CLIP_FIXED[inner], "transpose" if inner.startswith(
            "text_projection"
        ) else "copy"
    match = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", inner)
    if match is None:
        raise KeyError(f"no OpenCLIP name for text encoder tensor {inner!r}")
    block, name, param = match[1], match[2], match[3]
    if name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
        return f"transformer.resblocks.{block}.attn.in_proj_{param}", "concat"
    return f"transformer.resblocks.{block}.{_OPEN_CLIP_LAYER[name]}.{param}", "copy"


def open_clip_rules(keys: Iterable[str]) -> list[TensorRule]:
    """transformers CLIPTextModel(WithProjection) -> OpenCLIP names; q, k, v fuse."""
    fused: dict[str, list[str]] = {}
    rules: list[TensorRule] = []
    for key in keys:
        inner = key.removeprefix("text_model.")
        ldm_key, op = _open_clip_key(inner)
        if op == "concat":
            fused.setdefault(ldm_key, []).append(key)
        else:
            rules.append(TensorRule(ldm_key, (key,), op))
    order = {"q_proj": 0, "k_proj": 1, "v_proj": 2}
    for ldm_key, parts in fused.items():
        parts.sort(key=lambda name: order[name.split(".")[-2]])
        if len(parts) != 3:
            raise KeyError(f"{ldm_key}: expected q, k and v projections, found {parts}")
        rules.append(TensorRule(ldm_key, tuple(parts), "concat"))
    return rules


def component_rules(
    layout: str, keys: Iterable[str], prefix: str, config: Mapping[str, Any]
) -> list[TensorRule]:
    """Rules for one component, LDM keys under `prefix`. `layout` is a families.LAYOUTS kind."""
    if layout == "unet":
        rules = unet_rules(keys, config)
    elif layout == "vae":
        rules = vae_rules(keys, config)
    elif layout == "clip":
        rules = clip_rules(keys)
    elif layout == "open_clip":
        rules = open_clip_rules(keys)
    else:
        raise ValueError(f"unknown layout {layout!r}; known: unet, vae, clip, open_clip")
    return [TensorRule(prefix + rule.ldm_key, rule.module_keys, rule.op) for rule in rules]
