"""A1111's output folders and file names."""

from __future__ import annotations

import datetime as dt

import pytest

from sdtui.services.outputs import (
    NameContext,
    OutputNaming,
    apply_pattern,
    next_sequence_number,
    sanitize_part,
)

NOW = dt.datetime(2024, 7, 27, 13, 45, 6)


def context(**values) -> NameContext:
    defaults = dict(
        seed=1234567890,
        prompt="A (red) fox, in snow! #2",
        steps=20,
        cfg_scale=7.0,
        sampler="DPM++ 2M",
        schedule="Karras",
        width=512,
        height=768,
        model_name="v1-5",
        model_hash="6ce0161689",
        now=NOW,
    )
    return NameContext(**{**defaults, **values})


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[seed]", "1234567890"),
        ("[seed]-[prompt_words]", "1234567890-A red fox in snow 2"),
        ("[model_name]_[steps]_[cfg]_[width]x[height]", "v1-5_20_7.0_512x768"),
        ("[sampler] [scheduler]", "DPM++ 2M Karras"),
        ("[date]", "2024-07-27"),
        ("[datetime]", "20240727134506"),
        ("[datetime<%Y%m%d_%H>]", "20240727_13"),
        ("[prompt_hash]", "cd1e3e3e"),
        ("x[batch_number]", ""),  # skipped with the text before it (batch size 1)
        ("[unknown_token]-[seed]", "[unknown_token]-1234567890"),
        ("[prompt]", "A_(red)_fox,_in_snow!__2"),
    ],
)
def test_patterns(pattern: str, expected: str) -> None:
    if pattern == "[prompt_hash]":
        import hashlib

        expected = hashlib.sha256(context().prompt.encode()).hexdigest()[:8]
    assert apply_pattern(pattern, context()) == expected


def test_batch_and_generation_numbers() -> None:
    values = context(batch_size=4, batch_index=2, iteration=1, batch_count=3)
    assert apply_pattern("[batch_number]-[generation_number]", values) == "3-7"


def test_sanitize() -> None:
    assert sanitize_part(' a<b>:c"/d\\e|f?g*h\ni.. ', replace_spaces=False) == "a_b__c__d_e_f_g_h_i"
    assert sanitize_part(" a b ") == "_a_b_"
    assert len(sanitize_part("x" * 500)) == 128


def test_sequence_numbers(tmp_path) -> None:
    assert next_sequence_number(tmp_path) == 0
    for name in ("00000-1.png", "00007-2.png", "notes.txt", "grid-0003.png"):
        (tmp_path / name).touch()
    assert next_sequence_number(tmp_path) == 8
    assert next_sequence_number(tmp_path, "grid") == 4
    assert next_sequence_number(tmp_path / "missing") == 0


def test_a1111_layout(data_dirs) -> None:
    naming = OutputNaming()
    folder = naming.folder(data_dirs, "txt2img", context())
    assert folder == data_dirs.outputs / "txt2img-images" / "2024-07-27"
    first = naming.path(folder, context())
    assert first.name == "00000-1234567890.png"
    folder.mkdir(parents=True)
    first.touch()
    assert naming.path(folder, context(seed=5)).name == "00001-5.png"
    grids = naming.folder(data_dirs, "txt2img", context(), grid=True)
    assert grids == data_dirs.outputs / "txt2img-grids" / "2024-07-27"
    assert naming.path(grids, context(), basename="grid", short=True).name == "grid-0000.png"
    extras = naming.folder(data_dirs, "extras", context())
    assert extras == data_dirs.outputs / "extras-images"
    assert naming.path(extras, context(), short=True).name == "00000.png"


def test_without_dirs_and_numbers(tmp_path) -> None:
    naming = OutputNaming(save_to_dirs=False, add_number=False, filename_pattern="[seed]")
    path = naming.path(tmp_path, context())
    assert path.name == "1234567890.png"
    path.touch()
    assert naming.path(tmp_path, context()).name == "1234567890-1.png"
    plain = OutputNaming(save_to_dirs=False)
    (tmp_path / "plain").mkdir()
    assert (
        plain.path(tmp_path / "plain", context(prompt="a cat")).name == "00000-1234567890-a cat.png"
    )


def test_the_saving_settings_reach_the_files(tmp_path) -> None:
    """grid_format, jpeg_quality, enable_pnginfo and save_txt, from settings to files."""
    from PIL import Image

    from sdtui.params.image_metadata import read_image_metadata
    from sdtui.paths import DataDirs
    from sdtui.services.outputs import write_output
    from sdtui.services.settings import Settings

    dirs = DataDirs.resolve(tmp_path / "data")
    dirs.create()
    settings = Settings.load(dirs)
    naming = settings.output_naming()
    assert (naming.grid_extension, naming.jpeg_quality) == ("png", 80)
    assert naming.write_infotext and not naming.save_txt
    settings.values.update(
        samples_format="jpg", grid_format="webp", jpeg_quality=20, enable_pnginfo=False,
        save_txt=True,
    )  # fmt: skip
    naming = settings.output_naming()
    assert naming.path(tmp_path, context(), short=True, grid=True).suffix == ".webp"
    assert naming.path(tmp_path, context()).suffix == ".jpg"
    noise = Image.effect_noise((64, 64), 60).convert("RGB")
    quiet = write_output(noise, tmp_path / "a.jpg", naming, "a cat\nSteps: 2")
    assert read_image_metadata(quiet).infotext is None  # enable_pnginfo off
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "a cat\nSteps: 2\n"
    fine = OutputNaming(jpeg_quality=95)
    loud = write_output(noise, tmp_path / "b.jpg", fine, "a cat\nSteps: 2", {"steps": 2})
    assert read_image_metadata(loud).infotext == "a cat\nSteps: 2"
    assert not (tmp_path / "b.txt").exists()
    assert quiet.stat().st_size < loud.stat().st_size  # quality 20 vs 95
