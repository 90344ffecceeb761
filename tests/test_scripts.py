"""The built-in scripts end to end on a tiny model (64 px, 1-2 steps): what they save, the
grids' sizes and legends, each cell's parameters read back from its PNG, progress,
interrupt, img2img, and errors before anything is written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdtui.params.codec import params_from_infotext
from sdtui.params.image_metadata import read_image_metadata
from sdtui.params.schema import GenerationParams, img2img_defaults
from sdtui.runtime.jobs import Failed, Finished, Interrupted, Progress, ResultAdded
from sdtui.services.generation import Txt2ImgJob
from sdtui.services.img2img_job import Img2ImgJob
from sdtui.services.requests import prepare_img2img, prepare_txt2img
from tests.script_helpers import script_env
from tests.tiny_models import write_tiny_checkpoint

SIZE = 64


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from script_env(tmp_path_factory.mktemp("scripts"))


def run(env, script: str, args: dict, *, job=Txt2ImgJob, random_seed=False, listen=None, **kw):
    """Run a script as a job; (job, final event, events)."""
    base = dict(prompt="a cat", steps=1, width=SIZE, height=SIZE, seed=7)
    if job is Img2ImgJob:
        params = prepare_img2img(
            dataclasses.replace(img2img_defaults(), **{**base, **kw}), env.host
        )
        extra = {"init_images": [Image.new("RGB", (SIZE, SIZE), (200, 30, 30))]}
    else:
        params = prepare_txt2img(GenerationParams(**{**base, **kw}), env.host)
        extra = {}
    made = job(
        env.runtime, env.host, env.dirs, params, env.model,
        script=env.host.scripts.get(script), script_args=args, random_seed=random_seed, **extra,
    )  # fmt: skip
    events: list = []
    removers = [env.runtime.jobs.add_listener(events.append)]
    if listen is not None:
        removers.append(env.runtime.jobs.add_listener(listen))
    try:
        final = env.runtime.jobs.submit(made, name=script, kind=job.kind).wait()
    finally:
        for remove in removers:
            remove()
    return made, final, events


def images_and_grids(job) -> tuple[list, list]:
    return [s for s in job.saved if not s.grid], [s for s in job.saved if s.grid]


def read(path: Path) -> GenerationParams:
    return params_from_infotext(read_image_metadata(path).infotext).apply_to(GenerationParams())


def test_xyz_two_by_three(env) -> None:
    args = {"x_type": "Steps", "x_values": "1-2", "Y type": "CFG Scale", "y_values": "3,4.5,6"}
    job, final, events = run(env, "xyz", args)
    assert isinstance(final, Finished), final
    images, (grid,) = images_and_grids(job)
    cells = [(read(s.path).steps, read(s.path).cfg_scale) for s in images]
    assert cells == [(1, 3.0), (2, 3.0), (1, 4.5), (2, 4.5), (1, 6.0), (2, 6.0)]  # z, y, x
    assert {read(s.path).seed for s in images} == {7}  # one seed for every cell
    assert grid.path.name == "xyz_grid-0000.png" and "txt2img-grids" in str(grid.path)
    picture = Image.open(grid.path).convert("RGB")
    pad_left, pad_top = SIZE * 3 // 4, picture.height - 3 * SIZE
    assert picture.width == pad_left + 2 * SIZE and pad_top > 0
    for saved, (steps, cfg) in zip(images, cells, strict=True):
        x, y = pad_left + (steps - 1) * SIZE, pad_top + [3.0, 4.5, 6.0].index(cfg) * SIZE
        cell = picture.crop((x, y, x + SIZE, y + SIZE))
        assert cell.tobytes() == Image.open(saved.path).convert("RGB").tobytes()
    text = read_image_metadata(grid.path).infotext
    assert text.startswith("a cat\nSteps: 1, Sampler: DPM++ 2M")
    keys = (
        'Script: X/Y/Z plot, X Type: Steps, X Values: 1-2, Y Type: CFG Scale, Y Values: "3,4.5,6"'
    )
    assert f"RNG: CPU, {keys}, Version: " in text
    assert read(grid.path).cfg_scale == 3.0  # the first cell's parameters
    steps = [(e.step, e.total) for e in events if isinstance(e, Progress)]
    assert steps[-1] == (9, 9) and [s for s, _ in steps] == sorted(s for s, _ in steps)
    assert {total for _, total in steps} == {9}  # 3 x (1 + 2) steps, known from the start


def test_xyz_with_z_sub_grids_margins_and_drawn_seeds(env) -> None:
    args = {
        "x_type": "Seed",
        "x_values": "-1, 5",
        "z_type": "Steps",
        "z_values": "1,2",
        "include_sub_grids": "true",
        "margin_size": "4",
    }
    job, final, _ = run(env, "X/Y/Z plot", args)
    assert isinstance(final, Finished), final
    images, grids = images_and_grids(job)
    seeds = [read(s.path).seed for s in images]
    assert len(images) == 4 and seeds[1] == 5 and seeds[0] == seeds[2] != 5  # -1 drawn once
    main, *subs = [Image.open(g.path) for g in grids]
    assert len(subs) == 2 and all(g.path.name.startswith("xyz_grid-") for g in grids)
    assert subs[0].size == subs[1].size == (2 * SIZE + 4, subs[0].height)  # X labels only
    assert subs[0].height > SIZE
    assert main.width == 2 * subs[0].width and main.height > subs[0].height  # Z labels on top
    assert np.array_equal(np.asarray(main)[-subs[0].height :, : subs[0].width], np.asarray(subs[0]))
    main_text, sub_text = (read_image_metadata(g.path).infotext for g in grids[:2])
    assert f'Fixed X Values: "{seeds[0]}, 5"' in main_text and "Z Type: Steps" in main_text
    assert "X Type: Seed" in sub_text and "Z Type" not in sub_text


def test_xyz_keep_minus_one_draws_a_seed_per_cell(env) -> None:
    args = {"x_type": "CFG Scale", "x_values": "5, 6, 7", "no_fixed_seeds": "yes"}
    job, _, _ = run(env, "xyz", args, random_seed=True)
    assert len({read(s.path).seed for s in images_and_grids(job)[0]}) == 3
    fixed, _, _ = run(env, "xyz", {**args, "no_fixed_seeds": "no"}, random_seed=True)
    assert len({read(s.path).seed for s in images_and_grids(fixed)[0]}) == 1


def test_a_bad_axis_value_fails_before_anything_is_written(env) -> None:
    before = sorted(env.dirs.outputs.rglob("*.png"))
    args = {"x_type": "Steps", "x_values": "1,2", "y_type": "Sampler", "y_values": "Euler, Eular"}
    job, final, _ = run(env, "xyz", args)
    assert isinstance(final, Failed) and "unknown sampler 'Eular'; known:" in final.error_message
    assert job.saved == [] and sorted(env.dirs.outputs.rglob("*.png")) == before


def test_interrupt_stops_the_script_and_keeps_what_finished(env) -> None:
    def stop(event) -> None:
        if isinstance(event, ResultAdded):
            env.runtime.jobs.interrupt()

    args = {"x_type": "Steps", "x_values": "1,1,1"}
    job, final, _ = run(env, "xyz", args, listen=stop)
    assert isinstance(final, Interrupted)
    assert len(job.saved) == 1 and not job.saved[0].grid


def test_prompt_matrix(env) -> None:
    args = {"different_seeds": "true", "margin_size": 2}
    job, final, _ = run(env, "prompt matrix", args, prompt="a cat|red|blue", batch_size=2)
    assert isinstance(final, Finished), final
    images, (grid,) = images_and_grids(job)
    assert [read(s.path).prompt for s in images] == [
        "a cat",
        "a cat, red",
        "a cat, blue",
        "a cat, red, blue",
    ]
    assert [read(s.path).seed for s in images] == [7, 8, 9, 10]
    picture = Image.open(grid.path)
    assert grid.path.name.startswith("prompt_matrix-")
    assert picture.width == SIZE * 3 // 4 + 2 * SIZE + 2  # 2 x 2 cells, "blue" down the rows
    assert picture.height > 2 * SIZE + 2
    assert read_image_metadata(grid.path).infotext == read_image_metadata(images[0].path).infotext


def test_prompt_matrix_on_the_negative_prompt(env) -> None:
    args = {"prompt_type": "negative", "variations_delimiter": "space", "put_at_start": "on"}
    job, _, _ = run(env, "prompt_matrix", args, negative_prompt="ugly|blurry")
    images, _ = images_and_grids(job)
    assert [read(s.path).negative_prompt for s in images] == ["ugly", "blurry ugly"]
    assert {read(s.path).prompt for s in images} == {"a cat"}


def test_prompts_from_text(env) -> None:
    text = (
        "a red house\n\n"
        '--prompt "a dog" --negative_prompt ugly --steps 2 --seed 5 --sampler_name "euler a"\n'
        "--prompt a bird --width 128 --cfg_scale 4 --n_iter 2\n"
    )
    args = {"prompt_txt": text, "checkbox_iterate": "true", "prompt_position": "end"}
    job, final, _ = run(env, "Prompts from file or textbox", args, prompt="photo")
    assert isinstance(final, Finished), final
    images, grids = images_and_grids(job)
    assert grids == []  # A1111 writes no grid for this script
    got = [read(s.path) for s in images]
    assert [p.prompt for p in got] == ["photo a red house", "photo a dog", *["photo a bird"] * 2]
    assert [p.seed for p in got] == [7, 5, 9, 10]  # iterated per line; line 2 says 5
    assert (got[1].negative_prompt, got[1].steps, got[1].sampler) == ("ugly", 2, "Euler a")
    assert (got[2].width, got[2].cfg_scale) == (128, 4.0)


def test_prompts_from_a_file_with_a_bad_line(env, tmp_path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n--prompt a dog --steps many\n", encoding="utf-8")
    job, final, _ = run(env, "prompts_from_file", {"file": str(prompts)})
    assert isinstance(final, Failed) and job.saved == []
    assert "line 2 ('--prompt a dog --steps many'): --steps needs a whole number" in str(
        final.error_message
    )


def test_img2img_xyz_over_denoising(env) -> None:
    args = {"x_type": "Denoising", "x_values": "0.5, 1"}
    job, final, _ = run(env, "xyz", args, job=Img2ImgJob, steps=2)
    assert isinstance(final, Finished), final
    images, (grid,) = images_and_grids(job)
    assert [read(s.path).denoising_strength for s in images] == [0.5, 1.0]
    assert all("img2img-images" in str(s.path) for s in images)
    assert "img2img-grids" in str(grid.path)


def test_xyz_over_checkpoints_switches_the_model(env) -> None:
    write_tiny_checkpoint(env.dirs.checkpoints / "other.safetensors", "sd1", seed=5)
    args = {"x_type": "Checkpoint name", "x_values": "tiny, other.safetensors"}
    job, final, _ = run(env, "xyz", args)
    assert isinstance(final, Finished), final
    images, (grid,) = images_and_grids(job)
    texts = [read_image_metadata(s.path).infotext for s in images]
    assert "Model: tiny," in texts[0] and "Model: other," in texts[1]
    pixels = [np.asarray(Image.open(s.path)) for s in images]
    assert not np.array_equal(pixels[0], pixels[1])
    assert "X Type: Checkpoint name" in read_image_metadata(grid.path).infotext


class Stamp:
    """A face restorer stand-in: inverts the image."""

    name = "Stamp"

    def restore(self, image: Image.Image, **options) -> Image.Image:
        return Image.eval(image, lambda value: 255 - value)


def test_xyz_face_restore_axis_runs_the_named_restorer(env) -> None:
    if "Stamp" not in env.host.face_restorers:
        env.host.face_restorers.add(Stamp(), "test")
    job, final, _ = run(env, "xyz", {"x_type": "Face restore", "x_values": "off, stamp"})
    assert isinstance(final, Finished), final
    plain, stamped = images_and_grids(job)[0]
    assert not read(plain.path).restore_faces
    assert read(stamped.path).restore_faces and read(stamped.path).face_restoration_model == "Stamp"
    assert "Face restoration: Stamp" in read_image_metadata(stamped.path).infotext
    inverted = 255 - np.asarray(Image.open(plain.path).convert("RGB"), dtype=int)
    assert np.array_equal(np.asarray(Image.open(stamped.path).convert("RGB")), inverted)
