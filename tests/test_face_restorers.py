"""The built-in GFPGAN and CodeFormer face restorers: registration, weights lookup and
errors, and the detect -> align -> restore -> paste-back path (with a stand-in network in
the fast tests, with the real architectures and random weights in the slow ones)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from sdtui_plugins.builtin.face_restorers import (
    CODEFORMER,
    GFPGAN,
    CodeFormerRestorer,
    FaceRestorerError,
    SpandrelFaceRestorer,
    configure_face_restorers,
)
from skimage import data

from sdtui.cli.generate import command_setup
from sdtui.paths import DataDirs
from sdtui.plugins import PluginHost, reset_host

MODULE = "sdtui_plugins.builtin.face_restorers"
BACKGROUND = (90, 110, 130)
# where the astronaut's crop goes on the synthetic canvas, and facenet-pytorch's landmarks
# for her (pixel indices in the photo), moved there: the oracle for where the face is
SOURCE_BOX = (140, 20, 300, 200)
OFFSET = np.array([80 - 140, 40 - 20])
LANDMARKS = (
    np.array([(205.0, 101.7), (246.8, 103.7), (224.7, 129.0), (201.7, 139.2), (245.3, 141.9)])
    + 0.5
    + OFFSET
)
FACE_REGION = (80, 40, 240, 220)
FACEXLIB_TEMPLATE = np.array(  # where GFPGAN's training crops have those five points
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ]
)  # left, top, right, bottom of the pasted crop


def face_image() -> Image.Image:
    """A 320 x 256 flat canvas with the astronaut's head pasted in."""
    canvas = Image.new("RGB", (320, 256), BACKGROUND)
    canvas.paste(Image.fromarray(data.astronaut()).crop(SOURCE_BOX), (80, 40))
    return canvas


def far_from_the_face(shape: tuple[int, ...]) -> np.ndarray:
    """True more than 40 px outside the pasted crop."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    left, top, right, bottom = FACE_REGION
    return (x < left - 40) | (x >= right + 40) | (y < top - 40) | (y >= bottom + 40)


def restorer_in(dirs: DataDirs, cls: type = SpandrelFaceRestorer, spec: Any = GFPGAN) -> Any:
    restorer = cls(spec)
    restorer.use_data_dirs(dirs)
    return restorer


def put_file(dirs: DataDirs, folder: str, name: str, state: dict[str, Any]) -> Path:
    path = dirs.models(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def stand_in(
    paint: Callable[[torch.Tensor], torch.Tensor], weights: list[float] | None = None
) -> Callable[[float], Callable[[torch.Tensor], torch.Tensor]]:
    """A `network(weight)` replacement: `paint` on the [-1, 1] crop."""

    def network(weight: float) -> Callable[[torch.Tensor], torch.Tensor]:
        if weights is not None:
            weights.append(weight)

        def run(crop: torch.Tensor) -> torch.Tensor:
            assert crop.shape == (1, 3, 512, 512)
            assert -1 <= crop.min() and crop.max() <= 1 and crop.min() < -0.5
            return paint(crop.clone())

        return run

    return network


def mark_template(crop: torch.Tensor) -> torch.Tensor:
    """White 36 px squares where the template puts the eyes, nose and mouth corners."""
    for x, y in FACEXLIB_TEMPLATE.round().astype(int):
        crop[:, :, y - 18 : y + 18, x - 18 : x + 18] = 1.0
    return crop


# -- registration -------------------------------------------------------------------------


def test_both_register_under_a1111s_names_without_importing_torch() -> None:
    code = (
        "import sys; from sdtui.plugins import PluginHost; "
        f"host = PluginHost(builtins=({MODULE!r},), load_entry_points=False); "
        "print(host.face_restorers.names(), host.failures, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['GFPGAN', 'CodeFormer'] [] False"


def test_the_default_host_has_them(data_dirs: DataDirs) -> None:
    host = PluginHost(load_entry_points=False)
    assert host.face_restorers.get("codeformer").name == "CodeFormer"
    assert host.face_restorers.owner("GFPGAN") == MODULE


def test_they_follow_the_runtime_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import sdtui_plugins.builtin.face_restorers as plugin

    monkeypatch.setattr(plugin.FOLLOWERS, "device", None)
    host = PluginHost(builtins=(MODULE,), load_entry_points=False)
    assert [r.device for r in host.face_restorers] == [None, None]
    host.runtime_ready(argparse.Namespace(device=torch.device("cuda", 1)))
    assert [r.device for r in host.face_restorers] == ["cuda:1", "cuda:1"]
    later = PluginHost(builtins=(MODULE,), load_entry_points=False)
    assert later.face_restorers.get("GFPGAN").device == "cuda:1"
    host.runtime_ready(argparse.Namespace(device=torch.device("cpu")))


def test_configure_points_every_restorer_at_the_data_dir(
    data_dirs: DataDirs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sdtui_plugins.builtin.face_restorers as plugin

    monkeypatch.setattr(plugin, "_data_dirs", None)
    host = PluginHost(builtins=(MODULE,), load_entry_points=False)
    gfpgan = host.face_restorers.get("GFPGAN")
    assert gfpgan.folder == data_dirs.models("GFPGAN")  # the default: $SDTUI_DATA_DIR
    other = DataDirs.resolve(tmp_path / "other")
    configure_face_restorers(other)
    assert gfpgan.folder == other.models("GFPGAN")
    assert host.face_restorers.get("CodeFormer").folder == other.models("Codeformer")
    made_later = PluginHost(builtins=(MODULE,), load_entry_points=False)
    assert made_later.face_restorers.get("GFPGAN").folder == other.models("GFPGAN")


def test_the_cli_setup_configures_them(data_dirs: DataDirs, tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"")  # named by path: not read by the setup
    other = DataDirs.resolve(tmp_path / "cli-data")
    args = argparse.Namespace(data_dir=str(other.root), model=str(checkpoint))
    reset_host(lambda: PluginHost(builtins=(MODULE,), load_entry_points=False))
    try:
        _, host, _, _ = command_setup(args, "generate")
        assert host.face_restorers.get("CodeFormer").folder == other.models("Codeformer")
    finally:
        reset_host()
        configure_face_restorers(data_dirs)


# -- weights ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "cls", "folder", "file_name"),
    [
        (GFPGAN, SpandrelFaceRestorer, "GFPGAN", "GFPGANv1.4.pth"),
        (CODEFORMER, CodeFormerRestorer, "Codeformer", "codeformer-v0.1.0.pth"),
    ],
)
def test_missing_weights_say_which_file_goes_where(
    data_dirs: DataDirs, spec: Any, cls: type, folder: str, file_name: str
) -> None:
    restorer = restorer_in(data_dirs, cls, spec)
    message = restorer.unavailable()
    assert message is not None
    assert str(data_dirs.models(folder)) in message and file_name in message
    assert "https://github.com/" in message
    with pytest.raises(FaceRestorerError) as error:
        restorer.restore(face_image())
    assert str(error.value) == message
    # a file of another name does not count (A1111 keeps facexlib's weights there too)
    put_file(data_dirs, folder, "detection_Resnet50_Final.pth", {"x": torch.zeros(1)})
    assert restorer.unavailable() == message


def test_a1111s_file_is_found_in_sub_folders_and_by_name(data_dirs: DataDirs) -> None:
    restorer = restorer_in(data_dirs)
    put_file(data_dirs, "GFPGAN", "parsing_parsenet.pth", {"x": torch.zeros(1)})
    path = put_file(data_dirs, "GFPGAN", "v/gfpganv1.3.safetensors", {})
    put_file(data_dirs, "GFPGAN", "z-GFPGANv1.4.pth", {})
    assert restorer.weights_path() == path
    assert restorer.unavailable() is None


def test_a_missing_detector_is_reported(
    data_dirs: DataDirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sdtui.faces

    restorer = restorer_in(data_dirs)
    put_file(data_dirs, "GFPGAN", "GFPGANv1.4.pth", {})
    monkeypatch.setattr(sdtui.faces, "WEIGHTS_PACKAGE", "sdtui_no_such_package")
    message = restorer.unavailable()
    assert message is not None and "install the facenet-pytorch package" in message


def test_a_file_of_another_architecture_is_refused(data_dirs: DataDirs) -> None:
    restorer = restorer_in(data_dirs)
    from tests.test_model_upscalers import tiny_compact  # an upscaler spandrel knows

    path = put_file(data_dirs, "GFPGAN", "GFPGAN-upscaler.pth", tiny_compact(scale=2))
    with pytest.raises(FaceRestorerError, match="not GFPGAN") as error:
        restorer.restore(face_image())
    assert str(path) in str(error.value) and "GFPGANv1.4.pth" in str(error.value)


def test_a_file_spandrel_does_not_know_is_refused(data_dirs: DataDirs) -> None:
    restorer = restorer_in(data_dirs, CodeFormerRestorer, CODEFORMER)
    put_file(data_dirs, "Codeformer", "codeformer.pth", {"something.weight": torch.zeros(2)})
    with pytest.raises(FaceRestorerError, match="does not recognise its architecture"):
        restorer.restore(face_image())
    path = data_dirs.models("Codeformer") / "codeformer.pth"
    path.write_bytes(b"not a pickle")
    with pytest.raises(FaceRestorerError, match=r"codeformer\.pth"):
        restorer.restore(face_image())


# -- the restore path with a stand-in network ----------------------------------------------


@pytest.fixture
def marked(data_dirs: DataDirs, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[float]]:
    """A GFPGAN restorer whose "network" marks the template's landmark places."""
    restorer = restorer_in(data_dirs)
    weights: list[float] = []
    monkeypatch.setattr(restorer, "network", stand_in(mark_template, weights))
    return restorer, weights


def test_the_restored_crop_lands_on_the_face(marked: tuple[Any, list[float]]) -> None:
    restorer, _ = marked
    image = face_image()
    result = restorer.restore(image)
    assert result.size == image.size and result.mode == "RGB"
    before, after = np.asarray(image, dtype=int), np.asarray(result, dtype=int)
    # the template's marks come back centred on the face's landmarks (an independent
    # oracle), within what a 5-point similarity fit leaves (a few pixels)
    new_white = (after.min(axis=2) > 200) & (before.min(axis=2) <= 200)
    for x, y in LANDMARKS.round().astype(int):
        window = new_white[y - 12 : y + 13, x - 12 : x + 13]
        assert window.sum() > 50, (x, y)  # a 36 px mark at a third of the size: ~12 x 12
        ys, xs = np.nonzero(window)
        assert np.hypot(xs.mean() - 12, ys.mean() - 12) < 6, (x, y)
    # between the eyes, below the marks' reach, the face is close to what it was
    between = np.round((LANDMARKS[0] + LANDMARKS[1]) / 2 + [0, 12]).astype(int)
    assert np.abs(after[between[1], between[0]] - before[between[1], between[0]]).max() < 40
    far = far_from_the_face(before.shape)
    np.testing.assert_array_equal(after[far], before[far])


def test_an_identity_network_gives_back_the_image(
    data_dirs: DataDirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    restorer = restorer_in(data_dirs)
    monkeypatch.setattr(restorer, "network", stand_in(lambda crop: crop))
    image = face_image()
    difference = np.abs(np.asarray(restorer.restore(image), int) - np.asarray(image, int))
    assert difference.mean() < 1 and np.percentile(difference, 99) <= 12  # resampled twice


def test_an_image_without_a_face_comes_back_unchanged(marked: tuple[Any, list[float]]) -> None:
    restorer, _ = marked
    image = Image.new("RGB", (200, 150), BACKGROUND)
    result = restorer.restore(image)
    assert result is not image
    np.testing.assert_array_equal(np.asarray(result), np.asarray(image))


def test_alpha_and_grey_images_keep_their_mode(marked: tuple[Any, list[float]]) -> None:
    restorer, _ = marked
    rgba = face_image().convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 77))
    result = restorer.restore(rgba)
    assert result.mode == "RGBA" and (np.asarray(result.getchannel("A")) == 77).all()
    assert restorer.restore(face_image().convert("L")).mode == "L"


def test_weight_defaults_to_a1111s_and_is_checked(marked: tuple[Any, list[float]]) -> None:
    restorer, weights = marked
    image = Image.new("RGB", (64, 64))
    restorer.restore(image)
    restorer.restore(image, weight=0.0)
    restorer.restore(image, weight=1)
    assert weights == [0.5, 0.0, 1.0]
    with pytest.raises(ValueError, match="between 0 and 1"):
        restorer.restore(image, weight=1.5)


class Recorder(torch.nn.Module):
    """A stand-in for the spandrel model: records its keyword arguments, returns -x."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def forward(self, x: torch.Tensor, **options: Any) -> tuple[torch.Tensor, None]:
        self.calls.append(options)
        return -x, None


@pytest.mark.parametrize(
    ("cls", "spec", "expected"),
    [
        (SpandrelFaceRestorer, GFPGAN, {"return_rgb": False}),
        (CodeFormerRestorer, CODEFORMER, {"weight": 0.25, "adain": True}),
    ],
)
def test_the_models_are_called_as_a1111_calls_them(
    data_dirs: DataDirs, monkeypatch: pytest.MonkeyPatch, cls: type, spec: Any, expected: dict
) -> None:
    restorer = restorer_in(data_dirs, cls, spec)
    recorder = Recorder()
    monkeypatch.setattr(restorer, "model", lambda: SimpleNamespace(model=recorder))
    image = face_image()
    result = np.asarray(restorer.restore(image, weight=0.25), dtype=int)
    assert recorder.calls == [expected]
    # -x in [-1, 1] is the negative image: the face's middle is inverted
    x, y = np.round(LANDMARKS[2]).astype(int)  # the nose
    assert abs(result[y, x] - (255 - np.asarray(image, dtype=int)[y, x])).max() <= 25


# -- the real architectures, random weights (slow: seconds per face on a CPU) --------------


@pytest.fixture(scope="module")
def random_models(tmp_path_factory: pytest.TempPathFactory) -> DataDirs:
    from spandrel.architectures.GFPGAN import GFPGAN as GFPGANNet
    from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

    dirs = DataDirs.resolve(tmp_path_factory.mktemp("faces"))
    torch.manual_seed(0)
    gfpgan = GFPGANNet(  # the configuration spandrel builds for GFPGANv1.4
        out_size=512,
        num_style_feat=512,
        channel_multiplier=2,
        decoder_load_path=None,
        fix_decoder=False,
        num_mlp=8,
        input_is_latent=True,
        different_w=True,
        narrow=1,
        sft_half=True,
    )
    # nested as the released files are
    put_file(dirs, "GFPGAN", "GFPGANv1.4.pth", {"params_ema": gfpgan.state_dict()})
    put_file(dirs, "Codeformer", "codeformer.pth", {"params_ema": CodeFormer().state_dict()})
    return dirs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cls", "spec"), [(SpandrelFaceRestorer, GFPGAN), (CodeFormerRestorer, CODEFORMER)]
)
def test_random_weights_restore_the_face_only(
    random_models: DataDirs, cls: type, spec: Any
) -> None:
    restorer = restorer_in(random_models, cls, spec)
    assert restorer.unavailable() is None
    image = face_image()
    result = restorer.restore(image)
    assert result.size == image.size
    before, after = np.asarray(image, dtype=int), np.asarray(result, dtype=int)
    far = far_from_the_face(before.shape)
    np.testing.assert_array_equal(after[far], before[far])
    for x, y in LANDMARKS.astype(int):
        assert (
            np.abs(after[y - 3 : y + 4, x - 3 : x + 4] - before[y - 3 : y + 4, x - 3 : x + 4]).max()
            > 0
        )


@pytest.mark.slow
def test_codeformer_weight_changes_the_result(random_models: DataDirs) -> None:
    restorer = restorer_in(random_models, CodeFormerRestorer, CODEFORMER)
    image = face_image()
    strongest = np.asarray(restorer.restore(image, weight=0.0), dtype=int)
    weakest = np.asarray(restorer.restore(image, weight=1.0), dtype=int)
    assert np.abs(strongest - weakest).max() > 0
