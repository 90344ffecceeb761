"""Real-ESRGAN ncnn -> PyTorch: spandrel recognises the result, and it computes what the ncnn
runtime (PyPI `ncnn`, the oracle) computes from the same files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from spandrel import ModelLoader

from sdtui.models.ncnn_model import read_model
from sdtui.models.realesrgan_convert import (
    ConversionError,
    convert,
    packaged_model,
    srvgg_state_dict,
)

X4PLUS = "REALESRGAN_X4PLUS_UP4X"
ANIME_6B = "REALESRGAN_X4PLUSANIME_UP4X"
ANIMEVIDEO = "REALESRGAN_ANIMAVIDEOV3_UP4X"


def make_image(size: int = 24) -> np.ndarray:
    """(3, size, size) in [0, 1]: gradients in two channels, noise in the third."""
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    noise = np.random.default_rng(7).random((size, size), dtype=np.float32)
    return np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), noise])


def ncnn_output(stem: str, image: np.ndarray) -> np.ndarray:
    """The ncnn runtime's output, in fp32 on the CPU ("data" in, "output" out in .param)."""
    ncnn = pytest.importorskip("ncnn")
    param, weights = packaged_model(stem)
    net = ncnn.Net()
    for option in ("use_vulkan_compute", "use_fp16_packed", "use_fp16_storage"):
        setattr(net.opt, option, False)
    net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    assert net.load_param(str(param)) == 0 and net.load_model(str(weights)) == 0
    pixels = np.ascontiguousarray(image)  # the Mat borrows this memory: keep it alive
    mat = ncnn.Mat(pixels)
    extractor = net.create_extractor()
    extractor.input("data", mat)
    status, out = extractor.extract("output")
    assert status == 0
    return np.array(out).copy()


def torch_output(stem: str, image: np.ndarray) -> tuple[np.ndarray, object]:
    descriptor = ModelLoader().load_from_state_dict(convert(*packaged_model(stem))).eval()
    with torch.inference_mode():  # the network itself: spandrel's call would clamp
        out = descriptor.model(torch.from_numpy(image)[None])[0].numpy()
    return out, descriptor


def check_against_ncnn(stem: str, architecture: str, size: int) -> object:
    image = make_image(size)
    ours, descriptor = torch_output(stem, image)
    theirs = ncnn_output(stem, image)
    assert descriptor.architecture.id == architecture and descriptor.scale == 4
    assert ours.shape == theirs.shape == (3, 4 * size, 4 * size)
    assert np.abs(ours - theirs).max() < 1 / 255
    assert theirs.std() > 0.05  # not a trivially flat output
    return descriptor


def test_animevideo_matches_the_ncnn_runtime() -> None:
    descriptor = check_against_ncnn(ANIMEVIDEO, "Compact", 24)
    assert descriptor.tags == ["64nf", "16nc"]


@pytest.mark.slow
def test_x4plus_anime_6b_matches_the_ncnn_runtime() -> None:
    check_against_ncnn(ANIME_6B, "ESRGAN", 16)


@pytest.mark.slow
def test_x4plus_matches_the_ncnn_runtime() -> None:
    check_against_ncnn(X4PLUS, "ESRGAN", 16)


@pytest.mark.parametrize(("stem", "blocks"), [(X4PLUS, 23), (ANIME_6B, 6)])
def test_rrdbnets_have_real_esrgans_keys_and_block_count(stem: str, blocks: int) -> None:
    state = convert(*packaged_model(stem))
    assert f"body.{blocks - 1}.rdb3.conv5.weight" in state
    assert f"body.{blocks}.rdb1.conv1.weight" not in state
    assert len(state) == 2 * (1 + 15 * blocks + 5)
    assert state["conv_first.weight"].shape == (64, 3, 3, 3)
    assert state["body.0.rdb1.conv5.weight"].shape == (64, 64 + 4 * 32, 3, 3)
    assert state["conv_last.weight"].shape == (3, 64, 3, 3)
    assert all(tensor.dtype == torch.float32 for tensor in state.values())
    descriptor = ModelLoader().load_from_state_dict(state)
    assert descriptor.architecture.id == "ESRGAN" and descriptor.scale == 4
    assert f"{blocks}nb" in descriptor.tags


def test_a_graph_of_another_shape_is_refused() -> None:
    # the 2x package variant adds a bicubic downscale after the 4x network
    with pytest.raises(ConversionError, match="Interp"):
        convert(*packaged_model("REALESRGAN_ANIMAVIDEOV3_UP2X"))


def test_a_changed_activation_is_refused(tmp_path: Path) -> None:
    param, weights = packaged_model(ANIMEVIDEO)
    text = param.read_text().replace(
        "Conv_34                  1 1 104 105 0=48", "Conv_34                  1 1 104 105 9=1 0=48"
    )
    (tmp_path / "m.param").write_text(text)
    with pytest.raises(ConversionError, match="activation"):
        srvgg_state_dict(read_model(tmp_path / "m.param", weights))
