"""LoRA files in the data dir, found by the names prompts use, and their infotext hashes.

    loras = discover_loras(dirs)                  # models/Lora, recursively
    found = find_lora(loras, "add_detail")        # by file stem, else by `ss_output_name`
    networks = load_loras(dirs, ["add_detail"])   # name -> LoraNetwork with short_hash
    lora_hashes_infotext({"add_detail": "7c6bad76eb54"})  # 'add_detail: 7c6bad76eb54'

As in A1111: `.safetensors`, `.pt` and `.ckpt` under the LoRA dir, a network is named by
its file stem (when two files share a stem, the later one in sorted order wins) and also
answers to the `ss_output_name` in its metadata unless another network already uses that
name; the infotext hash is the 12-hex addnet hash (`HashCache.addnet`), the name written
without `:` and `,`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sdtui.models.checkpoint_file import CheckpointError, read_header
from sdtui.models.discovery import ModelNotFoundError, walk_files
from sdtui.models.hashes import HashCache, addnet_hash, lora_short_hash
from sdtui.models.networks.network import LoraNetwork, load_network
from sdtui.paths import DataDirs

LORA_EXTENSIONS = (".safetensors", ".pt", ".ckpt")


class LoraNotFoundError(ModelNotFoundError):
    """A LoRA name that matches no file; the message lists close names."""


@dataclass(frozen=True)
class LoraFile:
    name: str  # the file stem, as prompts name it
    path: Path

    def alias(self) -> str | None:
        """`ss_output_name` from a .safetensors header (kohya's training name), if any."""
        if self.path.suffix.lower() != ".safetensors":
            return None
        try:
            alias = read_header(self.path).metadata.get("ss_output_name")
        except CheckpointError:
            return None
        return alias or None


def discover_loras(dirs: DataDirs | Path) -> list[LoraFile]:
    """Every LoRA file under the LoRA dir, sorted by path."""
    top = dirs.lora if isinstance(dirs, DataDirs) else Path(dirs)
    if not top.is_dir():
        return []
    paths = sorted(p for p in walk_files(top) if p.suffix.lower() in LORA_EXTENSIONS)
    return [LoraFile(path.stem, path) for path in paths]


def _aliases(loras: Iterable[LoraFile], names: set[str]) -> dict[str, LoraFile]:
    found: dict[str, LoraFile] = {}
    taken: set[str] = set()
    for lora in loras:
        alias = lora.alias()
        if not alias or alias == lora.name:
            continue
        if alias in found or alias in names:
            taken.add(alias)
        found[alias] = lora
    return {alias: lora for alias, lora in found.items() if alias not in taken}


def find_lora(loras: list[LoraFile], name: str, top: Path | None = None) -> LoraFile:
    """The file a prompt's name refers to; LoraNotFoundError lists close names."""
    by_name = {lora.name: lora for lora in loras}  # the later file wins, as in A1111
    if name in by_name:
        return by_name[name]
    aliases = _aliases(loras, set(by_name))
    if name in aliases:
        return aliases[name]
    known = sorted({*by_name, *aliases}, key=str.lower)
    where = f" in {top}" if top else ""
    if not known:
        raise LoraNotFoundError(f"no LoRA named {name!r}: there are no LoRA files{where}")
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    close += [k for k in known if name.lower() in k.lower() and k not in close]
    hint = f"close names: {', '.join(close[:5])}" if close else f"known: {', '.join(known[:20])}"
    raise LoraNotFoundError(f"no LoRA named {name!r}{where}; {hint}")


def lora_hash(lora: LoraFile, cache: HashCache | None = None) -> str:
    """The 12-hex hash A1111 writes in "Lora hashes" (addnet hash, cached)."""
    if cache is None:
        return lora_short_hash(addnet_hash(lora.path))
    return lora_short_hash(cache.addnet(lora.path, a1111_key=f"lora/{lora.name}"))


def load_loras(
    dirs: DataDirs, names: Iterable[str], cache: HashCache | None = None
) -> dict[str, LoraNetwork]:
    """Find (all first, so a typo fails before anything is read) and load named networks."""
    names = list(dict.fromkeys(names))
    if not names:
        return {}
    loras = discover_loras(dirs)
    files = {name: find_lora(loras, name, dirs.lora) for name in names}
    cache = cache or HashCache.for_dirs(dirs)
    networks = {}
    for name, lora in files.items():
        network = load_network(lora.path, name)
        network.short_hash = lora_hash(lora, cache)
        networks[name] = network
    return networks


def lora_hashes_infotext(hashes: Mapping[str, str | None]) -> str | None:
    """A1111's "Lora hashes" value: `name: hash, ...` (names without `:` and `,`)."""
    table = str.maketrans("", "", ":,")
    items = [f"{name.translate(table)}: {short}" for name, short in hashes.items() if short]
    return ", ".join(items) if items else None
