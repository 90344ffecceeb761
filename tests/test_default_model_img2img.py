"""img2img and inpainting on the embedded default model, measured from pixels: the whole
pipeline (VAE encode -> noise at the denoising strength -> sampler -> VAE decode -> overlay)
has to carry the picture's layout and the prompt's colour for these to pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from sdtui.cli import main
from sdtui.training.measure import measure
from sdtui.training.shapes_dataset import RADIUS, ShapeSpec, cell_centre, render

SPEC = ShapeSpec("circle", "red", "blue", "top left", "large")
MASK_MARGIN = 6  # pixels of background the mask takes around the shape
MASK_BLUR = 4  # A1111's default


@pytest.fixture
def init_and_mask(tmp_path: Path) -> tuple[Path, Path]:
    """A dataset picture of SPEC (drawn, not generated) and a mask just around its circle."""
    centre, radius = cell_centre(SPEC.position), RADIUS[SPEC.size] * 128
    init = render(SPEC, centre, radius)
    mask = Image.new("L", init.size, 0)
    reach = radius + MASK_MARGIN
    x, y = centre
    ImageDraw.Draw(mask).ellipse([x - reach, y - reach, x + reach, y + reach], fill=255)
    init_path, mask_path = tmp_path / "init.png", tmp_path / "mask.png"
    init.save(init_path)
    mask.save(mask_path)
    return init_path, mask_path


def img2img(data_dirs, out: Path, *argv: str) -> Image.Image:
    args = ["img2img", *argv, "--seed", "2", "--device", "cpu", "--out", str(out)]
    assert main([*args, "--data-dir", str(data_dirs.root)]) == 0
    (path,) = sorted(out.glob("*.png"))
    return Image.open(path).convert("RGB")


def test_denoising_half_way_keeps_the_layout(data_dirs, tmp_path, init_and_mask) -> None:
    init_path, _ = init_and_mask
    assert measure(Image.open(init_path)).matches(SPEC) == dict.fromkeys(
        ("background", "colour", "position", "shape", "size"), True
    )
    prompt = "a large red circle on a blue background, top left"
    result = img2img(
        data_dirs, tmp_path / "out", "--init", str(init_path), "--prompt", prompt,
        "--denoising-strength", "0.5",
    )  # fmt: skip
    assert result.size == (128, 128)
    seen = measure(result)
    assert (seen.background, seen.colour, seen.position, seen.shape) == (
        "blue", "red", "top left", "circle",
    )  # fmt: skip
    centre = cell_centre(SPEC.position)
    assert seen.centroid is not None
    assert abs(seen.centroid[0] - centre[0]) < 6 and abs(seen.centroid[1] - centre[1]) < 6


def test_inpainting_recolours_only_the_masked_shape(data_dirs, tmp_path, init_and_mask) -> None:
    init_path, mask_path = init_and_mask
    prompt = "a large green circle on a blue background, top left"
    result = img2img(
        data_dirs, tmp_path / "out", "--init", str(init_path), "--mask", str(mask_path),
        "--prompt", prompt,
    )  # fmt: skip
    seen = measure(result)
    assert (seen.background, seen.colour, seen.position) == ("blue", "green", "top left")
    # outside the blurred mask the result is the input, pixel for pixel (the final overlay)
    touched = Image.open(mask_path).filter(ImageFilter.GaussianBlur(MASK_BLUR))
    untouched = np.asarray(touched.filter(ImageFilter.MaxFilter(5))) == 0
    assert untouched.mean() > 0.7
    before, after = np.asarray(Image.open(init_path).convert("RGB")), np.asarray(result)
    assert np.array_equal(before[untouched], after[untouched])
