"""`sdtui generate` end to end on a tiny checkpoint in an A1111-layout data dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.models import default_model
from sdtui.params.image_metadata import read_image_metadata
from tests.tiny_models import write_tiny_checkpoint

SMALL = ["--steps", "2", "--width", "64", "--height", "64", "--device", "cpu"]


@pytest.fixture
def data_dir(data_dirs):
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    return data_dirs


def written(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_generate_writes_a1111_named_pngs_with_infotext(data_dir, capsys) -> None:
    argv = ["generate", "--prompt", "a red circle", "--seed", "5", "--batch-size", "2"]
    assert main([*argv, *SMALL, "--data-dir", str(data_dir.root)]) == 0
    paths = written(capsys)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["00000-5.png", "00001-6.png"]
    assert all("/outputs/txt2img-images/" in p for p in paths)
    metadata = read_image_metadata(paths[0])
    assert metadata.infotext.startswith(
        "a red circle\nSteps: 2, Sampler: DPM++ 2M, Schedule type: Karras"
    )
    assert "Model: tiny" in metadata.infotext and "Model hash: " in metadata.infotext
    assert metadata.params["seed"] == 5
    grids = list((data_dir.outputs / "txt2img-grids").rglob("grid-0000.png"))
    assert len(grids) == 1 and Image.open(grids[0]).size == (128, 64)


def test_from_image_reproduces_it(data_dir, capsys, tmp_path) -> None:
    root = ["--data-dir", str(data_dir.root)]
    assert main(["generate", "--prompt", "a blue square", "--seed", "9", *SMALL, *root]) == 0
    (first,) = written(capsys)
    again = ["generate", "--from-image", first, "--out", str(tmp_path / "again"), *SMALL[-2:]]
    assert main([*again, *root]) == 0
    (second,) = written(capsys)
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))


def test_bad_requests_explain_themselves(data_dirs, capsys, monkeypatch) -> None:
    monkeypatch.setattr(default_model, "default_model_path", lambda: None)
    root = ["--data-dir", str(data_dirs.root)]
    assert main(["generate", "--prompt", "x", *SMALL, *root]) == 2
    assert "no checkpoints in" in capsys.readouterr().err
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    assert main(["generate", "--sampler", "Eular", *SMALL, *root]) == 2
    assert "unknown sampler 'Eular'; known: DPM++ 2M" in capsys.readouterr().err
    assert main(["generate", "--width", "65", *SMALL[:2], *root]) == 2
    assert "Width must be a multiple of 8" in capsys.readouterr().err


def test_legacy_sampler_names(data_dir, capsys) -> None:
    argv = ["generate", "--prompt", "x", "--sampler", "k_euler_a", *SMALL]
    assert main([*argv, "--data-dir", str(data_dir.root)]) == 0
    assert (
        "Sampler: Euler a, Schedule type: Automatic"
        in read_image_metadata(written(capsys)[0]).infotext
    )
    argv = ["generate", "--prompt", "x", "--sampler", "DPM++ 2M Karras", *SMALL]
    assert main([*argv, "--data-dir", str(data_dir.root)]) == 0
    assert (
        "Sampler: DPM++ 2M, Schedule type: Karras"
        in read_image_metadata(written(capsys)[0]).infotext
    )


def test_hires_flags(data_dir, capsys) -> None:
    argv = ["generate", "--prompt", "x", "--enable-hires", "--hires-steps", "1", *SMALL]
    assert main([*argv, "--data-dir", str(data_dir.root)]) == 0
    (path,) = written(capsys)
    assert Image.open(path).size == (128, 128)
    before = list(data_dir.outputs.rglob("*-before-highres-fix.png"))
    assert before == []  # the setting is off by default
    bad = [*argv, "--hires-upscaler", "4x-Unknown", "--data-dir", str(data_dir.root)]
    assert main(bad) == 2
    assert "Upscaler '4x-Unknown' is not one of: Latent" in capsys.readouterr().err


def test_styles_fold_into_the_prompt_and_unknown_checkpoints_refuse(data_dir, capsys) -> None:
    data_dir.styles.write_text('name,prompt,negative_prompt\nArt,"oil painting of {prompt}",ugly\n')
    argv = ["generate", "--prompt", "a fox", "--styles", "Art", *SMALL]
    assert main([*argv, "--data-dir", str(data_dir.root)]) == 0
    infotext = read_image_metadata(written(capsys)[0]).infotext
    assert infotext.startswith("oil painting of a fox\nNegative prompt: ugly\n")
    refused = ["generate", "--prompt", "x", "--refiner-checkpoint", "nowhere", *SMALL]
    assert main([*refused, "--data-dir", str(data_dir.root)]) in (1, 2)
    assert "no checkpoint matches 'nowhere'" in capsys.readouterr().err


def test_an_independent_reader_agrees(data_dir, capsys) -> None:
    from sd_parsers import ParserManager

    argv = [
        "generate",
        "--prompt",
        "a red fox, (snow:1.2)",
        "--negative-prompt",
        "dog",
        "--seed",
        "77",
        "--cfg-scale",
        "6.5",
        *SMALL,
    ]
    assert main([*argv, "--data-dir", str(data_dir.root)]) == 0
    info = ParserManager().parse(written(capsys)[0])
    assert info.generator.name == "AUTOMATIC1111"
    (sampler,) = info.samplers
    assert sampler.name == "DPM++ 2M" and sampler.model.name == "tiny"
    assert sampler.parameters == {
        "scheduler": "Karras",
        "cfg_scale": "6.5",
        "seed": "77",
        "steps": "2",
    }
    assert [p.value for p in info.prompts] == ["a red fox, (snow:1.2)"]
    assert [p.value for p in info.negative_prompts] == ["dog"]


def test_saving_settings_write_copies_and_text_files(data_dir, capsys) -> None:
    """save_images_before_highres_fix and save_txt from settings.json, as A1111 names them."""
    import json

    data_dir.own.mkdir(parents=True, exist_ok=True)
    settings = {"save_images_before_highres_fix": True, "save_txt": True}
    (data_dir.own / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    argv = ["generate", "--prompt", "x", "--seed", "3", "--enable-hires", "--hires-steps", "1"]
    assert main([*argv, *SMALL, "--data-dir", str(data_dir.root)]) == 0
    (path,) = written(capsys)
    assert path.endswith("00001-3.png")  # the copy went out first: 00000
    (copy,) = data_dir.outputs.rglob("*-before-highres-fix.png")
    assert copy.name == "00000-3-before-highres-fix.png"
    assert Image.open(copy).size == (64, 64) and Image.open(path).size == (128, 128)
    assert read_image_metadata(copy).infotext == read_image_metadata(path).infotext
    assert Path(path).with_suffix(".txt").read_text(encoding="utf-8").startswith("x\nSteps: 2")
