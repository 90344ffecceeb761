"""The names the extra-networks picker and prompt completion offer, read without torch.

    lora_names(dirs)                 # ["add_detail", "grain", ...] from models/Lora
    embedding_names(dirs)            # ["EasyNegative", ...] from embeddings/
    lora_tag("add_detail")           # "<lora:add_detail:1>"
    lora_completion("a <lora:ad")    # LoraCompletion(start=9, partial="ad")
    matching(names, "ad")            # names starting with "ad", then names containing it

Only folders are walked and file names read (no tensors, no headers), so listing is cheap
enough to redo on every key. Names are what prompts use: a LoRA by its file stem (as
`sdtui.models.networks.library`, which reads headers for `ss_output_name` and imports
torch), an embedding by its file stem (as `sdtui.models.embedding_db`). Files that turn out
not to load are still listed; using one gives the job's usual error message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sdtui.models.discovery import natural_key, walk_files
from sdtui.paths import DataDirs

LORA_EXTENSIONS = (".safetensors", ".pt", ".ckpt")  # as sdtui.models.networks.library
EMBEDDING_EXTENSIONS = (".pt", ".bin", ".safetensors", ".png", ".webp", ".jxl", ".avif")
IMAGE_EXTENSIONS = (".png", ".webp", ".jxl", ".avif")
DEFAULT_MULTIPLIER = 1.0  # A1111's extra_networks_default_multiplier
LORA_COMPLETION = re.compile(r"<(?:lora|lyco):([^:<>\n]*)$")


def _stems(top: Path, extensions: tuple[str, ...]) -> list[str]:
    if not top.is_dir():
        return []
    names: set[str] = set()
    for path in walk_files(top):
        suffix = path.suffix.lower()
        if suffix not in extensions:
            continue
        if suffix in IMAGE_EXTENSIONS and Path(path.stem).suffix.lower() == ".preview":
            continue  # an extra-networks card picture
        try:
            if path.stat().st_size == 0:
                continue
        except OSError:
            continue
        names.add(path.stem)
    return sorted(names, key=lambda name: natural_key(name.lower()))


def lora_names(dirs: DataDirs) -> list[str]:
    """LoRA files under the LoRA dir by file stem, sorted, each name once."""
    return _stems(dirs.lora, LORA_EXTENSIONS)


def embedding_names(dirs: DataDirs) -> list[str]:
    """Textual-inversion files under the embeddings dir by file stem (previews left out)."""
    return _stems(dirs.embeddings, EMBEDDING_EXTENSIONS)


def format_multiplier(value: float) -> str:
    """1.0 -> "1", 0.75 -> "0.75" (what A1111's page inserts: a JavaScript number)."""
    return f"{value:g}"


def lora_tag(name: str, multiplier: float = DEFAULT_MULTIPLIER) -> str:
    return f"<lora:{name}:{format_multiplier(multiplier)}>"


@dataclass(frozen=True)
class LoraCompletion:
    """An unfinished `<lora:` tag just before the cursor: the name typed so far starts at
    `start` (an index into the text before the cursor)."""

    start: int
    partial: str


def lora_completion(before_cursor: str) -> LoraCompletion | None:
    """The unfinished `<lora:name` (or `<lyco:`) that ends `before_cursor`, if any."""
    match = LORA_COMPLETION.search(before_cursor)
    if match is None:
        return None
    return LoraCompletion(match.start(1), match.group(1))


def matching(names: Iterable[str], typed: str, limit: int | None = None) -> list[str]:
    """Names starting with `typed` (case-insensitively), then those containing it."""
    needle = typed.lower()
    names = list(names)
    first = [name for name in names if name.lower().startswith(needle)]
    rest = [name for name in names if needle in name.lower() and name not in first]
    found = first + rest
    return found if limit is None else found[:limit]
