"""The weight change one network module makes: LoRA / LoCon, LoHa, LoKr, full diffs.

    delta = make_delta(parts)          # parts: canonical names -> tensors (see keys.py)
    change = delta.weight(shape)       # fp32, already times the network's own scale
    bias_change = delta.bias           # or None

What each algorithm computes (A1111 `extensions-builtin/Lora/network_*.py`, LyCORIS):

* LoRA / LoCon: `up @ down` with both flattened to matrices (a conv LoRA's `down` holds the
  kernel, its `up` is 1x1); with a Tucker core `mid` [r, r, kh, kw] the product runs through
  it. Rank = `down.shape[0]`; scale = `alpha / rank`, 1.0 without alpha; `dyn` keeps only the
  first ranks (the scale does not change).
* LoHa: `(w1_a @ w1_b) * (w2_a @ w2_b)` elementwise, each factor through its Tucker core
  `t1` / `t2` when there is one; rank = `w1_b.shape[0]`, scale `alpha / rank`.
* LoKr: `kron(w1, w2)`, each of `w1`, `w2` stored whole or as `_a @ _b` (`w2` also through a
  core `t2`); scaled by `alpha / rank` only when a factor is stored as a product (rank =
  `w2_b.shape[0]`, else `w1_b.shape[0]`), otherwise 1.0.
* full (`diff`, `diff_b`; norm layers' `w_norm`, `b_norm`): the change itself, scale 1.0.

A module whose parts fit none of these (DoRA's `dora_scale`, IA3, OFT, GLoRA, ...) raises
`UnsupportedModule` naming what it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
COMMON_PARTS = frozenset({"alpha"})


class UnsupportedModule(ValueError):
    """A module of a network that sdtui cannot apply; the message says why."""


def _matrix(tensor: Tensor) -> Tensor:
    return tensor.reshape(tensor.shape[0], -1)


def _tucker(core: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """LyCORIS' CP/Tucker rebuild: a [r, out], b [r, in], core [r, r, kh, kw]
    -> [out, in, kh, kw]."""
    return torch.einsum("p q k l, p o, q i -> o i k l", core, _matrix(a), _matrix(b))


def _scalar(parts: Mapping[str, Tensor], name: str) -> float | None:
    tensor = parts.get(name)
    return None if tensor is None else float(tensor.reshape(-1)[0])


def _fit(change: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    if change.numel() != torch.Size(shape).numel():
        raise UnsupportedModule(
            f"its change has shape {list(change.shape)}, the weight {list(shape)}"
        )
    return change.reshape(shape)


@dataclass
class Delta:
    """One module's change. `factors` are read on whatever device `weight` is asked for."""

    algorithm: str
    build: Callable[[Callable[[Tensor], Tensor], int | None], Tensor] | None
    scale: float = 1.0
    bias: Tensor | None = None

    @property
    def changes_weight(self) -> bool:
        return self.build is not None

    def weight(
        self,
        shape: torch.Size | tuple[int, ...],
        *,
        device: torch.device | str = "cpu",
        dyn: int | None = None,
    ) -> Tensor:
        """The fp32 change of a weight of `shape` (times this network's own scale)."""
        if self.build is None:
            raise UnsupportedModule("it changes only the bias")

        def place(tensor: Tensor) -> Tensor:
            return tensor.to(device=device, dtype=torch.float32)

        return _fit(self.build(place, dyn), shape) * self.scale


def _lora(parts: Mapping[str, Tensor]) -> Delta:
    up, down, mid = parts["up"], parts["down"], parts.get("mid")
    rank = down.shape[0]
    alpha = _scalar(parts, "alpha")
    scale = _scalar(parts, "scale")
    if scale is None:
        scale = alpha / rank if alpha is not None else 1.0

    def build(place: Callable[[Tensor], Tensor], dyn: int | None) -> Tensor:
        u, d = _matrix(place(up)), _matrix(place(down))
        if mid is not None:
            return torch.einsum("p q k l, o p, q i -> o i k l", place(mid), u, d)
        if dyn is not None:
            u, d = u[:, :dyn], d[:dyn]
        return u @ d

    return Delta("lora", build, scale)


def _loha(parts: Mapping[str, Tensor]) -> Delta:
    alpha = _scalar(parts, "alpha")
    rank = parts["hada_w1_b"].shape[0]

    def factor(place: Callable[[Tensor], Tensor], index: int) -> Tensor:
        a, b = place(parts[f"hada_w{index}_a"]), place(parts[f"hada_w{index}_b"])
        core = parts.get(f"hada_t{index}")
        return _tucker(place(core), a, b) if core is not None else _matrix(a) @ _matrix(b)

    def build(place: Callable[[Tensor], Tensor], dyn: int | None) -> Tensor:
        first, second = factor(place, 1), factor(place, 2)
        return first * second.reshape(first.shape)

    return Delta("loha", build, alpha / rank if alpha is not None else 1.0)


def _lokr(parts: Mapping[str, Tensor]) -> Delta:
    alpha = _scalar(parts, "alpha")
    factorised = [parts[name].shape[0] for name in ("lokr_w2_b", "lokr_w1_b") if name in parts]
    scale = alpha / factorised[0] if factorised and alpha is not None else 1.0

    def side(place: Callable[[Tensor], Tensor], index: int) -> Tensor:
        if f"lokr_w{index}" in parts:
            return place(parts[f"lokr_w{index}"])
        a, b = place(parts[f"lokr_w{index}_a"]), place(parts[f"lokr_w{index}_b"])
        core = parts.get(f"lokr_t{index}")
        return _tucker(place(core), a, b) if core is not None else _matrix(a) @ _matrix(b)

    def build(place: Callable[[Tensor], Tensor], dyn: int | None) -> Tensor:
        w1, w2 = side(place, 1), side(place, 2)
        if w2.dim() == 4:
            w1 = w1.reshape(*w1.shape[:2], 1, 1)
        return torch.kron(w1, w2.contiguous())

    return Delta("lokr", build, scale)


def _full(parts: Mapping[str, Tensor], weight: str, bias: str) -> Delta:
    if weight in parts:
        diff = parts[weight]

        def build(place: Callable[[Tensor], Tensor], dyn: int | None) -> Tensor:
            return place(diff)

        return Delta("full", build, 1.0, parts.get(bias))

    return Delta("bias", None, 1.0, parts[bias])


def _has_pair(parts: Mapping[str, Tensor], index: int, prefix: str) -> bool:
    return f"{prefix}{index}" in parts or (
        f"{prefix}{index}_a" in parts and f"{prefix}{index}_b" in parts
    )


# algorithm -> (test, builder, parts it may hold)
_ALGORITHMS: tuple[tuple[str, Callable[[Mapping[str, Tensor]], bool], Callable, frozenset], ...] = (
    (
        "lora",
        lambda p: "up" in p and "down" in p,
        _lora,
        frozenset({"up", "down", "mid", "scale"}),
    ),
    (
        "loha",
        lambda p: all(f"hada_w{i}_{s}" in p for i in (1, 2) for s in "ab"),
        _loha,
        frozenset({"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"}),
    ),
    (
        "lokr",
        lambda p: _has_pair(p, 1, "lokr_w") and _has_pair(p, 2, "lokr_w"),
        _lokr,
        frozenset({f"lokr_w{i}{s}" for i in (1, 2) for s in ("", "_a", "_b")})
        | {"lokr_t1", "lokr_t2"},
    ),
    (
        "full",
        lambda p: "diff" in p or "diff_b" in p,
        lambda p: _full(p, "diff", "diff_b"),
        frozenset({"diff", "diff_b"}),
    ),
    (
        "norm",
        lambda p: "w_norm" in p or "b_norm" in p,
        lambda p: _full(p, "w_norm", "b_norm"),
        frozenset({"w_norm", "b_norm"}),
    ),
)
_NAMED_UNSUPPORTED = {
    "dora_scale": "DoRA (dora_scale)",
    "lora_magnitude_vector": "DoRA (lora_magnitude_vector)",
    "on_input": "IA3",
    "oft_blocks": "OFT",
    "oft_diag": "OFT",
    "bias": "a LoRA bias",
}


def make_delta(parts: Mapping[str, Tensor]) -> Delta:
    """The change a module's parts describe; UnsupportedModule when they fit no algorithm."""
    for part, label in _NAMED_UNSUPPORTED.items():
        if part in parts:
            raise UnsupportedModule(f"{label} is not supported")
    for _name, test, builder, allowed in _ALGORITHMS:
        if test(parts):
            extra = sorted(set(parts) - allowed - COMMON_PARTS)
            if extra:
                raise UnsupportedModule(f"unexpected parts {', '.join(extra)}")
            return builder(parts)
    raise UnsupportedModule(f"parts {', '.join(sorted(parts))} fit no known algorithm")
