"""Networks applied to a loaded model's weights, and taken off again bit-exactly.

    patch = network_patch(model)                   # one per model
    patch.apply([AppliedNetwork(net, te=0.8, unet=0.8), AppliedNetwork(other, 1.0, 0.5)])
    ...                                            # generate
    patch.remove()                                 # every weight as it was, bit for bit
    with patch.applied(networks): ...              # the same, as a context manager

Each touched weight becomes `W + sum(multiplier * scale * delta)`: the deltas of all active
networks are summed in fp32 on the weight's device, added to `W` in fp32 and cast back to the
model's dtype once. Text encoder modules take a network's te multiplier, UNet modules its
unet multiplier. Before a weight changes, an exact copy of it is kept (on the CPU, as A1111
keeps its backups), and `remove` copies it back into the same tensor, so modules keep their
parameters and a restored model is identical to the loaded one.

Applying the set that is already active (same networks, same multipliers) does nothing;
a different set restores the weights first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from sdtui.models.networks.matching import ModuleIndex, ModulePatch, NetworkMatch, match_network
from sdtui.models.networks.network import LoraNetwork

log = logging.getLogger(__name__)
_ATTRIBUTE = "_sdtui_network_patch"
MATCH_CACHE = 8  # networks whose matches are kept (their tensors stay in memory)


@dataclass(frozen=True)
class AppliedNetwork:
    """A network with the multipliers a prompt gave it."""

    network: LoraNetwork
    te: float = 1.0
    unet: float = 1.0
    dyn: int | None = None

    @property
    def key(self) -> tuple[str, str, float, float, int | None]:
        return (self.network.name, self.network.identity, self.te, self.unet, self.dyn)

    def multiplier(self, patch: ModulePatch) -> float:
        return self.te if patch.is_text_encoder else self.unet


Term = Callable[[], torch.Tensor]


class NetworkPatch:
    """The networks applied to one model, and the original weights they replaced."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._originals: dict[int, tuple[torch.nn.Parameter, torch.Tensor]] = {}
        self._active: tuple[AppliedNetwork, ...] = ()
        self._matches: dict[tuple[str, tuple[int, ...]], NetworkMatch] = {}
        self._index: tuple[tuple[int, ...], ModuleIndex] | None = None

    @property
    def active(self) -> tuple[AppliedNetwork, ...]:
        return self._active

    @property
    def touched(self) -> int:
        """How many tensors are currently changed."""
        return len(self._originals)

    def _components(self) -> tuple[int, ...]:
        names = ("unet", "text_encoder", "text_encoder_2")
        return tuple(id(getattr(self.model, name, None)) for name in names)

    def match(self, network: LoraNetwork) -> NetworkMatch:
        """The network against this model (cached while the model's modules stay the same)."""
        components = self._components()
        key = (network.identity, components)
        if key not in self._matches:
            if self._index is None or self._index[0] != components:
                self._index = (components, ModuleIndex(self.model))
            match = match_network(network, self.model, self._index[1])
            if match.unmatched or match.unsupported:
                log.warning("%s", match.summary())
            while len(self._matches) >= MATCH_CACHE:
                del self._matches[next(iter(self._matches))]
            self._matches[key] = match
        return self._matches[key]

    def apply(self, networks: Sequence[AppliedNetwork]) -> list[NetworkMatch]:
        """Make `networks` the active set (restoring a different one first)."""
        networks = tuple(networks)
        matches = [self.match(applied.network) for applied in networks]
        if [n.key for n in networks] == [n.key for n in self._active]:
            return matches
        self.remove()
        try:
            self._write(self._terms(networks, matches))
        except BaseException:
            self.remove()
            raise
        self._active = networks
        return matches

    def _terms(
        self, networks: Sequence[AppliedNetwork], matches: Sequence[NetworkMatch]
    ) -> dict[int, tuple[torch.nn.Parameter, list[Term]]]:
        """Per parameter, the fp32 changes to add (computed only when written)."""
        terms: dict[int, tuple[torch.nn.Parameter, list[Term]]] = {}
        for applied, match in zip(networks, matches, strict=True):
            for patch in match.patches:
                multiplier = applied.multiplier(patch)
                if multiplier == 0:
                    continue
                delta, weight = patch.delta, patch.module.weight
                if delta.changes_weight:
                    terms.setdefault(id(weight), (weight, []))[1].append(
                        lambda d=delta, w=weight, m=multiplier, dyn=applied.dyn: (
                            d.weight(w.shape, device=w.device, dyn=dyn) * m
                        )
                    )
                if delta.bias is not None:
                    bias = patch.module.bias
                    terms.setdefault(id(bias), (bias, []))[1].append(
                        lambda d=delta, b=bias, m=multiplier: (
                            d.bias.to(b.device, torch.float32).reshape(b.shape) * m
                        )
                    )
        return terms

    @torch.no_grad()
    def _write(self, terms: dict[int, tuple[torch.nn.Parameter, list[Term]]]) -> None:
        for key, (param, changes) in terms.items():
            total = changes[0]()
            for change in changes[1:]:
                total += change()
            self._originals[key] = (param, param.detach().to("cpu", copy=True))
            param.copy_((param.float() + total).to(param.dtype))

    @torch.no_grad()
    def remove(self) -> None:
        """Every changed weight back to its exact original values."""
        for param, original in self._originals.values():
            param.copy_(original)
        self._originals.clear()
        self._active = ()

    @contextmanager
    def applied(self, networks: Sequence[AppliedNetwork]) -> Iterator[NetworkPatch]:
        """Apply for the duration of a block; removed on the way out, errors included."""
        self.apply(networks)
        try:
            yield self
        finally:
            self.remove()


def network_patch(model: Any) -> NetworkPatch:
    """The one patch of a model (kept on the model object, so it travels with the cache)."""
    patch = getattr(model, _ATTRIBUTE, None)
    if patch is None:
        patch = NetworkPatch(model)
        setattr(model, _ATTRIBUTE, patch)
    return patch
