"""The img2img-only scripts (Loopback, Poor man's outpainting, SD upscale) on a tiny model
(64 px, 1-2 steps): how many images of what size, their seeds and infotext, which pixels
stay the input's, one img2img run per tile; A1111's geometry and curves by hand; the CLI,
and bad options refused before anything loads."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image
from sdtui_plugins.builtin.scripts.loopback import denoising_strength
from sdtui_plugins.builtin.scripts.matched_noise import match_histograms, matched_noise
from sdtui_plugins.builtin.scripts.outpainting_mk2 import strip_of
from sdtui_plugins.builtin.scripts.poor_mans_outpainting import (
    Canvas,
    canvas_of,
    outpaint_mask,
)

from sdtui.cli import main
from sdtui.params.codec import params_from_infotext
from sdtui.params.image_metadata import read_image_metadata
from sdtui.params.schema import GenerationParams, img2img_defaults
from sdtui.runtime.jobs import Finished, Progress
from sdtui.services.img2img_job import Img2ImgJob
from sdtui.services.requests import prepare_img2img
from tests.script_helpers import script_env
from tests.tiny_models import write_tiny_checkpoint

SIZE = 64
PMO = "poor_mans_outpainting"  # an alias


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from script_env(tmp_path_factory.mktemp("img2img_scripts"))


@pytest.fixture
def calls(monkeypatch) -> list:
    """Every img2img engine run a script makes: (params, its inputs, its images)."""
    made: list = []
    original = Img2ImgJob.process

    def spy(self, params, context, **kw):
        results = original(self, params, context, **kw)
        inputs = {k: kw[k] for k in ("init_images", "mask") if k in kw}
        made.append((params, inputs, [r.image for r in results]))
        return results

    monkeypatch.setattr(Img2ImgJob, "process", spy)
    return made


def pattern(width: int = SIZE, height: int = SIZE) -> Image.Image:
    values = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(values, "RGB")


def run(env, script: str, args: dict, init: Image.Image, **kw):
    base = dict(prompt="a cat", steps=1, width=SIZE, height=SIZE, seed=7)
    params = prepare_img2img(dataclasses.replace(img2img_defaults(), **{**base, **kw}), env.host)
    job = Img2ImgJob(
        env.runtime, env.host, env.dirs, params, env.model, init_images=[init],
        script=env.host.scripts.get(script), script_args=args,
    )  # fmt: skip
    events: list = []
    remove = env.runtime.jobs.add_listener(events.append)
    try:
        final = env.runtime.jobs.submit(job, name=script, kind="img2img").wait()
    finally:
        remove()
    assert isinstance(final, Finished), final
    return [s for s in job.saved if not s.grid], [s for s in job.saved if s.grid], events


def read(path) -> GenerationParams:
    return params_from_infotext(read_image_metadata(path).infotext).apply_to(GenerationParams())


def test_denoising_curves_by_hand() -> None:
    half = math.sqrt(2) / 2  # sin and cos of pi / 4
    expected = {
        "Linear": [0.75, 0.625, 0.5],
        "Aggressive": [0.75, 0.75 - 0.25 * half, 0.5],
        "Lazy": [0.75, 0.75 - 0.25 * (1 - half), 0.5],
    }
    for curve, values in expected.items():
        got = [denoising_strength(i, 3, 0.75, 0.5, curve) for i in range(3)]
        assert got == pytest.approx(values, abs=1e-12), curve
    assert denoising_strength(1, 5, 0.2, 1.0, "Aggressive") == pytest.approx(0.2 + 0.8 * 0.3826834)
    assert denoising_strength(0, 1, 0.3, 0.9, "Lazy") == 0.3  # one loop: the request's


def test_loopback_three_loops(env, calls) -> None:
    args = {"loops": 3, "Final denoising strength": 0.5}
    images, (grid,), events = run(env, "loopback", args, pattern(), steps=2)
    got = [read(s.path) for s in images]
    assert len(images) == 3 and [p.seed for p in got] == [7, 8, 9]
    assert [p.denoising_strength for p in got] == pytest.approx([0.75, 0.625, 0.5])
    assert all(Image.open(s.path).size == (SIZE, SIZE) for s in images)
    assert "Final denoising strength: 0.5, Denoising curve: Linear" in images[0].infotext
    assert Image.open(grid.path).size == (3 * SIZE, SIZE)  # one row
    # each loop's output is the next loop's input; the first starts from the job's image
    assert len(calls) == 3 and "init_images" not in calls[0][1]
    for saved, (_, inputs, _) in zip(images[:2], calls[1:], strict=True):
        assert inputs["init_images"][0].tobytes() == Image.open(saved.path).tobytes()
    # progress over all loops: int(d * 2) + 1 steps at d = 0.75, 0.625, 0.5
    assert {e.total for e in events if isinstance(e, Progress)} == {2 + 2 + 2}


def test_loopback_batch_count_restarts_from_the_input(env, calls) -> None:
    images, (grid,), _ = run(env, "Loopback", {"loops": 2}, pattern(), batch_count=2, batch_size=3)
    assert [read(s.path).seed for s in images] == [7, 8, 9, 10]  # batch size 1, seeds on
    assert [c[0].batch_size for c in calls] == [1] * 4
    assert [("init_images" in c[1]) for c in calls] == [False, True, False, True]
    assert Image.open(grid.path).size == (2 * SIZE, SIZE)  # each chain's last image
    assert np.array_equal(
        np.asarray(Image.open(grid.path))[:, SIZE:], np.asarray(Image.open(images[3].path))
    )


def test_outpainting_canvas_and_mask_by_hand() -> None:
    assert canvas_of(64, 64, 32, ("left", "right")) == Canvas(128, 64, 32, 32, 0, 0)
    assert canvas_of(64, 64, 128, ("left", "right", "up", "down")) == Canvas(
        320, 320, 128, 128, 128, 128
    )
    assert canvas_of(64, 48, 40, ("left", "down")) == Canvas(128, 128, 64, 0, 0, 80)
    assert canvas_of(100, 64, 16, ("left", "right")) == Canvas(192, 64, 46, 46, 0, 0)
    columns = np.asarray(outpaint_mask(Canvas(128, 64, 32, 32, 0, 0), 4))[10]
    assert list(np.flatnonzero(columns == 0)) == list(range(40, 89))  # 32+8 .. 96-8, inclusive
    assert set(columns.tolist()) == {0, 255}


def test_outpainting_left_and_right(env, calls) -> None:
    init = pattern()
    args = {"pixels": 32, "direction": "left, right", "mask_blur": 0}
    (saved,), grids, _ = run(env, "Poor man's outpainting", args, init)
    assert grids == []
    picture = np.asarray(Image.open(saved.path).convert("RGB"))
    assert picture.shape == (SIZE, 2 * SIZE, 3)
    assert np.array_equal(picture[:, 32:96], np.asarray(init))  # the input, untouched
    assert np.asarray(Image.open(saved.path))[:, :32].std() > 0  # the border was painted
    # tiles at x = 0, 32, 64 (overlap 32): the middle one lies inside the input
    assert [(p.seed, p.width, p.height, p.mask_blur) for p, _, _ in calls] == [
        (7, 64, 64, 0),
        (8, 64, 64, 0),
    ]
    first, second = (inputs for _, inputs, _ in calls)
    assert np.asarray(first["mask"])[0, :33].tolist() == [255] * 32 + [0]
    assert np.array_equal(np.asarray(first["init_images"][0])[:, 32:], np.asarray(init)[:, :32])
    assert np.asarray(second["mask"])[0, 31:34].tolist() == [0, 0, 255]  # x = 95, 96, 97
    assert read(saved.path).inpainting_fill == "fill"


def test_outpainting_with_mask_blur_keeps_the_unblurred_middle(env, calls) -> None:
    init = pattern()
    (saved,), _, _ = run(env, PMO, {"pixels": 32, "direction": "left right"}, init)
    picture = np.asarray(Image.open(saved.path).convert("RGB"))
    # mask blur 4 -> 8: black from x = 40 to 88, a Gaussian of radius 20 leaves 60..68 at 0
    assert np.array_equal(picture[:, 60:69], np.asarray(init)[:, 28:37])
    assert read(saved.path).mask_blur == 8 and len(calls) == 2


def test_sd_upscale_tiles(env, calls) -> None:
    args = {"upscaler": "lanczos", "scale_factor": 2, "overlap": 16}
    (saved,), grids, events = run(env, "SD upscale", args, pattern(), steps=2)
    assert grids == [] and Image.open(saved.path).size == (2 * SIZE, 2 * SIZE)
    # 128 px in 64 px tiles overlapping by 16: ceil((128 - 16) / 48) = 3 per axis
    assert len(calls) == 9 and [p.seed for p, _, _ in calls] == list(range(7, 16))
    assert {(p.width, p.height, p.batch_size) for p, _, _ in calls} == {(SIZE, SIZE, 1)}
    upscaled = pattern().resize((128, 128), Image.Resampling.LANCZOS)
    starts = [0, 32, 64]
    boxes = [(x, y, x + SIZE, y + SIZE) for y in starts for x in starts]
    for (_, inputs, _), box in zip(calls, boxes, strict=True):
        assert inputs["init_images"][0].tobytes() == upscaled.crop(box).tobytes()
        assert inputs["mask"] is None
    assert "SD upscale overlap: 16, SD upscale upscaler: Lanczos" in saved.infotext
    # every tile's int(0.75 * 2) + 1 steps, known from the start
    assert {e.total for e in events if isinstance(e, Progress)} == {9 * 2}


def test_sd_upscale_batches_and_the_none_upscaler(env, calls) -> None:
    init = pattern(3 * SIZE, SIZE)  # the default upscaler, None: the image keeps its size
    args = {"overlap": 0}
    made, _, _ = run(env, "sd_upscale", args, init, batch_size=2, batch_count=2)
    assert [Image.open(s.path).size for s in made] == [(3 * SIZE, SIZE)] * 2
    # three tiles in batches of 2, the runs' seeds counting on; the second upscale at + 1
    assert [(p.seed, p.batch_size) for p, _, _ in calls] == [(7, 2), (8, 1), (8, 2), (9, 1)]
    assert [len(inputs["init_images"]) for _, inputs, _ in calls] == [2, 1, 2, 1]
    for saved, (first, second) in zip(made, [calls[:2], calls[2:]], strict=True):
        tiles = [*first[2], *second[2]]
        expected = np.concatenate([np.asarray(tile) for tile in tiles], axis=1)
        assert np.array_equal(np.asarray(Image.open(saved.path).convert("RGB")), expected)
    assert read(made[1].path).seed == 8 and "SD upscale upscaler: None" in made[0].infotext


def test_histogram_matching_takes_the_template_values() -> None:
    rng = np.random.default_rng(1)
    source, template = rng.random((50, 3)), rng.random((50, 3)) * 0.5 + 0.2
    matched = match_histograms(source, template)
    for channel in range(3):  # same sizes: the template's values, in the source's order
        assert np.array_equal(np.sort(matched[:, channel]), np.sort(template[:, channel]))
        assert np.array_equal(np.argsort(matched[:, channel]), np.argsort(source[:, channel]))


def test_matched_noise_keeps_the_known_pixels_and_their_colours() -> None:
    image = np.asarray(pattern(32, 32), dtype=np.float64) / 255 * 0.5 + 0.25
    mask = np.zeros_like(image)
    mask[:, :8] = 1.0
    filled = matched_noise(image, mask)
    assert np.array_equal(filled[:, 8:], image[:, 8:])
    known, new = image[:, 8:].reshape(-1, 3), filled[:, :8].reshape(-1, 3)
    assert (new.min(axis=0) >= known.min(axis=0)).all()
    assert (new.max(axis=0) <= known.max(axis=0)).all()
    assert new.std() > 0.05 and np.array_equal(filled, matched_noise(image, mask))


def test_outpainting_mk2_strips_by_hand() -> None:
    left = strip_of((64, 64), "left", 32, 2, (64, 64))
    assert (left.canvas_size, left.grown, left.crop) == ((128, 64), (96, 64), (0, 0, 64, 64))
    row = np.asarray(left.mask)[5]
    assert list(np.flatnonzero(row == 0)) == list(range(34, 97))  # 32 + 2 .. 96, inclusive
    right = strip_of((96, 64), "right", 32, 2, (64, 64))
    assert (right.grown, right.crop) == ((128, 64), (64, 0, 128, 64))
    assert list(np.flatnonzero(np.asarray(right.mask)[5] == 0)) == list(range(0, 95))
    down = strip_of((64, 64), "down", 40, 0, (64, 64))
    assert (down.canvas_size, down.grown, down.crop) == ((64, 128), (64, 104), (0, 64, 64, 128))


def test_outpainting_mk2_left_and_right(env, calls) -> None:
    init = pattern()
    args = {"pixels": 32, "direction": "left,right", "mask_blur": 0}
    images, (grid,), _ = run(env, "Outpainting mk2", args, init, batch_size=2)
    assert len(images) == 2 and Image.open(grid.path).size == (4 * SIZE, SIZE)
    for saved in images:
        picture = np.asarray(Image.open(saved.path).convert("RGB"))
        assert picture.shape == (SIZE, 2 * SIZE, 3)
        assert np.array_equal(picture[:, 32:96], np.asarray(init))
    # one run per direction with the whole batch, at the request's seed
    assert [(p.seed, p.width, p.batch_size, p.inpainting_fill) for p, _, _ in calls] == [
        (7, 64, 2, "original"),
        (7, 64, 2, "original"),
    ]
    left_part = calls[0][1]["init_images"][0]  # the strip's noise, then the input
    assert np.array_equal(np.asarray(left_part)[:, 32:], np.asarray(init)[:, :32])
    assert np.asarray(left_part)[:, :32].std() > 0


@pytest.fixture
def root(data_dirs) -> list[str]:
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    return ["--data-dir", str(data_dirs.root)]


SMALL = ["--steps", "1", "--width", "64", "--height", "64", "--device", "cpu"]


def test_cli_loopback(root, capsys, tmp_path) -> None:
    init = tmp_path / "init.png"
    pattern().save(init)
    argv = ["img2img", "--init", str(init), "--prompt", "a cat", "--seed", "4", *SMALL, *root]
    assert main([*argv, "--script", "loopback", "--script-arg", "loops=2"]) == 0
    paths = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(paths) == 3 and "img2img-images" in paths[0] and "img2img-grids" in paths[2]
    assert [read(p).seed for p in paths] == [4, 5, 4]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--script", "loopback", "--script-arg", "loops=0"], "Loops must be between 1 and 32"),
        (["--script", "loopback", "--script-arg", "denoising_curve=Fast"], "is not one of"),
        (["--script", "SD upscale", "--script-arg", "upscaler=Bicubic"], "unknown upscaler"),
        (["--script", "SD upscale", "--script-arg", "overlap=64"], "must be smaller than"),
        (["--script", PMO, "--script-arg", "direction=left,north"], "'north'"),
        (["--script", PMO, "--script-arg", "pixels=64"], "must be smaller than"),
    ],
)
def test_bad_options_exit_2_before_anything_is_written(
    root, data_dirs, capsys, tmp_path, args, message
):
    init = tmp_path / "init.png"
    pattern().save(init)
    argv = ["img2img", "--init", str(init), "--prompt", "a cat", *SMALL, *root, *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(data_dirs.outputs.rglob("*.png")) == []


def test_img2img_scripts_are_not_offered_in_txt2img(root, capsys) -> None:
    assert main(["generate", "--prompt", "a", *SMALL, *root, "--script", "SD upscale"]) == 2
    assert "works in img2img, not txt2img" in capsys.readouterr().err
