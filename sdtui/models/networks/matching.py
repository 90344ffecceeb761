"""Which module of a loaded model each group of a network changes.

    match = match_network(network, model)   # model: .unet, .text_encoder, .text_encoder_2
    match.patches       # ModulePatch: component, module path, module, its Delta
    match.unmatched     # the file's keys that name no module of this model
    match.unsupported   # key -> why it cannot be applied (DoRA, shape mismatch, ...)

A module answers to its own path (`down_blocks.0.attentions.0.proj_in`), that path with `_`
for `.` (kohya), and, in the UNet, its LDM name in both spellings
(`input_blocks.1.1.proj_in`, `input_blocks_1_1_proj_in`: SDXL kohya files use these), taken
from `ldm_layout`. Text encoder modules also answer with and without a `text_model.` level.
Every delta is built on the meta device first, so a network for another architecture is
reported module by module instead of failing half-way through patching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from sdtui.models.ldm_layout import unet_rules
from sdtui.models.networks.algorithms import Delta, UnsupportedModule, make_delta
from sdtui.models.networks.keys import ModuleRef
from sdtui.models.networks.network import LoraNetwork

COMPONENTS = ("unet", "text_encoder", "text_encoder_2")
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")


@dataclass(frozen=True)
class ModulePatch:
    """One module a network changes."""

    component: str
    path: str
    module: torch.nn.Module
    delta: Delta
    keys: tuple[str, ...]

    @property
    def is_text_encoder(self) -> bool:
        return self.component in TEXT_ENCODERS


@dataclass
class NetworkMatch:
    """A network against one model: what it changes and what it cannot."""

    network: LoraNetwork
    patches: list[ModulePatch] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    unsupported: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for logs: counts, and a few example keys."""
        parts = [f"LoRA {self.network.name}: {len(self.patches)} modules"]
        if self.unmatched:
            sample = ", ".join(self.unmatched[:3])
            parts.append(f"{len(self.unmatched)} keys match no module ({sample}, ...)")
        if self.unsupported:
            reasons = sorted(set(self.unsupported.values()))
            parts.append(f"{len(self.unsupported)} keys not applied ({reasons[0]}, ...)")
        return "; ".join(parts)


def _ldm_names(unet: torch.nn.Module) -> dict[str, str]:
    """module path -> LDM module name, for modules with a weight."""
    config = getattr(unet, "config", None)
    if config is None:
        return {}
    keys = [name for name, _ in unet.named_parameters()]
    try:
        rules = unet_rules(keys, config)
    except (KeyError, ValueError):  # not an SD-shaped UNet: diffusers names only
        return {}
    names = {}
    for rule in rules:
        (key,) = rule.module_keys
        if key.endswith(".weight") and rule.ldm_key.endswith(".weight"):
            names[key.removesuffix(".weight")] = rule.ldm_key.removesuffix(".weight")
    return names


class ModuleIndex:
    """Every weighted module of a model's UNet and text encoders, under each of its names."""

    def __init__(self, model: Any) -> None:
        self.modules: dict[str, dict[str, torch.nn.Module]] = {}
        self.names: dict[str, dict[str, str]] = {}
        for component in COMPONENTS:
            root = getattr(model, component, None)
            if root is None:
                continue
            targets = {
                path: module
                for path, module in root.named_modules()
                if isinstance(getattr(module, "weight", None), torch.nn.Parameter)
            }
            self.modules[component] = targets
            self.names[component] = self._aliases(component, root, targets)

    @staticmethod
    def _aliases(
        component: str, root: torch.nn.Module, targets: dict[str, torch.nn.Module]
    ) -> dict[str, str]:
        names: dict[str, str] = {}
        spellings: list[tuple[str, str]] = [(path, path) for path in targets]
        if component in TEXT_ENCODERS:
            for path in targets:
                if path.startswith("text_model."):
                    spellings.append((path.removeprefix("text_model."), path))
                else:
                    spellings.append((f"text_model.{path}", path))
        elif component == "unet":
            spellings += [(ldm, path) for path, ldm in _ldm_names(root).items()]
        for name, path in spellings:
            names.setdefault(name, path)
            names.setdefault(name.replace(".", "_"), path)
        return names

    def find(self, ref: ModuleRef) -> tuple[str, str, torch.nn.Module] | None:
        """(component, module path, module) a reference names, or None."""
        components = [ref.component] if ref.component else list(COMPONENTS)
        for component in components:
            path = self.names.get(component, {}).get(ref.name)
            if path is not None:
                return component, path, self.modules[component][path]
        return None


def _check(delta: Delta, module: torch.nn.Module) -> None:
    """Raise UnsupportedModule unless the delta fits the module (checked on meta tensors)."""
    if delta.changes_weight:
        delta.weight(module.weight.shape, device="meta")
    if delta.bias is not None:
        bias = getattr(module, "bias", None)
        if not isinstance(bias, torch.nn.Parameter):
            raise UnsupportedModule("it changes a bias the module does not have")
        if delta.bias.numel() != bias.numel():
            raise UnsupportedModule(
                f"its bias change has {delta.bias.numel()} values, the bias {bias.numel()}"
            )


def match_network(
    network: LoraNetwork, model: Any, index: ModuleIndex | None = None
) -> NetworkMatch:
    """Pair every module group of `network` with a module of `model`; report the rest."""
    index = index or ModuleIndex(model)
    match = NetworkMatch(network)
    for ref, weights in network.modules.items():
        found = index.find(ref)
        if found is None:
            match.unmatched.extend(weights.keys)
            continue
        component, path, module = found
        try:
            delta = make_delta(weights.parts)
            _check(delta, module)
        except UnsupportedModule as error:
            for key in weights.keys:
                match.unsupported[key] = f"{component}.{path}: {error}"
            continue
        match.patches.append(ModulePatch(component, path, module, delta, tuple(weights.keys)))
    match.unmatched.extend(network.unknown_keys)
    return match
