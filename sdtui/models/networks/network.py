"""A LoRA network read from a file: its tensors grouped by the module they change.

    network = load_network("models/Lora/add_detail.safetensors")
    network.modules      # ModuleRef -> ModuleWeights (see keys.py)
    network.unknown_keys # names of no known style (reported when the network is matched)

`.safetensors` files are read with the project's reader (no code runs); `.pt` / `.ckpt`
through the restricted unpickler of `checkpoint_file`. Tensors stay on the CPU in the file's
dtype; deltas are computed in fp32 on the model's device when the network is applied.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sdtui.models.checkpoint_file import CheckpointError, load_state_dict
from sdtui.models.networks.keys import ModuleRef, ModuleWeights, group_keys

EXPECTED_LORA = "a LoRA / LyCORIS network (.safetensors, .pt or .ckpt)"
_IN_MEMORY = itertools.count(1)  # identities of networks made from tensors (never reused)


@dataclass(eq=False)
class LoraNetwork:
    """One network: a name, its module groups, and where it came from."""

    name: str
    modules: dict[ModuleRef, ModuleWeights]
    unknown_keys: list[str] = field(default_factory=list)
    path: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    short_hash: str | None = None  # the 12-hex addnet hash for "Lora hashes"
    identity: str = ""  # what makes two loads the same network (file, size, mtime)

    def __post_init__(self) -> None:
        if not self.identity:
            self.identity = f"memory:{next(_IN_MEMORY)}"

    @property
    def key_count(self) -> int:
        return sum(len(weights.keys) for weights in self.modules.values()) + len(self.unknown_keys)


def network_from_tensors(
    name: str,
    tensors: Mapping[str, torch.Tensor],
    *,
    path: Path | None = None,
    metadata: Mapping[str, str] | None = None,
    identity: str = "",
) -> LoraNetwork:
    """A network from a state dict (floating tensors kept as given)."""
    modules, unknown = group_keys(tensors)
    return LoraNetwork(
        name,
        modules,
        unknown,
        path=path,
        metadata=dict(metadata or {}),
        identity=identity,
    )


def file_identity(path: Path) -> str:
    stat = path.stat()
    return f"{os.fspath(path.absolute())}|{stat.st_size}|{stat.st_mtime_ns}"


def load_network(path: str | os.PathLike[str], name: str | None = None) -> LoraNetwork:
    """Read a network file; CheckpointError when it is not one (names the file)."""
    path = Path(path)
    tensors, metadata = load_state_dict(path, "cpu", expected=EXPECTED_LORA)
    network = network_from_tensors(
        name or path.stem,
        tensors,
        path=path,
        metadata=metadata,
        identity=file_identity(path),
    )
    if not network.modules:
        sample = ", ".join(list(tensors)[:4])
        raise CheckpointError(path, f"no LoRA tensors (first keys: {sample})", EXPECTED_LORA)
    return network
