"""LoRA / LyCORIS networks as removable weight patches on a loaded model.

    networks = load_loras(dirs, ["add_detail"])           # library: find, read, hash
    patch = network_patch(model)
    with patch.applied([AppliedNetwork(networks["add_detail"], te=0.8, unet=0.8)]):
        ...                                               # generate

Modules: `keys` (tensor names of every style), `algorithms` (LoRA, LoHa, LoKr, full diffs),
`network` (a file's tensors grouped per module), `matching` (groups -> the model's modules),
`patch` (apply / remove, bit-exact), `library` (files in models/Lora, hashes).
"""

from sdtui.models.networks.library import (
    LoraFile,
    LoraNotFoundError,
    discover_loras,
    find_lora,
    load_loras,
    lora_hashes_infotext,
)
from sdtui.models.networks.matching import NetworkMatch, match_network
from sdtui.models.networks.network import LoraNetwork, load_network, network_from_tensors
from sdtui.models.networks.patch import AppliedNetwork, NetworkPatch, network_patch

__all__ = [
    "AppliedNetwork",
    "LoraFile",
    "LoraNetwork",
    "LoraNotFoundError",
    "NetworkMatch",
    "NetworkPatch",
    "discover_loras",
    "find_lora",
    "load_loras",
    "load_network",
    "lora_hashes_infotext",
    "match_network",
    "network_from_tensors",
    "network_patch",
]
