"""Which device and dtype the runtime uses, how attention runs, and how much memory is free.

Device: ``None``/``"auto"`` picks cuda > mps > cpu; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` and
``"mps"`` are accepted. A plain ``"cuda"`` resolves to the current CUDA device's index so the
chosen device compares equal to the device of a tensor moved onto it.

Precision (A1111 spellings accepted as aliases):

=========  ====================================================================
value      meaning
=========  ====================================================================
auto       fp16 on cuda and mps, fp32 on cpu (aliases: ``autocast``)
fp32       float32 (aliases: ``full``, ``float32``; A1111's ``--precision full
           --no-half``)
fp16       float16 (aliases: ``half``, ``float16``)
bf16       bfloat16 (alias: ``bfloat16``); a CUDA device older than compute
           capability 8.0 (Ampere) has no native bf16 and is refused
=========  ====================================================================

fp16 on the CPU is allowed (some tools want the smaller weights) but is slow and some CPU
kernels lack half implementations, so it emits a ``PrecisionWarning`` rather than failing.

Attention: sdtui uses PyTorch's ``scaled_dot_product_attention`` (SDPA), which picks
flash / memory-efficient / math kernels by itself; in diffusers that is ``AttnProcessor2_0``,
the default for every attention layer. ``configure_attention`` makes sure a model uses it
(replacing classic processors, leaving custom ones such as LoRA or IP-adapter alone).

Nothing here imports torch at module level: the TUI may import this module cheaply.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

ATTENTION = "sdpa"
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
PRECISION_ALIASES: dict[str, str] = {
    "autocast": "auto",
    "full": "fp32",
    "float32": "fp32",
    "half": "fp16",
    "float16": "fp16",
    "bfloat16": "bf16",
}
DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps")


class DeviceError(ValueError):
    """A requested device or precision cannot be used; the message lists what can."""


class PrecisionWarning(UserWarning):
    """A precision that works but is slow or partly unsupported on this device."""


# -- what the machine has (small functions so tests can pretend) --------------------------


def _cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _cuda_current_index() -> int:
    import torch

    return torch.cuda.current_device()


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def _cuda_supports_bf16(device: torch.device) -> bool:
    import torch

    if getattr(torch.version, "hip", None):  # ROCm: ask torch, it knows the GPU generation
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.cuda.get_device_capability(device)[0] >= 8


def available_devices() -> list[str]:
    """Every device name `choose_device` would accept on this machine."""
    names = ["cpu"]
    count = _cuda_device_count()
    if count:
        names += ["cuda", *(f"cuda:{index}" for index in range(count))]
    if _mps_available():
        names.append("mps")
    return names


# -- device ---------------------------------------------------------------------------------


def choose_device(requested: str | torch.device | None = None) -> torch.device:
    """The device to run on: None/"auto" = cuda > mps > cpu, or the one requested."""
    import torch

    text = "auto" if requested is None else str(requested).strip().lower()
    if text in ("", "auto"):
        if _cuda_device_count():
            return torch.device("cuda", _cuda_current_index())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    available = ", ".join(available_devices())
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise DeviceError(
            f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps "
            f"(available here: {available})"
        )
    if device.type == "cuda":
        count = _cuda_device_count()
        index = _cuda_current_index() if count and device.index is None else device.index
        if index is None or index >= count:
            raise DeviceError(f"device {requested!r} is not available (available: {available})")
        return torch.device("cuda", index)
    if device.type == "mps" and not _mps_available():
        raise DeviceError(f"device {requested!r} is not available (available: {available})")
    return torch.device(device.type)


# -- precision ------------------------------------------------------------------------------


def normalize_precision(precision: str | None) -> str:
    """ "auto", "fp32", "fp16" or "bf16" for any accepted spelling; an error otherwise."""
    text = "auto" if precision is None else str(precision).strip().lower()
    text = PRECISION_ALIASES.get(text, text)
    if text not in PRECISIONS:
        spellings = ", ".join([*PRECISIONS, *PRECISION_ALIASES])
        raise DeviceError(f"unknown precision {precision!r}: use one of {spellings}")
    return text


def choose_dtype(device: torch.device | str, precision: str | None = None) -> torch.dtype:
    """The weights' dtype for `device` (see the module docstring for the rules)."""
    import torch

    device = torch.device(device)
    name = normalize_precision(precision)
    if name == "auto":
        name = "fp16" if device.type in ("cuda", "mps") else "fp32"
    if name == "bf16" and device.type == "cuda" and not _cuda_supports_bf16(device):
        raise DeviceError(
            f"bf16 is not supported on {device} (needs compute capability 8.0 or newer); "
            "use fp16 or fp32"
        )
    if name == "fp16" and device.type == "cpu":
        warnings.warn(
            "fp16 on the CPU is slow and some operations have no half-precision CPU kernel; "
            "fp32 (or bf16) is recommended there",
            PrecisionWarning,
            stacklevel=2,
        )
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def dtype_name(dtype: torch.dtype) -> str:
    """ "fp32", "fp16", "bf16", or torch's own name for anything else."""
    text = str(dtype).removeprefix("torch.")
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(text, text)


# -- attention ------------------------------------------------------------------------------


def _sdpa_processors(model: Any) -> dict[str, Any]:
    from diffusers.models import attention_processor as processors

    upgrades = {
        processors.AttnProcessor: processors.AttnProcessor2_0,
        processors.AttnAddedKVProcessor: processors.AttnAddedKVProcessor2_0,
    }
    chosen = {}
    for name, processor in model.attn_processors.items():
        upgrade = upgrades.get(type(processor))
        chosen[name] = upgrade() if upgrade else processor
    return chosen


def configure_attention(module: Any) -> int:
    """Make every diffusers model in `module` (itself, or its submodules if it is a plain
    torch module holding some) use SDPA attention. Returns how many models were set."""
    if hasattr(module, "set_attn_processor"):
        module.set_attn_processor(_sdpa_processors(module))
        return 1
    configured = 0
    for child in getattr(module, "children", lambda: ())():
        configured += configure_attention(child)
    return configured


# -- memory and description -----------------------------------------------------------------


def free_device_memory() -> None:
    """Collect garbage, return cached CUDA blocks to the driver (if torch is loaded) and
    freed heap memory to the operating system."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    release_host_memory()


def release_host_memory() -> bool:
    """glibc keeps freed blocks of up to 32 MB in its heap (its mmap threshold grows after
    the first large free), so a process that unloads a model keeps its RSS; `malloc_trim`
    hands that memory back. A no-op (False) where glibc is not the allocator."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _host_memory() -> tuple[int, int]:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo if ":" in line)
        kib = {key: int(value.split()[0]) * 1024 for key, value in fields.items()}
        return kib["MemAvailable"], kib["MemTotal"]
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional; covers macOS and Windows

        memory = psutil.virtual_memory()
        return int(memory.available), int(memory.total)
    except ImportError:
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        free = os.sysconf("SC_AVPHYS_PAGES") * page if "SC_AVPHYS_PAGES" in os.sysconf_names else 0
        return free, total
    except (AttributeError, ValueError, OSError):
        return 0, 0  # unknown


def memory_info(device: torch.device | str) -> tuple[int, int]:
    """(free_bytes, total_bytes) of `device`'s memory; (0, 0) where it cannot be told."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return int(free), int(total)
    if device.type == "mps":
        total = int(torch.mps.recommended_max_memory())
        return max(total - int(torch.mps.driver_allocated_memory()), 0), total
    return _host_memory()


def describe(device: torch.device | str, dtype: torch.dtype, *, memory: bool = False) -> str:
    """A short status-bar text, e.g. "cpu · fp32" or "cuda:0 · fp16 · 7.1/8.0 GiB free"."""
    text = f"{device} · {dtype_name(dtype)}"
    if memory:
        free, total = memory_info(device)
        if total:
            text += f" · {free / 2**30:.1f}/{total / 2**30:.1f} GiB free"
    return text
