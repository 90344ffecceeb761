"""Reading single-file checkpoints (.safetensors, .ckpt, .pt, .pth, .bin) safely.

safetensors files are parsed by hand for their header (8-byte little-endian length, then a JSON
object) so `read_header` never touches tensor data and catches truncated files up front.
Pickled checkpoints go through torch's restricted `weights_only` unpickler with a small
allowlist covering what real Stable Diffusion checkpoints carry (numpy scalars for
`global_step`, PyTorch Lightning's `ModelCheckpoint` callback state); anything else is refused
and no code from the file ever runs.

Every failure is one `CheckpointError` naming the file and what was expected.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

SAFETENSORS_EXTENSIONS = (".safetensors",)
PICKLE_EXTENSIONS = (".ckpt", ".pt", ".pth", ".bin")
EXPECTED_DEFAULT = "a Stable Diffusion model file (.safetensors, .ckpt, .pt, .pth or .bin)"

# safetensors refuses headers above 100 MB; so do we (a garbage length is caught here).
MAX_HEADER_BYTES = 100_000_000

# Bytes per element of the safetensors dtype codes (sub-byte / exotic codes are not checked).
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8, "C64": 8,
}  # fmt: skip

_TORCH_DTYPE_CODES = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8",
    torch.int16: "I16", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int32: "I32", torch.float32: "F32", torch.int64: "I64", torch.float64: "F64",
    torch.complex64: "C64",
}  # fmt: skip
for _name, _code in (("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")):
    if hasattr(torch, _name):
        _TORCH_DTYPE_CODES[getattr(torch, _name)] = _code


class CheckpointError(Exception):
    """A model file that cannot be read; the message names the file and what was expected."""

    def __init__(self, path: str | os.PathLike[str], problem: str, expected: str | None = None):
        self.path = Path(path)
        self.problem = problem
        self.expected = expected or EXPECTED_DEFAULT
        super().__init__(f"{os.fspath(path)}: {problem}; expected {self.expected}")


@dataclass(frozen=True)
class CheckpointHeader:
    """What a model file holds, without its tensor data.

    `dtypes` use safetensors' codes ("F16", "F32", "BF16", "I64", ...) for every format.
    `metadata` is safetensors' `__metadata__`; for pickled files, the top-level plain values
    (e.g. `global_step`, `epoch`) as strings.
    """

    path: Path
    format: str  # "safetensors" or "pickle"
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def dtype_code(dtype: torch.dtype) -> str:
    """safetensors' code for a torch dtype ("F16", ...), else the torch name."""
    return _TORCH_DTYPE_CODES.get(dtype, str(dtype).removeprefix("torch."))


def _check_path(path: Path, expected: str | None) -> str:
    """The file's format ("safetensors"/"pickle"), or CheckpointError."""
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_EXTENSIONS:
        kind = "safetensors"
    elif suffix in PICKLE_EXTENSIONS:
        kind = "pickle"
    else:
        known = ", ".join(SAFETENSORS_EXTENSIONS + PICKLE_EXTENSIONS)
        raise CheckpointError(path, f"unknown file extension {suffix!r} (known: {known})", expected)
    if not path.exists():
        raise CheckpointError(path, "file not found", expected)
    if not path.is_file():
        raise CheckpointError(path, "not a regular file (a folder?)", expected)
    if not os.access(path, os.R_OK):
        raise CheckpointError(path, "cannot read the file (permission denied)", expected)
    if path.stat().st_size == 0:
        raise CheckpointError(path, "the file is empty", expected)
    return kind


# ---------------------------------------------------------------------------- safetensors


def _read_safetensors_json(path: Path, expected: str | None) -> tuple[dict[str, Any], int]:
    """The parsed JSON header and the size of the data part that follows it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise CheckpointError(
                path, f"too short for a safetensors file ({size} bytes)", expected
            )
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
            raise CheckpointError(
                path,
                f"truncated or corrupt safetensors file (header length says {header_len} bytes, "
                f"file has {size - 8} after the length)",
                expected,
            )
        raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            path, f"corrupt safetensors file (header is not valid JSON: {exc})", expected
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(path, "corrupt safetensors file (header is not an object)", expected)
    return header, size - 8 - header_len


def _check_entry(path: Path, name: str, entry: Any, data_size: int, expected: str | None) -> None:
    try:
        begin, end = (int(x) for x in entry["data_offsets"])
        shape = [int(x) for x in entry["shape"]]
        code = str(entry["dtype"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            path, f"corrupt safetensors file (bad header entry for tensor {name!r})", expected
        ) from None
    if not 0 <= begin <= end:
        raise CheckpointError(
            path, f"corrupt safetensors file (bad data offsets for tensor {name!r})", expected
        )
    if end > data_size:
        raise CheckpointError(
            path,
            f"truncated or corrupt safetensors file (header says {end} bytes of tensors, "
            f"file has {data_size})",
            expected,
        )
    itemsize = DTYPE_SIZES.get(code)
    if itemsize is not None and math.prod(shape) * itemsize != end - begin:
        raise CheckpointError(
            path,
            f"corrupt safetensors file (tensor {name!r} {code}{shape} needs "
            f"{math.prod(shape) * itemsize} bytes, header gives {end - begin})",
            expected,
        )


def _safetensors_header(path: Path, expected: str | None) -> CheckpointHeader:
    header, data_size = _read_safetensors_json(path, expected)
    raw_meta = header.pop("__metadata__", None) or {}
    if not isinstance(raw_meta, dict):
        raise CheckpointError(
            path, "corrupt safetensors file (__metadata__ is not an object)", expected
        )
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw_meta.items()}
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    for name, entry in header.items():
        _check_entry(path, name, entry, data_size, expected)
        shapes[name] = tuple(int(x) for x in entry["shape"])
        dtypes[name] = str(entry["dtype"])
    if not shapes:
        raise CheckpointError(path, "the file holds no tensors (not a model)", expected)
    return CheckpointHeader(path, "safetensors", shapes, dtypes, metadata)


_TORCH_DTYPES_BY_CODE = {code: dtype for dtype, code in _TORCH_DTYPE_CODES.items()}


def _convert(tensor: torch.Tensor, device: str, dtype: torch.dtype | None) -> torch.Tensor:
    if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
        tensor = tensor.to(dtype)
    return tensor.to(device) if device != "cpu" else tensor


def _load_safetensors(
    path: Path, device: str, dtype: torch.dtype | None, expected: str | None
) -> dict[str, torch.Tensor]:
    """Read tensor by tensor with plain file reads (no mmap), converting each to `dtype` and
    moving it to `device` before the next is read: peak memory is the result plus one
    tensor, and the file's pages never count against the process (page cache only)."""
    header, data_size = _read_safetensors_json(path, expected)
    header.pop("__metadata__", None)
    data_start = path.stat().st_size - data_size
    tensors: dict[str, torch.Tensor] = {}
    entries = sorted(header.items(), key=lambda item: int(item[1]["data_offsets"][0]))
    with open(path, "rb") as file:
        for name, entry in entries:
            begin, end = (int(x) for x in entry["data_offsets"])
            code = str(entry["dtype"])
            if code not in _TORCH_DTYPES_BY_CODE:
                raise CheckpointError(
                    path, f"tensor {name!r} has unsupported dtype {code}", expected
                )
            raw = torch.empty(end - begin, dtype=torch.uint8)
            file.seek(data_start + begin)
            if file.readinto(memoryview(raw.numpy())) != end - begin:
                raise CheckpointError(
                    path, f"truncated safetensors file (tensor {name!r})", expected
                )
            shape = [int(x) for x in entry["shape"]]
            tensor = raw.view(_TORCH_DTYPES_BY_CODE[code]).reshape(shape)
            tensors[name] = _convert(tensor, device, dtype)
    return tensors


# ---------------------------------------------------------------------------- pickles


class LightningCallbackState:
    """Harmless stand-in for PyTorch Lightning's ModelCheckpoint pickled in SD checkpoints.

    Only its attributes are restored (as plain data); no Lightning code is imported or run.
    """

    def __repr__(self) -> str:
        return f"LightningCallbackState({self.__dict__!r})"


_LIGHTNING_NAMES = (
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint",
)

# numpy dtype classes a checkpoint may use for scalars/arrays (object/void/str are excluded).
_NUMPY_DTYPE_CLASSES = (
    "BoolDType", "Int8DType", "Int16DType", "Int32DType", "Int64DType", "UInt8DType",
    "UInt16DType", "UInt32DType", "UInt64DType", "Float16DType", "Float32DType",
    "Float64DType", "LongDType", "ULongDType", "LongLongDType", "ULongLongDType",
    "ByteDType", "UByteDType", "ShortDType", "UShortDType", "IntDType", "UIntDType",
)  # fmt: skip


def _safe_globals() -> list[Any]:
    """The allowlist beyond torch's own: numpy scalars/dtypes/arrays, Lightning's callback."""
    import numpy as np

    try:
        from numpy import _core as np_core
    except ImportError:  # numpy < 2
        from numpy import core as np_core  # type: ignore[no-redef]

    allowed: list[Any] = [(LightningCallbackState, name) for name in _LIGHTNING_NAMES]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed.append((np_core.multiarray.scalar, f"{module}.scalar"))
        allowed.append((np_core.multiarray._reconstruct, f"{module}._reconstruct"))
    allowed += [(np.dtype, "numpy.dtype"), (np.ndarray, "numpy.ndarray")]
    dtypes_module = getattr(np, "dtypes", None)
    for name in _NUMPY_DTYPE_CLASSES:
        cls = getattr(dtypes_module, name, None)
        if cls is not None:
            allowed.append((cls, f"numpy.dtypes.{name}"))
    return allowed


_LOAD_LOCK = threading.Lock()

_UNSAFE_MARKERS = (
    "Unsupported global",
    "is blocked",
    "unrecognized function",
    "Can only ",
)
_REFUSED_ADVICE = (
    "only tensors and plain data are allowed, so nothing from the file was run. Convert it to "
    ".safetensors with a tool you trust, or use a .safetensors release of the model"
)


def _pickle_error(path: Path, exc: Exception, expected: str | None) -> CheckpointError:
    message = str(exc)
    detail = message.split("WeightsUnpickler error:", 1)[-1].strip()
    if any(marker in detail for marker in _UNSAFE_MARKERS):
        match = re.search(r"GLOBAL ([\w.]+)", detail) or re.search(
            r"unrecognized function (\S+)", detail
        )
        if match:
            what = f"its pickle asks for {match.group(1)}"
        else:
            first = detail.splitlines()[0] if detail else type(exc).__name__
            what = f"its pickle builds objects other than tensors and plain data ({first})"
        return CheckpointError(
            path, f"refused to run code from the file: {what}; {_REFUSED_ADVICE}", expected
        )
    if "WeightsUnpickler error:" in message:
        last = detail.splitlines()[0] if detail else type(exc).__name__
    else:
        last = message.strip().splitlines()[-1] if message.strip() else type(exc).__name__
    last = last.split(". ", 1)[0].rstrip(".")  # torch appends long advice after the first sentence
    return CheckpointError(path, f"corrupt or truncated pickle/zip checkpoint ({last})", expected)


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _torch_load(
    path: Path, device: str, expected: str | None, extra_globals: Sequence[Any] = ()
) -> Any:
    """torch.load with weights_only and our allowlist; mmap for zip-format files."""
    mmap = _is_zip(path)
    try:
        # The allowlist context is process-wide in torch: one restricted load at a time, so a
        # finishing load never removes the allowlist from under another thread's load.
        with _LOAD_LOCK, torch.serialization.safe_globals([*_safe_globals(), *extra_globals]):
            return torch.load(
                os.fspath(path), map_location=device, weights_only=True, mmap=mmap or None
            )
    except Exception as exc:  # torch raises many kinds for corrupt files
        raise _pickle_error(path, exc, expected) from None


def _plain(value: Any) -> str | None:
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        try:
            return str(value.item())
        except (TypeError, ValueError, RuntimeError):
            return None
    return None


def _split_pickled(
    path: Path, obj: Any, expected: str | None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a loaded pickle: unwraps `state_dict`, drops non-tensors."""
    if not isinstance(obj, dict):
        raise CheckpointError(
            path, f"the file holds a {type(obj).__name__}, not a dict of tensors", expected
        )
    metadata = {}
    for key, value in obj.items():
        text = _plain(value)
        if isinstance(key, str) and text is not None and not isinstance(value, torch.Tensor):
            metadata[key] = text
    state = obj
    for _ in range(3):  # bounded: a crafted pickle can make a dict contain itself
        if not isinstance(state.get("state_dict"), dict):
            break
        state = state["state_dict"]
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(path, "the file holds no tensors (not a model)", expected)
    return tensors, metadata


# ---------------------------------------------------------------------------- public API


def read_header(path: str | os.PathLike[str], *, expected: str | None = None) -> CheckpointHeader:
    """Tensor names, shapes, dtypes and metadata of a model file.

    For .safetensors only the header is read. Pickled files are loaded (restricted, and
    memory-mapped when they are zip-format) to see their tensors.
    """
    path = Path(path)
    if _check_path(path, expected) == "safetensors":
        return _safetensors_header(path, expected)
    tensors, metadata = _split_pickled(path, _torch_load(path, "cpu", expected), expected)
    return CheckpointHeader(
        path,
        "pickle",
        {k: tuple(t.shape) for k, t in tensors.items()},
        {k: dtype_code(t.dtype) for k, t in tensors.items()},
        metadata,
    )


def load_state_dict(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    *,
    dtype: torch.dtype | None = None,
    expected: str | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a model file; never runs code from pickles.

    Floating-point tensors are converted to `dtype` when given. safetensors files are read
    tensor by tensor (peak memory: the result plus one tensor); zip-format pickles are
    memory-mapped. A top-level `state_dict` is unwrapped and non-tensor entries are dropped.
    """
    path = Path(path)
    device = str(device)
    if _check_path(path, expected) == "safetensors":
        header = _safetensors_header(path, expected)
        return _load_safetensors(path, device, dtype, expected), dict(header.metadata)
    tensors, metadata = _split_pickled(path, _torch_load(path, "cpu", expected), expected)
    return {name: _convert(t, device, dtype) for name, t in tensors.items()}, metadata


def load_pickle(
    path: str | os.PathLike[str],
    *,
    expected: str | None = None,
    extra_globals: Sequence[Any] = (),
) -> Any:
    """The object a pickled file (.pt, .bin, .ckpt, .pth) holds, as restricted unpickling
    rebuilds it: tensors and plain data only, never code from the file. `extra_globals`
    widens the allowlist (torch's `safe_globals` entries: harmless stand-in classes)."""
    path = Path(path)
    if _check_path(path, expected) != "pickle":
        raise CheckpointError(path, "not a pickled file", expected)
    return _torch_load(path, "cpu", expected, extra_globals)
