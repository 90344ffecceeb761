"""The ncnn .param/.bin reader on hand-built files, and on the packaged Real-ESRGAN model."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from sdtui.models.ncnn_model import NcnnFormatError, parse_params, read_model
from sdtui.models.realesrgan_convert import packaged_model

FP16 = struct.pack("<I", 0x01306B47)
FP32 = struct.pack("<I", 0)

# conv A: 1 -> 3 channels, 1x1 kernel (3 weights: 6 bytes of fp16, padded to 8), bias;
# PReLU over 3 channels; conv B: 3 -> 1, 1x1, fp32 weights, no bias
PARAM = """7767517
4 4
Input            in      0 1 data
Convolution      conv_a  1 1 data a 0=3 1=1 5=1 6=3 9=2 -23310=1,2.000000e-01
PReLU            prelu   1 1 a b 0=3
Convolution      conv_b  1 1 b out 0=1 1=1 5=0 6=3
"""
CONV_A = [0.5, -1.25, 3.0]  # exact in fp16
BIAS_A = [0.1, 0.2, 0.3]
SLOPES = [0.25, 0.5, 0.75]
CONV_B = [1.0 / 3.0, 2.5, -7.0]


def fp16(values: list[float]) -> bytes:
    data = np.array(values, dtype="<f2").tobytes()
    return data + b"\0" * (-len(data) % 4)


def fp32(values: list[float]) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


def write(tmp_path: Path, weights: bytes, param: str = PARAM) -> tuple[Path, Path]:
    (tmp_path / "m.param").write_text(param)
    (tmp_path / "m.bin").write_bytes(weights)
    return tmp_path / "m.param", tmp_path / "m.bin"


GOOD = FP16 + fp16(CONV_A) + fp32(BIAS_A) + fp32(SLOPES) + FP32 + fp32(CONV_B)


def test_a_hand_built_model_reads_back_what_was_written(tmp_path: Path) -> None:
    assert len(GOOD) == 4 + 8 + 12 + 12 + 4 + 12  # fp16 padded to 4 bytes
    model = read_model(*write(tmp_path, GOOD))
    assert [layer.type for layer in model.layers] == [
        "Input",
        "Convolution",
        "PReLU",
        "Convolution",
    ]
    conv_a, prelu, conv_b = model.layers[1:]
    assert conv_a.inputs == ("data",) and conv_a.outputs == ("a",)
    assert conv_a.params == {0: 3, 1: 1, 5: 1, 6: 3, 9: 2, 10: (0.2,)}
    assert conv_a.weights["weight"].tolist() == CONV_A
    assert conv_a.weights["bias"].tolist() == pytest.approx(BIAS_A, abs=1e-7)
    assert prelu.weights["slope"].tolist() == SLOPES
    assert conv_b.weights["weight"].tolist() == pytest.approx(CONV_B, abs=1e-7)
    assert "bias" not in conv_b.weights and model.blob_count == 4


def test_parameters_are_ints_floats_and_arrays() -> None:
    params = parse_params(["0=64", "1=2.000000e+00", "2=0.5", "-23303=2,2.000000e-01,1"], "x")
    assert params == {0: 64, 1: 2.0, 2: 0.5, 3: (0.2, 1)}
    assert isinstance(params[0], int) and isinstance(params[2], float)
    assert isinstance(params[3][1], int)


@pytest.mark.parametrize("cut", [1, 4, 10, len(GOOD) - 1])
def test_a_truncated_bin_is_an_error(tmp_path: Path, cut: int) -> None:
    with pytest.raises(NcnnFormatError, match="truncated"):
        read_model(*write(tmp_path, GOOD[:cut]))


def test_bytes_left_over_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(NcnnFormatError, match="4 bytes left over"):
        read_model(*write(tmp_path, GOOD + b"\0\0\0\0"))


def test_an_unknown_storage_tag_is_an_error(tmp_path: Path) -> None:
    bad = struct.pack("<I", 0x000D4B38) + GOOD[4:]  # ncnn's int8 tag
    with pytest.raises(NcnnFormatError, match="tag 0x000D4B38"):
        read_model(*write(tmp_path, bad))


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("7767518\n0 0\n", "magic"),
        ("7767517\n2 1\nInput in 0 1 data\n", "header says 2 layers"),
        ("7767517\n1 1\nInput in 0 2 data\n", "fewer blobs"),
        ("7767517\n1 1\nInput in 0 1 data 0=x\n", "bad parameter"),
        ("7767517\n1 1\nInput in 0 1 data -23300=3,1,2\n", "array says 3"),
        ("7767517\n1 1\nDeconvolution d 0 1 data 0=1\n", "not supported"),
    ],
)
def test_bad_param_files_are_errors(tmp_path: Path, param: str, message: str) -> None:
    with pytest.raises(NcnnFormatError, match=message):
        read_model(*write(tmp_path, b"", param))


def test_the_packaged_x4plus_bin_is_read_exactly_to_its_end() -> None:
    param, weights = packaged_model("REALESRGAN_X4PLUS_UP4X")
    assert weights.stat().st_size == 33_424_520
    model = read_model(param, weights)  # raises unless every byte is consumed
    convs = model.of_type("Convolution")
    assert len(convs) == 1 + 23 * 15 + 5
    # independently of the reader: tags + fp16 weights (padded) + fp32 biases fill the file
    expected = sum(4 + 2 * c.param(6) + (2 * c.param(6)) % 4 + 4 * c.param(0) for c in convs)
    assert expected == 33_424_520
    assert sum(c.weights["weight"].size for c in convs) == sum(c.param(6) for c in convs)
