"""Textual-inversion embedding files, in the formats A1111 loads.

    embedding = load_embedding(Path("embeddings/style.pt"))   # None: a picture, no embedding
    embedding.vectors                                          # prompt slots it takes
    embedding.vectors_for("text_encoder", 768)                 # tensor [vectors, 768]

What a file may hold (A1111 `textual_inversion.create_embedding_from_data`):

* A1111's training output (`.pt`, `.bin`, and images): `{"string_to_param": {"*": [n, width]},
  "name", "step", "sd_checkpoint", "sd_checkpoint_name", ...}` with exactly one term. Files
  from the original textual-inversion code hold a `torch.nn.ParameterDict` there; its state is
  read as plain data (a stand-in class), nothing of torch.nn is rebuilt.
* diffusers concepts and other trainers (`.bin`, `.safetensors`): one tensor, `[width]` or
  `[n, width]`, under any key (`"<token>"`, `"emb_params"`, ...).
* SDXL (`.safetensors`): `{"clip_l": [n, 768], "clip_g": [n, 1280]}`; `clip_l` goes to the
  first text encoder, `clip_g` to the second.
* Images (`.png`, `.webp`, `.avif`, `.jxl`): see `embedding_images`; `x.preview.png` is a
  preview picture. An image without an embedding is not an error (None).

The name is the file stem with its case (images: the `name` stored inside, as A1111). Vectors
are kept as float32 on the CPU. Pickles go through the restricted unpickler; a file that is
not an embedding raises `EmbeddingError` naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sdtui.models.checkpoint_file import CheckpointError, load_pickle, load_state_dict
from sdtui.models.embedding_images import (
    IMAGE_EXTENSIONS,
    ImageEmbeddingError,
    read_image_embedding,
)

EMBEDDING_EXTENSIONS = (".pt", ".bin", ".safetensors", *IMAGE_EXTENSIONS)
EXPECTED = (
    "a textual-inversion embedding (.pt / .bin / .safetensors with one tensor [vectors, width], "
    "A1111's string_to_param, SDXL clip_l + clip_g, or a PNG with an embedding)"
)
SINGLE = "*"  # the part name of a one-tensor embedding
ENCODER_PARTS = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}  # SDXL
MAX_VECTORS = 75  # one prompt chunk


class EmbeddingError(CheckpointError):
    """A file in the embeddings folder that is not a usable embedding."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(path, problem, EXPECTED)


class ModuleState:
    """Stand-in for a pickled `torch.nn.ParameterDict`: only its attributes (plain data and
    tensors) are restored, as the restricted unpickler's BUILD sets them."""

    _parameters: dict[str, Any]


_PICKLE_GLOBALS = [
    (ModuleState, "torch.nn.modules.container.ParameterDict"),
    set,  # ParameterDict state holds an empty set
]


@dataclass(eq=False)  # compared by identity: conditioning caches key on the object
class Embedding:
    """One embedding: `parts` maps "*" (one tensor) or "clip_l"/"clip_g" to [vectors, width]."""

    name: str
    parts: dict[str, torch.Tensor]
    path: Path | None = None
    step: int | None = None
    checkpoint_hash: str | None = None  # A1111's `sd_checkpoint`
    checkpoint_name: str | None = None  # A1111's `sd_checkpoint_name`
    widths: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.widths = {part: int(tensor.shape[1]) for part, tensor in self.parts.items()}

    @property
    def vectors(self) -> int:
        """Prompt slots it takes (A1111's `vectors`)."""
        return int(next(iter(self.parts.values())).shape[0])

    @property
    def width(self) -> int:
        """A1111's `shape`: the width, or clip_l + clip_g for SDXL."""
        return sum(self.widths.values())

    @property
    def is_sdxl(self) -> bool:
        return SINGLE not in self.parts

    def vectors_for(self, encoder: str, width: int) -> torch.Tensor:
        """[vectors, width] for text encoder `encoder` ("text_encoder" / "text_encoder_2")."""
        part = ENCODER_PARTS.get(encoder) if self.is_sdxl else SINGLE
        tensor = self.parts.get(part) if part else None
        if tensor is None or tensor.shape[1] != width:
            have = ", ".join(f"{p} {w}" for p, w in self.widths.items())
            raise ValueError(
                f"embedding {self.name!r} ({have}) has no vectors for {encoder} of width {width}"
            )
        return tensor


def _matrix(path: Path, tensor: Any, what: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise EmbeddingError(path, f"{what} is not a floating-point tensor")
    tensor = tensor.detach().to("cpu", torch.float32)
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2 or 0 in tensor.shape:
        raise EmbeddingError(path, f"{what} has shape {list(tensor.shape)}, not [vectors, width]")
    if tensor.shape[0] > MAX_VECTORS:
        raise EmbeddingError(
            path, f"{what} has {tensor.shape[0]} vectors; at most {MAX_VECTORS} fit in a prompt"
        )
    return tensor.contiguous()


def _only(path: Path, terms: Any, what: str) -> Any:
    if not isinstance(terms, dict) or len(terms) != 1:
        count = len(terms) if isinstance(terms, dict) else "no"
        raise EmbeddingError(path, f"{what} has {count} terms; an embedding file holds one")
    return next(iter(terms.values()))


def _parts(path: Path, data: Any) -> dict[str, torch.Tensor]:
    if not isinstance(data, dict) or not data:
        raise EmbeddingError(path, f"it holds a {type(data).__name__}, not an embedding dict")
    if "string_to_param" in data:
        terms = data["string_to_param"]
        terms = getattr(terms, "_parameters", terms)
        return {SINGLE: _matrix(path, _only(path, terms, "string_to_param"), "string_to_param")}
    if "clip_l" in data and "clip_g" in data:
        parts = {key: _matrix(path, data[key], key) for key in ("clip_l", "clip_g")}
        if parts["clip_l"].shape[0] != parts["clip_g"].shape[0]:
            counts = f"{parts['clip_l'].shape[0]} and {parts['clip_g'].shape[0]}"
            raise EmbeddingError(path, f"clip_l and clip_g have different vector counts ({counts})")
        return parts
    if len(data) != 1:
        keys = ", ".join(repr(key) for key in list(data)[:5])
        raise EmbeddingError(
            path, f"it has {len(data)} entries ({keys}); an embedding file holds one tensor"
        )
    key, tensor = next(iter(data.items()))
    return {SINGLE: _matrix(path, tensor, repr(key))}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def embedding_from_data(data: Any, name: str, path: str | os.PathLike[str]) -> Embedding:
    """An Embedding from a loaded file's data (A1111's `create_embedding_from_data`)."""
    path = Path(path)
    parts = _parts(path, data)
    step = data.get("step")
    return Embedding(
        name,
        parts,
        path,
        step=int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None,
        checkpoint_hash=_text(data.get("sd_checkpoint")),
        checkpoint_name=_text(data.get("sd_checkpoint_name")),
    )


def is_preview_image(path: Path) -> bool:
    """`name.preview.png` (an extra-networks card picture), never an embedding."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and Path(path.stem).suffix.lower() == ".preview"


def load_embedding(path: str | os.PathLike[str]) -> Embedding | None:
    """The embedding in a file; None for a picture that carries none."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EMBEDDING_EXTENSIONS:
        known = ", ".join(EMBEDDING_EXTENSIONS)
        raise EmbeddingError(path, f"unknown file extension {suffix!r} (known: {known})")
    if suffix in IMAGE_EXTENSIONS:
        if is_preview_image(path):
            return None
        try:
            data = read_image_embedding(path)
        except ImageEmbeddingError as exc:
            raise EmbeddingError(path, str(exc)) from None
        if data is None:
            return None
        stored = data.get("name")
        return embedding_from_data(data, stored if isinstance(stored, str) else path.stem, path)
    if suffix == ".safetensors":
        data, _ = load_state_dict(path, expected=EXPECTED)
    else:
        data = load_pickle(path, expected=EXPECTED, extra_globals=_PICKLE_GLOBALS)
    return embedding_from_data(data, path.stem, path)
