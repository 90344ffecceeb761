"""LoRA tensor names -> (which component, which module, which part), for every key style.

    group_keys(tensors) -> (modules, unknown)

Styles understood:

* kohya / LyCORIS: `<prefix><module with _ for .>.<part>`, the prefix naming the component:
  `lora_unet_` (diffusers names `lora_unet_down_blocks_0_attentions_0_..._to_q` or LDM names
  `lora_unet_input_blocks_1_1_...`), `lora_te_` (SD1/SD2 text encoder), `lora_te1_` /
  `lora_te2_` (SDXL CLIP-L / OpenCLIP-G). Parts: `lora_up.weight`, `lora_down.weight`,
  `lora_mid.weight`, `alpha`, `hada_*`, `lokr_*`, `diff`, `diff_b`, ...
* diffusers / PEFT: `unet.<module path>.lora_A.weight` / `lora_B.weight`,
  `text_encoder.` / `text_encoder_2.` prefixes, `lora.up.weight` / `lora.down.weight`,
  `lora_linear_layer.up.weight`, and the attention-processor style
  `...attn1.processor.to_q_lora.up.weight` (module `attn1.to_q`); a key without a component
  prefix is the UNet's (diffusers' old `pytorch_lora_weights` files).

Parts are canonical afterwards: `up`, `down`, `mid` for every LoRA spelling, the rest as
written. Which module a name refers to is decided against a loaded model (`matching`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

KOHYA_PREFIXES = {
    "lora_unet_": "unet",
    "lora_te1_": "text_encoder",
    "lora_te2_": "text_encoder_2",
    "lora_te_": "text_encoder",
}
DOTTED_PREFIXES = {
    "unet.": "unet",
    "text_encoder.": "text_encoder",
    "text_encoder_2.": "text_encoder_2",
}
# Spellings of the LoRA factors -> canonical part names.
LORA_PARTS = {
    "lora_up.weight": "up",
    "lora_down.weight": "down",
    "lora_mid.weight": "mid",
    "lora_B.weight": "up",
    "lora_A.weight": "down",
    "lora.up.weight": "up",
    "lora.down.weight": "down",
    "lora_linear_layer.up.weight": "up",
    "lora_linear_layer.down.weight": "down",
}
PROCESSOR_PARTS = {"_lora.up.weight": "up", "_lora.down.weight": "down"}
# Single-segment parts (LyCORIS and friends) that may end a dotted key too.
PLAIN_PARTS = (
    "alpha", "scale", "dora_scale", "lora_magnitude_vector",
    "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2",
    "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t1",
    "lokr_t2", "diff", "diff_b", "w_norm", "b_norm", "bias", "on_input", "oft_blocks",
    "oft_diag",
)  # fmt: skip
# diffusers' attention-processor names in a text encoder -> transformers' CLIP names.
TEXT_PROCESSOR_NAMES = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}


@dataclass(frozen=True)
class ModuleRef:
    """Where a group of tensors points: a component, a module name, and its spelling.

    `style` "flat": `name` uses `_` for `.` (kohya); "dotted": a module path. `component`
    is None when the key does not say (matched against the UNet, then the text encoders).
    """

    component: str | None
    name: str
    style: str


@dataclass
class ModuleWeights:
    """The tensors one network stores for one target module."""

    ref: ModuleRef
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # the file's own names, for reports


def _kohya(key: str) -> tuple[ModuleRef, str] | None:
    head, dot, part = key.partition(".")
    if not dot:
        return None
    for prefix, component in KOHYA_PREFIXES.items():
        if head.startswith(prefix):
            return ModuleRef(component, head[len(prefix) :], "flat"), LORA_PARTS.get(part, part)
    return None


def _dotted_component(path: str) -> tuple[str | None, str]:
    path = path.removeprefix("base_model.model.")
    for prefix, component in DOTTED_PREFIXES.items():
        if path.startswith(prefix):
            return component, path[len(prefix) :]
    if path.startswith("text_model."):
        return "text_encoder", path
    return None, path


def _processor_path(path: str, component: str | None) -> str:
    """`...attn1.processor.to_q` -> `...attn1.to_q` (UNet, `to_out` -> `to_out.0`) or the
    text encoder's `...self_attn.q_proj`."""
    path = path.replace(".processor.", ".")
    head, _, leaf = path.rpartition(".")
    if component in ("text_encoder", "text_encoder_2"):
        leaf = TEXT_PROCESSOR_NAMES.get(leaf, leaf)
    elif leaf == "to_out":
        leaf = "to_out.0"
    return f"{head}.{leaf}" if head else leaf


def _dotted(key: str) -> tuple[ModuleRef, str] | None:
    for spelling, part in PROCESSOR_PARTS.items():
        if key.endswith(spelling):
            component, path = _dotted_component(key[: -len(spelling)])
            return ModuleRef(component, _processor_path(path, component), "dotted"), part
    for spelling, part in LORA_PARTS.items():
        if key.endswith("." + spelling):
            component, path = _dotted_component(key[: -len(spelling) - 1])
            return ModuleRef(component, path, "dotted"), part
    head, _, last = key.rpartition(".")
    if head and last in PLAIN_PARTS:
        component, path = _dotted_component(head)
        return ModuleRef(component, path, "dotted"), last
    return None


def parse_key(key: str) -> tuple[ModuleRef, str] | None:
    """(module, canonical part) of one tensor name, or None for a name of no known style."""
    return _kohya(key) or _dotted(key)


def group_keys(
    tensors: Mapping[str, torch.Tensor],
) -> tuple[dict[ModuleRef, ModuleWeights], list[str]]:
    """Tensors grouped by the module they patch, and the keys of no known style."""
    modules: dict[ModuleRef, ModuleWeights] = {}
    unknown: list[str] = []
    for key, tensor in tensors.items():
        parsed = parse_key(key)
        if parsed is None:
            unknown.append(key)
            continue
        ref, part = parsed
        weights = modules.setdefault(ref, ModuleWeights(ref))
        if part in weights.parts:  # two spellings of one part: keep the first, report this
            unknown.append(key)
            continue
        weights.parts[part] = tensor
        weights.keys.append(key)
    return modules, unknown
