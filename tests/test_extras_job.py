"""The Extras job (files, folders, names, metadata, failures) and `sdtui upscale`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from sdtui.cli import main
from sdtui.params.extras_schema import ExtrasParams
from sdtui.params.image_metadata import read_image_metadata
from sdtui.params.validate import ParameterError
from sdtui.runtime.job_context import JobInterrupted
from sdtui.services.extras_job import (
    ExtrasInput,
    ExtrasJob,
    ExtrasOptions,
    check_extras_request,
    folder_inputs,
)
from sdtui.services.outputs import OutputNaming
from tests.test_extras import Flat, Inverter, host_with

INFOTEXT = "a red cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5"


class Context:
    """A job context that interrupts when asked to check for the `stop_at`-th time."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.checks, self.stop_at, self.results, self.texts = 0, stop_at, [], []

    def check(self) -> None:
        self.checks += 1
        if self.stop_at is not None and self.checks >= self.stop_at:
            raise JobInterrupted()

    def progress(self, step: int, total: int, *, text: str | None = None) -> None:
        self.texts.append(text)

    def add_result(self, item) -> None:
        self.results.append(item)


def png_with_infotext(path: Path, size=(20, 16), colour=(200, 40, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", INFOTEXT)
    info.add_text("sdtui_params", json.dumps({"seed": 5}))
    info.add_text("Software", "elsewhere")
    Image.new("RGB", size, colour).save(path, pnginfo=info)
    return path


def job_for(dirs, inputs, out_dir=None, **options) -> ExtrasJob:
    host = host_with(Flat("Flat", (0, 90, 0)))
    params = check_extras_request(ExtrasParams(upscaler="flat", scale=2.0), host)
    return ExtrasJob(host, dirs, params, inputs, ExtrasOptions(**options), out_dir=out_dir)


def test_a_single_image_gets_a1111s_short_name_and_keeps_its_metadata(data_dirs, tmp_path):
    source = png_with_infotext(tmp_path / "in" / "cat.png")
    for expected in ("00000.png", "00001.png"):
        job = job_for(data_dirs, [ExtrasInput(path=source)])
        context = Context()
        saved = job(context)
        assert [item.path.name for item in saved] == [expected]
        assert saved[0].path.parent == data_dirs.outputs / "extras-images"
        assert context.results == saved
    metadata = read_image_metadata(saved[0].path)
    assert metadata.infotext == INFOTEXT  # the generation parameters stay readable
    assert metadata.params == {"seed": 5}
    assert metadata.items["extras"] == "Postprocess upscale by: 2, Postprocess upscaler: Flat"
    assert metadata.items["Software"] == "elsewhere"
    with Image.open(saved[0].path) as image:
        assert image.size == (40, 32)
        assert image.getpixel((0, 0)) == (0, 90, 0)


def test_an_image_in_memory_keeps_its_info_items(data_dirs):
    image = Image.new("RGB", (10, 10))
    image.info["parameters"] = INFOTEXT
    saved = job_for(data_dirs, [ExtrasInput(image=image)])(Context())
    assert read_image_metadata(saved[0].path).infotext == INFOTEXT


def test_a_folder_batch_keeps_names_replaces_and_reports_unreadable_files(data_dirs, tmp_path):
    png_with_infotext(tmp_path / "in" / "b10.png")
    png_with_infotext(tmp_path / "in" / "b2.png")
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "in" / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b2.png").write_bytes(b"old output")  # A1111's default: replaced
    job = job_for(data_dirs, folder_inputs(tmp_path / "in"), out_dir=out)
    saved = job(Context())
    assert [path.name for path in sorted(out.iterdir())] == ["b10.png", "b2.png"]
    assert [item.path.name for item in saved] == ["b2.png", "b10.png"]  # natural order
    assert [(item.source, item.status) for item in job.report] == [
        ("b2.png", "done"),
        ("b10.png", "done"),
        ("broken.png", "failed"),
    ]
    assert "broken.png" in job.report[2].message
    assert read_image_metadata(out / "b2.png").infotext == INFOTEXT


def test_keeping_names_into_the_input_folder_is_refused_before_anything_runs(data_dirs, tmp_path):
    source = png_with_infotext(tmp_path / "in" / "a.png")
    job = job_for(data_dirs, folder_inputs(tmp_path / "in"), out_dir=tmp_path / "in")
    with pytest.raises(ValueError, match="overwrite"):
        job(Context())
    with Image.open(source) as image:
        assert image.size == (20, 16)


def test_upscaler_suffix_and_jpeg_output(data_dirs, tmp_path):
    source = png_with_infotext(tmp_path / "a.png")
    naming = OutputNaming(extension="jpg")
    job = job_for(data_dirs, [ExtrasInput(path=source)], naming=naming, upscaler_suffix=True)
    saved = job(Context())
    assert saved[0].path.name == "00000-Flat.jpg"
    assert read_image_metadata(saved[0].path).infotext == INFOTEXT  # EXIF UserComment


def test_interrupt_keeps_finished_images_and_marks_the_rest(data_dirs, tmp_path):
    inputs = [
        ExtrasInput(path=png_with_infotext(tmp_path / "in" / f"{name}.png"), keep_name=True)
        for name in ("a", "b", "c")
    ]
    job = job_for(data_dirs, inputs, out_dir=tmp_path / "out")
    context = Context(stop_at=3)  # checks: image a, a's upscale, image b -> stop
    with pytest.raises(JobInterrupted):
        job(context)
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["a.png"]
    assert [item.status for item in job.report] == ["done", "interrupted", "interrupted"]


def test_the_request_check_lists_every_problem():
    host = host_with(Flat("Flat", (0, 0, 0)))
    assert check_extras_request(ExtrasParams(upscaler="FLAT"), host).upscaler == "Flat"
    with pytest.raises(ParameterError) as caught:
        check_extras_request(ExtrasParams(upscaler="Nope", scale=0.5), host)
    assert any("Resize must be between 1 and 8" in p for p in caught.value.problems)
    assert any("Upscaler 1 'Nope' is not one of: None, Flat" in p for p in caught.value.problems)
    with pytest.raises(ParameterError, match="nothing to do"):
        check_extras_request(ExtrasParams(), host)
    with pytest.raises(ParameterError, match="unknown face restorer 'GFPGAN'"):
        check_extras_request(ExtrasParams(gfpgan_visibility=1.0), host)


def test_a_restorer_without_weights_says_what_to_put_where():
    class Missing(Inverter):
        def unavailable(self) -> str:
            return "put GFPGANv1.4.pth into models/GFPGAN"

    host = host_with(Missing("GFPGAN"))
    with pytest.raises(ParameterError, match="models/GFPGAN"):
        check_extras_request(ExtrasParams(gfpgan_visibility=0.5), host)


def test_cli_upscale_single_batch_and_bad_requests(tmp_path, capsys):
    data = ["--data-dir", str(tmp_path / "data")]
    single = png_with_infotext(tmp_path / "one.png")
    assert main(["upscale", str(single), "--upscaler", "Lanczos", "--scale", "2", *data]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written == tmp_path / "data" / "outputs" / "extras-images" / "00000.png"
    with Image.open(written) as image:
        assert image.size == (40, 32)

    folder = tmp_path / "in"
    png_with_infotext(folder / "x.png", size=(30, 20))
    (folder / "y.png").write_bytes(b"broken")
    out = tmp_path / "out"
    sized = ["--scale-to-width", "64", "--scale-to-height", "64"]
    code = main(["upscale", "--input-dir", str(folder), "--out", str(out), "--upscaler",
                 "nearest", *sized, *data])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1  # one input failed; the other was written
    assert captured.out.split() == [str(out / "x.png")]
    assert "y.png" in captured.err
    assert read_image_metadata(out / "x.png").items["extras"] == (
        "Postprocess upscale to: 64x64, Postprocess crop to: 64x64, Postprocess upscaler: Nearest"
    )

    assert main(["upscale", str(single), *data]) == 2  # nothing to do
    assert "nothing to do" in capsys.readouterr().err
    assert main(["upscale", str(tmp_path / "missing.png"), "--upscaler", "Lanczos", *data]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["upscale", "--upscaler", "Lanczos", *data]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["x.png"]
