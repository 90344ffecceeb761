"""`sdtui generate --script ...` end to end, and its errors before anything loads."""

from __future__ import annotations

import pytest
from PIL import Image

from sdtui.cli import main
from sdtui.params.image_metadata import read_image_metadata
from tests.tiny_models import write_tiny_checkpoint

SMALL = ["--steps", "1", "--width", "64", "--height", "64", "--device", "cpu"]


@pytest.fixture
def root(data_dirs) -> list[str]:
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    return ["--data-dir", str(data_dirs.root)]


def written(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


def names_and_samplers(paths: list[str]) -> list[tuple[str, str]]:
    infotexts = [read_image_metadata(path).infotext for path in paths]
    samplers = [text.split("Sampler: ")[1].split(",")[0] for text in infotexts]
    return list(zip([path.rsplit("/", 1)[-1] for path in paths], samplers, strict=True))


def test_generate_with_an_xyz_plot(root, data_dirs, capsys) -> None:
    argv = ["generate", "--prompt", "a cat", "--seed", "3", *SMALL, *root, "--script", "x/y/z PLOT"]
    argv += ["--script-arg", "X type=Sampler", "--script-arg", "x_values=euler, Euler a"]
    assert main(argv) == 0
    paths = written(capsys)
    assert names_and_samplers(paths) == [
        ("00000-3.png", "Euler"),
        ("00001-3.png", "Euler a"),
        ("xyz_grid-0000.png", "Euler"),  # the grid carries the first cell's infotext
    ]
    grid = Image.open(paths[2])
    assert grid.width == 2 * 64 and grid.height > 64  # labels on top, none on the left

    # A1111's paste: the grid's infotext names the script and its axes, so starting from
    # the grid runs the plot again (its options changeable); --script none runs no script
    again = ["generate", "--from-image", paths[2], "--device", "cpu", *root]
    assert main([*again, "--script-arg", "x_values=Euler a, euler"]) == 0
    rerun = written(capsys)
    assert names_and_samplers(rerun) == [
        ("00002-3.png", "Euler a"),
        ("00003-3.png", "Euler"),
        ("xyz_grid-0001.png", "Euler a"),
    ]
    assert "Script: X/Y/Z plot, X Type: Sampler" in read_image_metadata(rerun[2]).infotext
    assert main([*again, "--script", "none"]) == 0
    (single,) = written(capsys)
    assert single.endswith("00004-3.png")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--script", "Loopy"], "unknown script 'Loopy'; known: Prompt matrix,"),
        (["--script", "xyz", "--script-arg", "w_type=Steps"], "X/Y/Z plot has no option 'w_type'"),
        (["--script", "xyz", "--script-arg", "margin_size=900"], "between 0 and 500"),
        (["--script-arg", "x_type=Steps"], "--script-arg needs --script NAME"),
        (
            ["--script", "xyz", "--script-arg", "x_type=Steps", "--script-arg", "x_values=2, 0"],
            "X values: Sampling steps must be between 1 and 150, got 0",
        ),
        (
            ["--script", "Prompts from file", "--script-arg", "prompt_txt=--sampler_name Eular"],
            "line 1 ('--sampler_name Eular'): unknown sampler 'Eular'",
        ),
    ],
)
def test_script_errors_exit_2_before_anything_is_written(root, data_dirs, capsys, args, message):
    assert main(["generate", "--prompt", "a cat", *SMALL, *root, *args]) == 2
    assert message in capsys.readouterr().err
    assert list(data_dirs.outputs.rglob("*.png")) == []


def test_help_script_lists_options_and_scripts(root, capsys) -> None:
    assert main(["generate", "--script", "prompt matrix", "--help-script", *root]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Prompt matrix (txt2img, img2img)")
    assert "prompt_type (Select prompt): one of: positive, negative; default: 'positive'." in out
    assert main(["generate", "--help-script", *root]) == 0
    assert "X/Y/Z plot (also: xyz, xyz_grid" in capsys.readouterr().out


def test_img2img_takes_scripts_too(root, data_dirs, capsys, tmp_path) -> None:
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (20, 120, 200)).save(init)
    argv = ["img2img", "--init", str(init), "--prompt", "a|b", "--seed", "4", *SMALL, *root]
    assert main([*argv, "--script", "prompt matrix"]) == 0
    paths = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(paths) == 3 and "img2img-grids" in paths[-1]
    assert [read_image_metadata(p).infotext.split("\n")[0] for p in paths] == ["a", "a, b", "a"]


def test_an_img2img_batch_runs_the_script_on_each_input(root, capsys, tmp_path) -> None:
    """A1111's process_batch runs the chosen script once per input (its images named after
    the input in the output folder; its grids in the img2img grids folder)."""
    for index, name in enumerate(("a.png", "b.png")):
        Image.new("RGB", (64, 64), (20 + 90 * index, 120, 200)).save(tmp_path / name)
    out = tmp_path / "out"
    argv = ["img2img", "--batch-input-dir", str(tmp_path), "--batch-output-dir", str(out)]
    argv += ["--prompt", "a|b", "--seed", "4", *SMALL, *root, "--script", "prompt matrix"]
    assert main(argv) == 0
    paths = written(capsys)
    assert [path.rsplit("/", 1)[-1] for path in paths if "/out/" in path] == [
        "00000-a.png", "00001-a.png", "00002-b.png", "00003-b.png",
    ]  # fmt: skip
    assert sum("img2img-grids" in path for path in paths) == 2
    assert [read_image_metadata(p).infotext.split("\n")[0] for p in paths[:2]] == ["a", "a, b"]


def test_img2img_help_script_needs_no_init_but_a_run_does(root, data_dirs, capsys) -> None:
    assert main(["img2img", "--script", "loopback", "--help-script", *root]) == 0
    assert "loops (Loops)" in capsys.readouterr().out
    assert main(["img2img", "--prompt", "x", *root]) == 2
    assert "give --init IMAGE (or --batch-input-dir DIR)" in capsys.readouterr().err
    assert not data_dirs.outputs.exists() or not any(data_dirs.outputs.rglob("*.png"))
