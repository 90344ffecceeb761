"""img2img over a folder (A1111's Batch sub-tab): the rules on their own, the job on a tiny
model (masks by name, PNG info, skip and interrupt, names in the output folder) and
`sdtui img2img --batch-input-dir` end to end. Expected values are written by hand: file
names, infotext fields, which pixels must equal the input's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from sdtui.cli import main
from sdtui.params.codec import params_from_infotext
from sdtui.params.image_metadata import read_image_metadata
from sdtui.params.schema import img2img_defaults
from sdtui.params.validate import resolve
from sdtui.plugins import PluginHost
from sdtui.runtime.job_context import JobContext, JobInterrupted
from sdtui.runtime.jobs import JobHandle
from sdtui.services.img2img_batch import (
    BatchItem,
    BatchSpec,
    Img2ImgBatchJob,
    existing_outputs,
    image_files,
    mask_for,
    parse_png_info,
    summary,
    with_png_info,
)
from sdtui.services.outputs import OutputNaming
from tests.tiny_models import write_tiny_checkpoint

SMALL = ["--steps", "1", "--device", "cpu", "--prompt", "painting"]
FOX = (
    "a red fox\nNegative prompt: blurry\n"
    "Steps: 1, Sampler: DPM++ 2M Karras, CFG scale: 4, Seed: 11, Size: 32x32, Model: elsewhere"
)


def picture(
    path: Path, size: tuple[int, int] = (64, 64), seed: int = 0, infotext: str = ""
) -> Path:
    width, height = size
    values = np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)
    info = PngImagePlugin.PngInfo()
    if infotext:
        info.add_text("parameters", infotext)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values, "RGB").save(path, pnginfo=info)
    return path


def infotext(path: Path) -> str:
    text = read_image_metadata(path).infotext
    assert text is not None
    return text


# -- the rules --------------------------------------------------------------------------------


def test_inputs_are_images_by_extension_in_natural_order(tmp_path) -> None:
    for name in ("img10.png", "img2.JPG", "img1.webp", "b.tiff", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    names = [path.name for path in image_files(tmp_path)]
    assert names == ["b.tiff", "img1.webp", "img2.JPG", "img10.png"]


def test_png_info_names_masks_and_existing_outputs(tmp_path) -> None:
    assert parse_png_info("prompt, CFG scale,seed,prompt") == ("prompt", "cfg", "seed")
    with pytest.raises(ValueError, match="unknown PNG info field 'size'; known: prompt, neg"):
        parse_png_info("prompt,size")
    masks = [tmp_path / "a.webp", tmp_path / "b.png"]
    assert mask_for(tmp_path / "in" / "b.jpg", masks) == tmp_path / "b.png"
    assert mask_for(tmp_path / "in" / "c.png", masks) is None
    assert mask_for(tmp_path / "in" / "c.png", masks[:1]) == masks[0]  # one mask: for all
    for name in ("00003-a.png", "a-1.webp", "00004-a-2.png", "ab.png", "00005-b.png"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in existing_outputs(tmp_path, "a")] == [
        "00003-a.png",
        "00004-a-2.png",
        "a-1.webp",
    ]
    assert existing_outputs(tmp_path, "c") == [] and existing_outputs(tmp_path / "no", "a") == []
    base = resolve(dataclasses.replace(img2img_defaults(), prompt="painting", seed=5))
    values = {"prompt": "a fox", "negative_prompt": "blurry", "seed": 11}
    changed = with_png_info(base, values)
    assert (changed.prompt, changed.negative_prompt, changed.seed) == (
        "painting a fox",
        "blurry",
        11,
    )
    assert changed.cfg_scale == base.cfg_scale


def test_spec_check_says_what_is_wrong(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    images = tmp_path / "images"
    picture(images / "a.png", (8, 8))
    cases = [
        (BatchSpec(tmp_path / "missing"), "input folder .*missing: no such folder"),
        (BatchSpec(tmp_path / "empty"), "no images in it"),
        (BatchSpec(images / "a.png"), "a file, not a folder"),
        (BatchSpec(images, mask_dir=tmp_path / "masks"), "mask folder .*: no such folder"),
        (BatchSpec(images, output_dir=images), "the output folder is the input folder"),
        (BatchSpec(images, skip_existing=True), "needs an output folder"),
    ]
    for spec, message in cases:
        with pytest.raises(ValueError, match=message):
            spec.check()
    assert BatchSpec(images, output_dir=tmp_path / "new").check() == [images / "a.png"]


def test_summary_lists_failures() -> None:
    report = [
        BatchItem(Path("a.png"), "done", outputs=[Path("o/a.png")]),
        BatchItem(Path("bad.png"), "failed", "not an image"),
        BatchItem(Path("c.png"), "exists", "c.png exists"),
    ]
    assert summary(report, 3) == (
        "1 done (1 image written), 1 skipped (output exists), 1 failed: bad.png: not an image"
    )


# -- the job on a tiny model ------------------------------------------------------------------


@pytest.fixture
def tiny_dirs(data_dirs):
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    return data_dirs


HOST = PluginHost(load_entry_points=False)


@pytest.fixture
def runtime():
    from sdtui.runtime import Runtime

    started = Runtime.start(device="cpu", plugin_host=HOST)
    yield started
    started.shutdown()


class Scripted(JobContext):
    """A job context pressing Skip or Interrupt after the first step of the images
    `presses` names ({"image 2/3 b.png": "skip"})."""

    def __init__(self, runtime, presses: dict[str, str] | None = None) -> None:
        super().__init__(JobHandle(1, "batch", "img2img"), runtime.jobs)
        self.presses = dict(presses or {})
        self.texts: list[str | None] = []

    def progress(self, step: int, total: int, *, text: str | None = None) -> None:
        super().progress(step, total, text=text)
        self.texts.append(text)
        if step == 1 and text in self.presses:
            action = self.presses.pop(text)
            (self._skip if action == "skip" else self._interrupt).set()


def batch_job(runtime, dirs, spec: BatchSpec, **changes):
    from sdtui.services.generation import choose_checkpoint

    base = dict(prompt="painting", width=64, height=64, steps=2, seed=3, sampler="Euler")
    params = resolve(dataclasses.replace(img2img_defaults(), **{**base, **changes}))
    model = choose_checkpoint(dirs, None)
    naming = OutputNaming(add_number=False)  # "Add number to filename" off: the input's name
    return Img2ImgBatchJob(runtime, HOST, dirs, params, model, naming=naming, batch=spec)


def test_skip_moves_on_and_interrupt_keeps_what_is_finished(tiny_dirs, runtime, tmp_path):
    for index, name in enumerate(("a.png", "b.png", "c.png", "d.png")):
        picture(tmp_path / "in" / name, seed=index)
    out = tmp_path / "out"
    spec = BatchSpec(tmp_path / "in", output_dir=out)
    job = batch_job(runtime, tiny_dirs, spec, denoising_strength=1.0)
    context = Scripted(runtime, {"image 2/4 b.png": "skip", "image 3/4 c.png": "interrupt"})
    with pytest.raises(JobInterrupted):
        job(context)
    assert [(item.source.name, item.status) for item in job.report] == [
        ("a.png", "done"),
        ("b.png", "skipped"),
        ("c.png", "interrupted"),
    ]
    assert [path.name for path in out.iterdir()] == ["a.png"]  # the input's name
    assert job.report[0].outputs == [out / "a.png"]
    assert "image 1/4 a.png" in context.texts  # the steps, and what is loading, per image
    assert "image 3/4 c.png · loading tiny" in context.texts
    assert not any(text and "d.png" in text for text in context.texts)
    text = summary(job.report, job.total)
    assert text == "1 done (1 image written), 1 skipped, interrupted after 3 of 4"


def test_masks_are_matched_by_name(tiny_dirs, runtime, tmp_path) -> None:
    for index, name in enumerate(("a.png", "b.png", "c.png")):
        picture(tmp_path / "in" / name, seed=index)
    masks = tmp_path / "masks"
    masks.mkdir()
    left = Image.new("L", (64, 64))
    left.paste(255, (0, 0, 32, 64))
    left.save(masks / "a.png")
    right = Image.new("L", (64, 64))
    right.paste(255, (32, 0, 64, 64))
    right.save(masks / "b.webp", lossless=True)
    (masks / "notes.txt").write_text("not a mask")
    spec = BatchSpec(tmp_path / "in", output_dir=tmp_path / "out", mask_dir=masks)
    job = batch_job(runtime, tiny_dirs, spec, steps=1, mask_blur=0, inpainting_fill="original")
    report = job(Scripted(runtime))
    assert [(item.source.name, item.status) for item in report] == [
        ("a.png", "done"),
        ("b.png", "done"),
        ("c.png", "failed"),
    ]
    assert report[2].message == f"no mask named c.* in {masks}"
    for item, kept, repainted in ((report[0], 34, 30), (report[1], 0, 30)):
        source = np.asarray(Image.open(item.source)).astype(int)
        (path,) = item.outputs
        result = np.asarray(Image.open(path).convert("RGB")).astype(int)
        if kept:  # a: the left half repainted, the right half the input's exactly
            assert np.array_equal(result[:, kept:], source[:, kept:])
            assert (result[:, :repainted] != source[:, :repainted]).any()
        else:  # b: the other way round
            assert np.array_equal(result[:, :repainted], source[:, :repainted])
            assert (result[:, 34:] != source[:, 34:]).any()


def test_png_info_takes_the_chosen_fields_from_each_image(tiny_dirs, runtime, tmp_path) -> None:
    picture(tmp_path / "in" / "a.png", infotext=FOX)
    picture(tmp_path / "in" / "b.png", seed=1)  # no infotext: the request's values
    fields = parse_png_info("prompt,negative,seed,steps")  # not CFG scale, not the sampler
    spec = BatchSpec(tmp_path / "in", png_info=fields)  # no output folder: outputs/img2img-*
    job = batch_job(runtime, tiny_dirs, spec, seed=5, cfg_scale=7.0)
    report = job(Scripted(runtime))
    assert [item.status for item in report] == ["done", "done"]
    (fox,), (plain,) = report[0].outputs, report[1].outputs
    assert fox.parent.parent == tiny_dirs.outputs / "img2img-images"  # a date folder
    parsed = params_from_infotext(infotext(fox)).values
    assert (parsed["prompt"], parsed["negative_prompt"]) == ("painting a red fox", "blurry")
    assert (parsed["seed"], parsed["steps"], parsed["cfg_scale"]) == (11, 1, 7.0)
    assert parsed["sampler"] == "Euler"  # the request's, not the infotext's
    assert (parsed["width"], parsed["height"]) == (64, 64)  # the request's, not the infotext's
    parsed = params_from_infotext(infotext(plain)).values
    assert (parsed["prompt"], parsed["seed"], parsed["steps"]) == ("painting", 5, 2)
    assert parsed["negative_prompt"] == ""


# -- the command line -------------------------------------------------------------------------


def test_cli_batch_with_a_bad_file_then_a_rerun_skipping_existing(tiny_dirs, tmp_path, capsys):
    source = tmp_path / "in"
    picture(source / "a.png", (72, 64))
    picture(source / "b.png", (64, 72), seed=1)
    (source / "bad.png").write_text("not an image")
    (source / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    argv = ["img2img", "--batch-input-dir", str(source), "--batch-output-dir", str(out)]
    argv += [*SMALL, "--data-dir", str(tiny_dirs.root)]
    assert main(argv) == 1  # one input failed
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out / "00000-a.png"), str(out / "00001-b.png")]
    assert Image.open(out / "00000-a.png").size == (72, 64)  # each image its own size
    assert Image.open(out / "00001-b.png").size == (64, 72)
    assert infotext(out / "00001-b.png").startswith("painting\nSteps: 1, ")
    last = captured.err.splitlines()[-1]
    assert last.startswith("sdtui img2img: 2 done (2 images written), 1 failed: bad.png: ")
    assert "not an image sdtui can read" in last
    assert main([*argv, "--batch-skip-existing"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "0 done (0 images written), 2 skipped (output exists), 1 failed" in captured.err
    assert sorted(path.name for path in out.iterdir()) == ["00000-a.png", "00001-b.png"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--batch-input-dir", "{tmp}/missing"], "input folder {tmp}/missing: no such folder"),
        (["--batch-input-dir", "{tmp}/empty"], "input folder {tmp}/empty: no images in it"),
        (["--batch-input-dir", "{tmp}/in", "--out", "{tmp}/o"], "--out is for one --init"),
        (["--batch-input-dir", "{tmp}/in", "--batch-mask-dir", "{tmp}/m"], "mask folder"),
        (["--batch-input-dir", "{tmp}/in", "--batch-png-info", "size"], "unknown PNG info"),
        (["--batch-input-dir", "{tmp}/in", "--init", "{tmp}/in/a.png"], "not allowed with"),
    ],
)
def test_cli_refuses_a_bad_batch_before_loading_anything(tmp_path, capsys, arguments, message):
    (tmp_path / "empty").mkdir()
    picture(tmp_path / "in" / "a.png", (8, 8))
    fresh = tmp_path / "fresh-data"
    argv = ["img2img", *(a.format(tmp=tmp_path) for a in arguments), *SMALL]
    try:
        code = main([*argv, "--data-dir", str(fresh)])
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    assert code == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
    assert not fresh.exists()
