"""Upscaler model files in the data dir's folders, as A1111 finds them.

    usable, unusable = scan_upscaler_files(dirs)     # [UpscalerFile], [(path, reason)]

Files ending in .pth, .pt or .safetensors anywhere under `models/ESRGAN`,
`models/RealESRGAN`, `models/SwinIR`, `models/ScuNET`, `models/DAT` and `models/HAT` are
upscalers named by their file stem (A1111's `friendly_name`). Any architecture spandrel
recognises will do.

Scanning reads no weights: a `.safetensors` header gives names, dtypes and shapes, a
pickled `.pth` is unpickled with its tensors on the `meta` device (torch's `weights_only`
unpickler: no code runs), and spandrel builds the network on `meta` too, so a file is
checked for its architecture, its shapes and its native scale for a fraction of a second
without reading its hundreds of megabytes. Transformers that compute with tensors while
they are built (SwinIR, HAT, DAT) are built on the CPU instead, from the file's small
tensors and zeros for the large ones (a few MB read, a model's worth of memory briefly).
The weights are read on first use (`load_state_dict`). A file that spandrel does not
recognise, or that is not an image upscaler (an inpainting or face model), is returned
with the reason.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdtui.paths import DataDirs

UPSCALER_FOLDERS = ("ESRGAN", "RealESRGAN", "SwinIR", "ScuNET", "DAT", "HAT")
EXTENSIONS = (".pth", ".pt", ".safetensors")
MAX_HEADER = 100 * 1024 * 1024  # a safetensors header larger than this is not one

_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


class UnusableModelError(ValueError):
    """A file that cannot be used as an upscaler; the message says why."""


@dataclass(frozen=True)
class UpscalerFile:
    path: Path
    name: str  # the file stem, as A1111 shows it
    architecture: str  # spandrel's architecture name, e.g. "ESRGAN"
    scale: int  # the model's native factor


def upscaler_paths(dirs: DataDirs) -> list[Path]:
    """Candidate files, folder by folder in `UPSCALER_FOLDERS` order, sorted within each."""
    found: list[Path] = []
    for folder in UPSCALER_FOLDERS:
        root = dirs.models(folder)
        if root.is_dir():
            files = (p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS)
            found += sorted((p for p in files if p.is_file()), key=lambda p: str(p).casefold())
    return found


def _safetensors_meta(path: Path) -> dict[str, Any]:
    import torch

    with path.open("rb") as file:
        head = file.read(8)
        if len(head) < 8:
            raise UnusableModelError("too short for a .safetensors file")
        (size,) = struct.unpack("<Q", head)
        if size > MAX_HEADER or size > path.stat().st_size - 8:
            raise UnusableModelError("not a .safetensors file (bad header length)")
        try:
            header = json.loads(file.read(size))
        except ValueError as error:
            raise UnusableModelError(f"not a .safetensors file ({error})") from None
    if not isinstance(header, dict):
        raise UnusableModelError("not a .safetensors file (header is not a JSON object)")
    tensors = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = getattr(torch, _SAFETENSORS_DTYPES.get(entry["dtype"], "float32"))
            tensors[key] = torch.empty(tuple(entry["shape"]), dtype=dtype, device="meta")
        except (KeyError, TypeError, ValueError, RuntimeError):
            raise UnusableModelError(f"bad .safetensors header entry {key!r}") from None
    return tensors


def meta_state_dict(path: Path) -> Any:
    """The file's state dict with every tensor on the `meta` device (no weights read)."""
    if path.suffix.lower() == ".safetensors":
        return _safetensors_meta(path)
    import torch

    try:
        return torch.load(path, map_location="meta", weights_only=True)
    except Exception as error:
        reason = f"cannot be read as a PyTorch file ({_first_line(error)})"
        raise UnusableModelError(reason) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def describe(descriptor: Any) -> tuple[str, int]:
    """(architecture name, scale) of a spandrel descriptor that is an image upscaler."""
    from spandrel import ImageModelDescriptor

    architecture = descriptor.architecture.name
    if not isinstance(descriptor, ImageModelDescriptor):
        raise UnusableModelError(f"{architecture} is not an image-to-image model")
    if descriptor.purpose == "FaceSR":
        raise UnusableModelError(
            f"{architecture} is a face restoration model, not an upscaler (face models go in "
            "models/GFPGAN or models/Codeformer)"
        )
    return architecture, int(descriptor.scale)


def probe(path: Path) -> UpscalerFile:
    """What a file is, checked by spandrel without reading its weights; UnusableModelError
    says why it is not an upscaler."""
    state = meta_state_dict(path)
    if not isinstance(state, dict) or not state:
        raise UnusableModelError("holds no state dict")
    try:
        descriptor = spandrel_load(state, meta=True)
    except UnusableModelError as error:
        if not error.args[0].startswith(CANNOT_LOAD):
            raise
        # transformers (SwinIR, HAT, DAT, ...) compute with tensors while they are built,
        # which `meta` cannot: build them on the CPU from the small tensors' real values
        # (DAT reads its window sizes from a buffer) and zeros for the large ones
        descriptor = spandrel_load(small_state_dict(path), meta=False)
    architecture, scale = describe(descriptor)
    return UpscalerFile(path, path.stem, architecture, scale)


CANNOT_LOAD = "spandrel cannot load it"
SMALL = 4096  # tensors up to this many elements are read by `small_state_dict`


def small_state_dict(path: Path) -> Any:
    """The file's state dict with its small tensors read and the others zeros (of the same
    shape and dtype, never read from the file)."""
    import torch

    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        shapes = _safetensors_meta(path)
        with safe_open(str(path), framework="pt") as file:
            return {
                key: file.get_tensor(key)
                if meta.numel() <= SMALL
                else torch.zeros(meta.shape, dtype=meta.dtype)
                for key, meta in shapes.items()
            }
    try:  # zip files map their storages: only what is read comes from the disk
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy format cannot be mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    return _zero_large(state)


def _zero_large(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor) and value.numel() > SMALL:
        return torch.zeros(value.shape, dtype=value.dtype)
    if isinstance(value, dict):
        return {key: _zero_large(item) for key, item in value.items()}
    return value


def spandrel_load(state: dict[str, Any], *, meta: bool = False, registry: Any = None) -> Any:
    """spandrel's descriptor for a state dict (with the network built on the `meta` device
    if `meta`), from spandrel's main registry or `registry`; UnusableModelError if spandrel
    does not know it or cannot load it."""
    import contextlib
    import warnings

    import torch
    from spandrel import MAIN_REGISTRY, UnsupportedModelError

    try:
        with warnings.catch_warnings():  # architectures' deprecation notes are not the user's
            warnings.simplefilter("ignore")
            with torch.device("meta") if meta else contextlib.nullcontext():
                return (registry or MAIN_REGISTRY).load(state)
    except UnsupportedModelError:
        raise UnusableModelError("spandrel does not recognise its architecture") from None
    except Exception as error:
        raise UnusableModelError(f"{CANNOT_LOAD} ({_first_line(error)})") from None


def scan_upscaler_files(
    dirs: DataDirs, *, taken: Iterable[str] = (), skip: Iterable[Path] = ()
) -> tuple[list[UpscalerFile], list[tuple[Path, str]]]:
    """(usable files, unusable [(path, reason)]) in the upscaler folders. A file whose name
    is in `taken` (case-insensitively) or repeats an earlier file's is unusable; the paths
    in `skip` (the built-ins' own weights) are left out."""
    names = {name.casefold() for name in taken}
    skipped = {Path(path).resolve() for path in skip}
    usable: list[UpscalerFile] = []
    unusable: list[tuple[Path, str]] = []
    for path in upscaler_paths(dirs):
        if path.resolve() in skipped:
            continue
        if path.stem.casefold() in names:
            unusable.append((path, f"the upscaler name {path.stem!r} is already taken"))
            continue
        try:
            found = probe(path)
        except UnusableModelError as error:
            unusable.append((path, str(error)))
            continue
        except Exception as error:  # never let one odd file stop the scan
            unusable.append((path, _first_line(error)))
            continue
        names.add(found.name.casefold())
        usable.append(found)
    return usable, unusable


def load_state_dict(path: Path, device: str = "cpu") -> dict[str, Any]:
    """The weights of a .safetensors or .pth/.pt file (never unpickles code)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path, device=device)
    import torch

    return torch.load(path, map_location=device, weights_only=True)


def save_atomic(payload: Any, path: Path) -> None:
    """`torch.save(payload)` to `path` through a temporary file in the same folder renamed
    into place, so `path` is never seen half written."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
