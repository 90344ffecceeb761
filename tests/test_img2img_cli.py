"""`sdtui img2img` end to end on a tiny checkpoint, and its refusals of bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.params.image_metadata import read_image_metadata
from tests.tiny_models import write_tiny_checkpoint

SMALL = ["--steps", "2", "--device", "cpu", "--prompt", "a red hat"]


@pytest.fixture
def data_dir(data_dirs):
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    return data_dirs


@pytest.fixture
def files(tmp_path):
    values = np.random.RandomState(3).randint(0, 256, (64, 96, 3), dtype=np.uint8)
    Image.fromarray(values, "RGB").save(tmp_path / "in.png")
    mask = Image.new("RGBA", (48, 32), (0, 0, 0, 0))  # half size, alpha: stretched over
    mask.paste((255, 255, 255, 255), (4, 4, 12, 12))  # pixels 8-23 of the input
    mask.save(tmp_path / "mask.png")
    (tmp_path / "notes.png").write_text("not an image")
    return tmp_path


def written(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_inpaint_writes_a1111_named_pngs_keeping_the_unmasked_pixels(
    data_dir, files, capsys
) -> None:
    argv = ["img2img", "--init", str(files / "in.png"), "--mask", str(files / "mask.png")]
    argv += ["--seed", "5", "--batch-size", "2", *SMALL, "--data-dir", str(data_dir.root)]
    assert main(argv) == 0
    paths = written(capsys)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["00000-5.png", "00001-6.png"]
    assert all("/outputs/img2img-images/" in p for p in paths)
    infotext = read_image_metadata(paths[0]).infotext
    assert infotext.startswith("a red hat\nSteps: 2, Sampler: DPM++ 2M")
    assert "Size: 96x64" in infotext and "Denoising strength: 0.75" in infotext
    assert "Mask blur: 4" in infotext
    source = np.asarray(Image.open(files / "in.png")).astype(int)
    result = np.asarray(Image.open(paths[0]).convert("RGB")).astype(int)
    assert result.shape == source.shape
    keep = np.ones((64, 96), dtype=bool)
    keep[0:36, 0:36] = False  # the mask (8-23, stretched: +1) and its blur (10 pixels)
    assert np.array_equal(result[keep], source[keep])
    assert list((data_dir.outputs / "img2img-grids").rglob("grid-0000.png"))


def test_img2img_scale_by_and_flags(data_dir, files, capsys) -> None:
    argv = ["img2img", "--init", str(files / "in.png"), "--scale-by", "1.5"]
    argv += ["--denoising-strength", "0.5", "--resize-mode", "Crop and resize", *SMALL]
    assert main([*argv, "--data-dir", str(data_dir.root)]) == 0
    (path,) = written(capsys)
    assert Image.open(path).size == (144, 96)
    infotext = read_image_metadata(path).infotext
    assert "Size: 144x96" in infotext and "Denoising strength: 0.5" in infotext
    assert "Mask blur" not in infotext


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--init", "{files}/missing.png"], "init image {files}/missing.png: no such file"),
        (["--init", "{files}/notes.png"], "not an image sdtui can read"),
        (["--init", "{files}/in.png", "--mask", "{files}/notes.png"], "mask {files}/notes.png"),
        (["--init", "{files}/in.png", "--mode", "inpaint"], "--mode inpaint needs --mask"),
        (["--init", "{files}/in.png", "--inpaint-area", "Everywhere"], "Inpaint area"),
    ],
)
def test_bad_inputs_are_refused_and_nothing_is_written(
    files, tmp_path, capsys, arguments, message
) -> None:
    fresh = tmp_path / "fresh-data"
    argv = [a.format(files=files) for a in arguments]
    if "Inpaint area" in message:  # validated after the data dir exists: it gets no image
        write_tiny_checkpoint(tmp_path / "tiny.safetensors", "sd1")
        argv += ["--model", str(tmp_path / "tiny.safetensors")]
    assert main(["img2img", *argv, *SMALL, "--data-dir", str(fresh)]) == 2
    assert message.format(files=files) in capsys.readouterr().err
    assert not list(fresh.rglob("*.png"))
    if "Inpaint area" not in message:
        assert not fresh.exists()
