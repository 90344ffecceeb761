"""Reading an ncnn model: the text `.param` graph and the `.bin` weights.

`.param` (text):

    7767517                                   magic
    <layer count> <blob count>
    <type> <name> <inputs> <outputs> <input blobs...> <output blobs...> k=v k=v ...

A parameter `k=v` holds an int, or a float when the value has a `.` or an exponent; a key
`-233xx=n,a,b,...` holds an array of n values under key `xx`.

`.bin` holds the weights of the layers in `.param` order, with no names. A Convolution's
weight blob starts with a 4-byte tag: 0x01306B47 is fp16 data (padded to 4 bytes), 0 raw
fp32; its bias and a PReLU's slopes are untagged fp32. Only the layer types below are
understood; a layer type that may carry weights and is not listed is an error rather than
a silent misreading, and so is a `.bin` that ends early or has bytes left over.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

MAGIC = 7767517
FP16_TAG = 0x01306B47
FP32_TAG = 0x00000000
ARRAY_KEY_BASE = -23300

# Layer types that read nothing from the .bin.
WEIGHTLESS = frozenset(
    {
        "Input",
        "Split",
        "Concat",
        "Eltwise",
        "BinaryOp",
        "Interp",
        "PixelShuffle",
        "ReLU",
        "Sigmoid",
        "Clip",
        "Noop",
        "Crop",
        "Reshape",
        "Permute",
        "Flatten",
        "UnaryOp",
    }
)

Param = int | float | tuple[int | float, ...]


class NcnnFormatError(ValueError):
    """An ncnn .param/.bin pair that this reader cannot read exactly."""


@dataclass(frozen=True)
class NcnnLayer:
    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, Param]
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # "weight", "bias", "slope"

    def param(self, key: int, default: Param = 0) -> Param:
        return self.params.get(key, default)


@dataclass(frozen=True)
class NcnnModel:
    layers: tuple[NcnnLayer, ...]
    blob_count: int

    def of_type(self, layer_type: str) -> list[NcnnLayer]:
        return [layer for layer in self.layers if layer.type == layer_type]


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def parse_params(fields: list[str], where: str) -> dict[int, Param]:
    """The `k=v` fields of one layer line."""
    params: dict[int, Param] = {}
    for item in fields:
        key_text, sep, value = item.partition("=")
        try:
            key = int(key_text)
            if not sep:
                raise ValueError("no '='")
            if key <= ARRAY_KEY_BASE:
                count_text, *values = value.split(",")
                if int(count_text) != len(values):
                    raise ValueError(f"array says {count_text} values, has {len(values)}")
                params[ARRAY_KEY_BASE - key] = tuple(_number(v) for v in values)
            else:
                params[key] = _number(value)
        except ValueError as error:
            raise NcnnFormatError(f"{where}: bad parameter {item!r} ({error})") from None
    return params


def read_param(path: str | Path) -> tuple[list[NcnnLayer], int]:
    """The layers (without weights) and blob count of a text `.param` file."""
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or lines[0].strip() != str(MAGIC):
        raise NcnnFormatError(f"{path}: not an ncnn .param file (magic {MAGIC} missing)")
    try:
        layer_count, blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise NcnnFormatError(f"{path}: line 2 must be '<layer count> <blob count>'") from None
    layers = [_parse_layer(line, f"{path}:{number}") for number, line in enumerate(lines[2:], 3)]
    if len(layers) != layer_count:
        raise NcnnFormatError(f"{path}: header says {layer_count} layers, file has {len(layers)}")
    return layers, blob_count


def _parse_layer(line: str, where: str) -> NcnnLayer:
    fields = line.split()
    try:
        layer_type, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        raise NcnnFormatError(f"{where}: bad layer line {line!r}") from None
    blobs = fields[4 : 4 + n_in + n_out]
    if len(blobs) != n_in + n_out:
        raise NcnnFormatError(f"{where}: layer {name!r} lists fewer blobs than {n_in}+{n_out}")
    params = parse_params(fields[4 + n_in + n_out :], where)
    return NcnnLayer(layer_type, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params)


class _BinReader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.offset = 0

    def take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.data):
            raise NcnnFormatError(
                f"{self.path}: ends at byte {len(self.data)} in {what}, which needs "
                f"{size} bytes from byte {self.offset} (truncated file?)"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def fp32(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self.take(4 * count, what), dtype="<f4").copy()

    def tagged(self, count: int, what: str) -> np.ndarray:
        """A weight blob with its 4-byte type tag."""
        (tag,) = struct.unpack("<I", self.take(4, f"the tag of {what}"))
        if tag == FP16_TAG:
            size = 2 * count
            raw = self.take(size + (-size) % 4, what)
            return np.frombuffer(raw[:size], dtype="<f2").astype(np.float32)
        if tag == FP32_TAG:
            return self.fp32(count, what)
        raise NcnnFormatError(
            f"{self.path}: {what} at byte {self.offset - 4} has storage tag 0x{tag:08X}; "
            f"only fp16 (0x{FP16_TAG:08X}) and fp32 (0x{FP32_TAG:08X}) are supported"
        )


def _load_weights(layer: NcnnLayer, reader: _BinReader) -> dict[str, np.ndarray]:
    what = f"layer {layer.name!r} ({layer.type})"
    if layer.type == "Convolution":
        if layer.param(8, 0) or layer.param(18, 0):
            raise NcnnFormatError(f"{what}: int8 quantised convolutions are not supported")
        weights = {"weight": reader.tagged(int(layer.param(6)), f"the weights of {what}")}
        if layer.param(5, 0):
            weights["bias"] = reader.fp32(int(layer.param(0)), f"the bias of {what}")
        return weights
    if layer.type == "PReLU":
        return {"slope": reader.fp32(int(layer.param(0, 0)), f"the slopes of {what}")}
    if layer.type in WEIGHTLESS:
        return {}
    raise NcnnFormatError(f"{what}: layer type {layer.type!r} is not supported")


def read_model(param_path: str | Path, bin_path: str | Path) -> NcnnModel:
    """The graph of `param_path` with each layer's weights read from `bin_path`, which must
    be consumed exactly to its end."""
    layers, blob_count = read_param(param_path)
    reader = _BinReader(Path(bin_path).read_bytes(), Path(bin_path))
    loaded = []
    for layer in layers:
        weights = _load_weights(layer, reader)
        loaded.append(replace(layer, weights=weights))
    if reader.offset != len(reader.data):
        raise NcnnFormatError(
            f"{bin_path}: {len(reader.data) - reader.offset} bytes left over after the weights "
            f"of all {len(layers)} layers (the .bin does not belong to this .param?)"
        )
    return NcnnModel(tuple(loaded), blob_count)
