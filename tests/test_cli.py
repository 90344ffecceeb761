"""The `sdtui` command line: options, built-in commands, and staying light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sdtui.cli import build_parser, main
from sdtui.cli import install as install_module
from sdtui.cli.options import data_dirs_from
from sdtui.models import default_model
from sdtui.plugins import get_host


@pytest.mark.parametrize(
    "argv",
    [["--data-dir", "/x/a1111", "models"], ["models", "--data-dir", "/x/a1111"]],
)
def test_common_options_work_before_and_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser(get_host()).parse_args(argv)
    dirs = data_dirs_from(args)
    assert dirs.root == Path("/x/a1111")
    assert dirs.checkpoints == Path("/x/a1111/models/Stable-diffusion")


def test_per_kind_overrides_like_a1111(tmp_path: Path) -> None:
    argv = ["models", "--data-dir", str(tmp_path), "--ckpt-dir", str(tmp_path / "ckpts")]
    argv += ["--lora-dir", str(tmp_path / "loras"), "--embeddings-dir", str(tmp_path / "ti")]
    dirs = data_dirs_from(build_parser(get_host()).parse_args(argv))
    assert dirs.checkpoints == tmp_path / "ckpts"
    assert dirs.lora == tmp_path / "loras" and dirs.embeddings == tmp_path / "ti"
    assert dirs.vae == tmp_path / "models" / "VAE"


def test_plugins_json_does_not_import_torch() -> None:
    code = (
        "import sys, io, contextlib; from sdtui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['plugins', '--json', '--all'])\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_command_is_an_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


def test_start_reports_the_data_dir_and_what_is_missing(data_dirs, capsys) -> None:
    assert main(["start", "--check", "--no-device", "--data-dir", str(data_dirs.root)]) == 0
    out = capsys.readouterr().out
    assert f"data dir: {data_dirs.root}" in out
    assert "none of yours" in out and "embedded default model" in out
    assert "put Stable Diffusion checkpoints" in out
    assert "not available yet" in out


def test_start_without_the_embedded_model_says_where_checkpoints_go(
    data_dirs, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(default_model, "default_model_path", lambda: None)
    assert main(["start", "--check", "--no-device", "--data-dir", str(data_dirs.root)]) == 0
    out = capsys.readouterr().out
    assert f"checkpoints ({data_dirs.checkpoints}): 0" in out
    assert "put Stable Diffusion checkpoints" in out and "embedded" not in out


def test_install_keeps_the_installed_torch(monkeypatch) -> None:
    seen: dict[str, object] = {}

    def fake_pip(arguments: list[str]) -> int:
        constraints = Path(arguments[arguments.index("-c") + 1])
        seen["arguments"] = arguments
        seen["constraints"] = constraints.read_text()
        return 0

    monkeypatch.setattr(install_module, "run_pip", fake_pip)
    assert main(["install", "sdtui-something", "-U"]) == 0
    assert seen["arguments"][0] == "install" and seen["arguments"][-1] == "sdtui-something"
    assert "--upgrade" in seen["arguments"]
    from importlib.metadata import version

    assert f"torch=={version('torch')}\ntorchvision=={version('torchvision')}" in str(
        seen["constraints"]
    )


def test_install_without_a_name_explains(capsys) -> None:
    assert main(["install"]) == 2
    assert "name at least one package" in capsys.readouterr().err


def test_uninstall_runs_pip(monkeypatch) -> None:
    calls: list[list[str]] = []
    from sdtui.cli import uninstall as uninstall_module

    monkeypatch.setattr(uninstall_module, "run_pip", lambda arguments: calls.append(arguments) or 0)
    assert main(["uninstall", "-y", "sdtui-something"]) == 0
    assert calls == [["uninstall", "-y", "sdtui-something"]]


def test_installed_package_names_are_our_own(tmp_path: Path) -> None:
    """Built-ins install as `sdtui_plugins`, config as `sdtui_config`: no generic names."""
    code = (
        "import importlib.util as u; "
        "print([n for n in ('plugins', 'config') if u.find_spec(n)], "
        "bool(u.find_spec('sdtui_plugins.builtin')), bool(u.find_spec('sdtui_config')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "[] True True"


def test_pnginfo_prints_and_parses(tmp_path, capsys) -> None:
    from PIL import Image

    from sdtui.params.image_metadata import save_image

    text = "a cat\nNegative prompt: dog\nSteps: 7, Sampler: Euler a, CFG scale: 5, Seed: 9"
    path = save_image(Image.new("RGB", (8, 8)), tmp_path / "x.png", infotext=text)
    assert main(["pnginfo", str(path)]) == 0
    assert capsys.readouterr().out.strip() == text
    assert main(["pnginfo", str(path), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["parameters"]["steps"] == 7 and report["parameters"]["negative_prompt"] == "dog"
    assert main(["pnginfo", str(tmp_path / "missing.png")]) == 1
    assert "missing.png" in capsys.readouterr().err


def test_an_a1111_install_is_used_as_it_is(tmp_path, capsys) -> None:
    from tests.tiny_models import write_tiny_checkpoint

    root = tmp_path / "stable-diffusion-webui"
    (root / "models" / "Stable-diffusion").mkdir(parents=True)
    write_tiny_checkpoint(root / "models" / "Stable-diffusion" / "tiny.safetensors", "sd1")
    own_files = {
        "config.json": '{"sd_model_checkpoint": "tiny.safetensors"}',
        "ui-config.json": "{}",
        "cache.json": '{"hashes": {}}',
        "params.txt": "a cat\nSteps: 20, Seed: 1, CFG scale: 7",
        "styles.csv": "name,prompt,negative_prompt\n",
    }
    for name, text in own_files.items():
        (root / name).write_text(text)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert main(["models", "--hash", "--data-dir", str(root)]) == 0
    assert "tiny.safetensors [" in capsys.readouterr().out
    assert main(["start", "--check", "--no-device", "--data-dir", str(root)]) == 0
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before  # nothing of A1111's was rewritten
    assert {p.relative_to(root).parts[0] for p in set(after) - set(before)} == {"sdtui"}
