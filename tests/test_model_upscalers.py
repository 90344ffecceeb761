"""Model upscalers: the built-in Real-ESRGAN models (converted once, cached under
models/RealESRGAN) and the files in the data dir's upscaler folders."""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from sdtui_plugins.builtin.model_upscalers import (
    BUILTINS,
    FOLDER_OWNER,
    RealESRGANUpscaler,
    register_folder_upscalers,
)
from spandrel import ModelLoader

from sdtui.cli.generate import command_setup
from sdtui.engine.upscalers import run_upscaler
from sdtui.models.upscaler_files import save_atomic
from sdtui.paths import DataDirs
from sdtui.plugins import PluginHost, reset_host

MODULE = "sdtui_plugins.builtin.model_upscalers"
ANIMEVIDEO = next(spec for spec in BUILTINS if spec.name == "R-ESRGAN AnimeVideo")
COLOUR = (51, 153, 255)  # what the tiny RRDBNet below paints: its last bias times 255


def model_host() -> PluginHost:
    builtins = ("sdtui_plugins.builtin.upscalers", MODULE)
    return PluginHost(builtins=builtins, load_entry_points=False)


def smooth(size: int) -> Image.Image:
    """Two gradients and a soft disc: an image without noise, which tiles cannot hide."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    disc = np.clip(1 - 2 * np.hypot(x - 0.5, y - 0.5), 0, 1)
    return Image.fromarray((np.stack([x, y, disc], -1) * 255).round().astype(np.uint8))


def colours(image: Image.Image) -> set[tuple[int, ...]]:
    return {tuple(pixel) for pixel in np.asarray(image).reshape(-1, 3).tolist()}


def tiny_compact(scale: int = 2) -> dict[str, torch.Tensor]:
    """SRVGGNetCompact with all weights zero: its output is the input upscaled nearest."""
    features = 4
    return {
        "body.0.weight": torch.zeros(features, 3, 3, 3),
        "body.0.bias": torch.zeros(features),
        "body.1.weight": torch.zeros(features),
        "body.2.weight": torch.zeros(features, features, 3, 3),
        "body.2.bias": torch.zeros(features),
        "body.3.weight": torch.zeros(features),
        "body.4.weight": torch.zeros(3 * scale * scale, features, 3, 3),
        "body.4.bias": torch.zeros(3 * scale * scale),
    }


def tiny_rrdbnet() -> dict[str, torch.Tensor]:
    """A 1-block 4x RRDBNet in Real-ESRGAN's layout whose last convolution has zero weights:
    every output pixel is its bias, COLOUR / 255."""
    generator = torch.Generator().manual_seed(0)
    features, grow = 8, 32  # spandrel assumes 32 grow channels

    def conv(name: str, inputs: int, outputs: int) -> dict[str, torch.Tensor]:
        weight = torch.randn(outputs, inputs, 3, 3, generator=generator) * 0.1
        return {f"{name}.weight": weight, f"{name}.bias": torch.zeros(outputs)}

    state = conv("conv_first", 3, features)
    for rdb in range(1, 4):
        for index in range(1, 6):
            outputs = features if index == 5 else grow
            state |= conv(f"body.0.rdb{rdb}.conv{index}", features + (index - 1) * grow, outputs)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        state |= conv(name, features, features)
    state["conv_last.weight"] = torch.zeros(3, features, 3, 3)
    state["conv_last.bias"] = torch.tensor(COLOUR, dtype=torch.float32) / 255
    return state


def tiny_dat() -> dict[str, torch.Tensor]:
    from spandrel.architectures.DAT import DAT

    model = DAT(upscale=2, embed_dim=16, depth=[2], num_heads=[2], split_size=[2, 4], img_size=16)
    return model.state_dict()


# -- built-ins --------------------------------------------------------------------------


def test_the_builtins_register_without_importing_torch() -> None:
    code = (
        "import sys; from sdtui.plugins import PluginHost; "
        f"host = PluginHost(builtins=({MODULE!r},), load_entry_points=False); "
        "print([(u.name, u.scale) for u in host.upscalers], host.failures, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "[('R-ESRGAN 4x+', 4), ('R-ESRGAN 4x+ Anime6B', 4), ('R-ESRGAN AnimeVideo', 4)] [] False"
    )


def test_the_upscalers_follow_the_runtime_device(monkeypatch) -> None:
    import sdtui_plugins.builtin.model_upscalers as plugin

    monkeypatch.setattr(plugin.FOLLOWERS, "device", None)
    host = model_host()
    assert {u.name: u.device for u in host.upscalers if hasattr(u, "device")} == dict.fromkeys(
        ("R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B", "R-ESRGAN AnimeVideo")
    )  # the CPU until a runtime is up
    host.runtime_ready(argparse.Namespace(device=torch.device("cuda", 1)))
    assert {u.device for u in host.upscalers if hasattr(u, "device")} == {"cuda:1"}
    later = model_host()  # made after the runtime came up
    assert later.upscalers.get("R-ESRGAN 4x+").device == "cuda:1"
    host.runtime_ready(argparse.Namespace(device=torch.device("cpu")))
    assert later.upscalers.get("R-ESRGAN 4x+").device == "cpu"


def test_animevideo_upscales_4x_and_keeps_flat_colours(data_dirs: DataDirs) -> None:
    upscaler = model_host().upscalers.get("R-ESRGAN AnimeVideo")
    out = run_upscaler(upscaler, smooth(16), 4, tile=0)
    assert out.size == (64, 64) and out.mode == "RGB"
    flat = run_upscaler(upscaler, Image.new("RGB", (16, 16), (200, 40, 90)), 4, tile=0)
    inside = np.asarray(flat, dtype=float)[8:-8, 8:-8].reshape(-1, 3)
    assert np.abs(inside - (200, 40, 90)).max() <= 6  # an SR model leaves flat areas alone
    # first used without register_folder_upscalers: cached under $SDTUI_DATA_DIR
    assert (data_dirs.models("RealESRGAN") / "realesr-animevideov3.pth").is_file()


def test_tiled_and_untiled_agree(data_dirs: DataDirs) -> None:
    upscaler = model_host().upscalers.get("R-ESRGAN AnimeVideo")
    image = smooth(32)
    whole = np.asarray(run_upscaler(upscaler, image, 4, tile=0), dtype=float)
    steps: list[tuple[int, int]] = []
    tiled = run_upscaler(
        upscaler, image, 4, tile=24, overlap=8, progress=lambda *s: steps.append(s)
    )
    difference = np.abs(whole - np.asarray(tiled, dtype=float))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert difference.mean() < 2 and difference.max() < 16


def test_the_conversion_is_cached_once_and_reused(data_dirs: DataDirs) -> None:
    first = RealESRGANUpscaler(ANIMEVIDEO)
    first.use_data_dirs(data_dirs)
    tile = smooth(12)
    expected = np.asarray(first.upscale_tile(tile))
    cached = data_dirs.models("RealESRGAN") / "realesr-animevideov3.pth"
    assert first.conversions == 1 and first.cache_error is None
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]  # no temp file
    assert list(torch.load(cached, weights_only=True)) == ["params"]  # as Real-ESRGAN's release
    descriptor = ModelLoader().load_from_file(cached)
    assert descriptor.architecture.id == "Compact" and descriptor.scale == 4
    stamp = cached.stat().st_mtime_ns
    again = RealESRGANUpscaler(ANIMEVIDEO)  # as in a new process
    again.use_data_dirs(data_dirs)
    assert np.array_equal(np.asarray(again.upscale_tile(tile)), expected)
    assert again.conversions == 0 and cached.stat().st_mtime_ns == stamp


def test_a_file_already_there_is_used_as_is(data_dirs: DataDirs) -> None:
    folder = data_dirs.models("RealESRGAN")
    folder.mkdir(parents=True)
    torch.save({"params": tiny_compact(scale=2)}, folder / "realesr-animevideov3.pth")
    upscaler = RealESRGANUpscaler(ANIMEVIDEO)
    upscaler.use_data_dirs(data_dirs)
    tile = smooth(8)
    assert upscaler.upscale_tile(tile).tobytes() == tile.resize((16, 16), Image.NEAREST).tobytes()
    assert upscaler.conversions == 0 and upscaler.scale == 2


def test_save_atomic_leaves_nothing_behind_when_it_fails(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="pickle"):
        save_atomic({"unpicklable": threading.Lock()}, tmp_path / "x.pth")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B"])
def test_the_rrdbnet_builtins_upscale_16_to_64(data_dirs: DataDirs, name: str) -> None:
    upscaler = model_host().upscalers.get(name)
    assert upscaler.scale == 4
    image = smooth(16)
    whole = run_upscaler(upscaler, image, 4, tile=0)
    tiled = run_upscaler(upscaler, image, 4, tile=12, overlap=4)
    assert whole.size == tiled.size == (64, 64)
    difference = np.abs(np.asarray(whole, dtype=float) - np.asarray(tiled, dtype=float))
    assert difference.mean() < 6


# -- the user's folders -----------------------------------------------------------------


def fill_folders(dirs: DataDirs) -> dict[str, Path]:
    paths = {
        "rrdb": dirs.models("ESRGAN") / "4x-tiny.pth",
        "compact": dirs.models("DAT") / "sub" / "tiny compact.safetensors",
        "dat": dirs.models("DAT") / "2x-dat.pth",
        "broken": dirs.models("ESRGAN") / "broken.pth",
        "clash": dirs.models("ESRGAN") / "lanczos.pth",
        "unknown": dirs.models("SwinIR") / "unknown.safetensors",
        "builtin": dirs.models("RealESRGAN") / "RealESRGAN_x4plus.pth",
        "notes": dirs.models("HAT") / "notes.txt",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": tiny_rrdbnet()}, paths["rrdb"])
    save_file(tiny_compact(scale=2), paths["compact"])
    torch.save(tiny_dat(), paths["dat"])
    paths["broken"].write_bytes(b"not a model at all")
    torch.save(tiny_compact(), paths["clash"])
    save_file({"weight": torch.zeros(2, 2)}, paths["unknown"])
    torch.save({"params_ema": tiny_rrdbnet()}, paths["builtin"])
    paths["notes"].write_text("ignored")
    return paths


def test_folder_files_are_registered_or_reported(data_dirs: DataDirs) -> None:
    paths = fill_folders(data_dirs)
    host = model_host()
    unusable = dict(register_folder_upscalers(host, data_dirs))
    folder_names = [n for n in host.upscalers.names() if host.upscalers.owner(n) == FOLDER_OWNER]
    assert folder_names == ["4x-tiny", "2x-dat", "tiny compact"]  # folder order, then by name
    found = {name: host.upscalers.get(name) for name in folder_names}
    assert [(u.architecture, u.scale) for u in found.values()] == [
        ("ESRGAN", 4),
        ("DAT", 2),
        ("RealESRGAN Compact", 2),
    ]
    assert set(unusable) == {paths["broken"], paths["clash"], paths["unknown"]}
    assert "cannot be read" in unusable[paths["broken"]]
    assert "'lanczos' is already taken" in unusable[paths["clash"]]
    assert "does not recognise" in unusable[paths["unknown"]]
    image = smooth(12)
    painted = run_upscaler(found["4x-tiny"], image, 4, tile=8, overlap=2)
    assert painted.size == (48, 48) and colours(painted) == {COLOUR}
    doubled = run_upscaler(found["tiny compact"], image, 2, tile=0)
    assert doubled.tobytes() == image.resize((24, 24), Image.NEAREST).tobytes()
    assert run_upscaler(found["2x-dat"], smooth(8), 2).size == (16, 16)
    # the built-in's own file is not listed twice, and the built-in runs it as is
    builtin = host.upscalers.get("R-ESRGAN 4x+")
    assert builtin.weights_path == paths["builtin"]
    assert colours(run_upscaler(builtin, smooth(8), 4)) == {COLOUR}


def test_a_second_call_replaces_the_first_folders(data_dirs: DataDirs, tmp_path: Path) -> None:
    host = model_host()
    fill_folders(data_dirs)
    register_folder_upscalers(host, data_dirs)
    other = DataDirs.resolve(tmp_path / "other")
    other.models("ESRGAN").mkdir(parents=True)
    save_file(tiny_compact(), other.models("ESRGAN") / "only.safetensors")
    assert register_folder_upscalers(host, other) == []
    names = [n for n in host.upscalers.names() if host.upscalers.owner(n) == FOLDER_OWNER]
    assert names == ["only"]
    assert host.upscalers.get("R-ESRGAN 4x+").weights_path.parent == other.models("RealESRGAN")


def test_a_host_without_the_plugin_is_left_alone(data_dirs: DataDirs) -> None:
    host = PluginHost(builtins=("sdtui_plugins.builtin.upscalers",), load_entry_points=False)
    fill_folders(data_dirs)
    assert register_folder_upscalers(host, data_dirs) == []
    assert host.upscalers.names() == ["None", "Lanczos", "Nearest"]


def test_the_cli_setup_registers_folders_and_reports_unusable_files(
    data_dirs: DataDirs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = fill_folders(data_dirs)
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"")  # named by path: not read by the setup
    args = argparse.Namespace(data_dir=str(data_dirs.root), model=str(checkpoint))
    reset_host(model_host)
    try:
        _, host, _, _ = command_setup(args, "generate")
        assert "4x-tiny" in host.upscalers
    finally:
        reset_host()
    errors = capsys.readouterr().err
    assert f"sdtui generate: upscaler {paths['broken']} is unusable: cannot be read" in errors
    assert str(paths["unknown"]) in errors and str(paths["rrdb"]) not in errors
