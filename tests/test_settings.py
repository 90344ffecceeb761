"""sdtui's settings: A1111's keys and defaults, a file that survives bad input and crashes,
and the values feeding generation (the defaults of unset parameters, output names)."""

from __future__ import annotations

import json
import os

import pytest

from sdtui.params.schema import PARAMS, GenerationParams, spec
from sdtui.params.settings_schema import SECTIONS, SETTINGS, convert, in_section
from sdtui.params.validate import SETTING_DEFAULTS, resolve
from sdtui.services.backend import Backend
from sdtui.services.outputs import NameContext, OutputNaming
from sdtui.services.settings import Settings

# A1111's defaults (A1111-FACTS §1.11 and `modules/shared_options.py`), written out by hand.
A1111_DEFAULTS = {
    "samples_save": True,
    "samples_format": "png",
    "samples_filename_pattern": "",
    "save_images_add_number": True,
    "grid_save": True,
    "grid_format": "png",
    "jpeg_quality": 80,
    "enable_pnginfo": True,
    "save_txt": False,
    "outdir_samples": "",
    "outdir_txt2img_samples": "outputs/txt2img-images",
    "outdir_img2img_samples": "outputs/img2img-images",
    "outdir_extras_samples": "outputs/extras-images",
    "outdir_grids": "",
    "outdir_txt2img_grids": "outputs/txt2img-grids",
    "outdir_img2img_grids": "outputs/img2img-grids",
    "outdir_save": "log/images",
    "save_to_dirs": True,
    "directories_filename_pattern": "[date]",
    "sd_model_checkpoint": None,
    "sd_checkpoints_limit": 1,
    "CLIP_stop_at_last_layers": 1,
    "emphasis": "Original",
    "comma_padding_backtrack": 20,
    "tiling": False,
    "sd_vae": "Automatic",
    "eta_ddim": 0.0,
    "eta_ancestral": 1.0,
    "s_churn": 0.0,
    "s_tmin": 0.0,
    "s_tmax": 0.0,
    "s_noise": 1.0,
    "sigma_min": 0.0,
    "sigma_max": 0.0,
    "rho": 0.0,
    "eta_noise_seed_delta": 0,
    "live_previews_enable": True,
    "show_progress_every_n_steps": 10,
    "show_progress_type": "Approx NN",
    "ESRGAN_tile": 192,
    "ESRGAN_tile_overlap": 8,
    "upscaler_for_img2img": None,
    "face_restoration_model": "CodeFormer",
    "code_former_weight": 0.5,
    "face_restoration_unload": False,
    "keyedit_precision_attention": 0.1,
    "keyedit_precision_extra": 0.05,
    "keyedit_delimiters": ".,\\/!?%^*;:{}=`~() ",
}
A1111_RANGES = {
    "CLIP_stop_at_last_layers": (1, 12),
    "sd_checkpoints_limit": (1, 10),
    "jpeg_quality": (1, 100),
    "show_progress_every_n_steps": (-1, 32),
    "comma_padding_backtrack": (0, 74),
}


def file_data(settings: Settings) -> dict:
    return json.loads(settings.path.read_text(encoding="utf-8"))


def folder_files(settings: Settings) -> list[str]:
    return sorted(os.listdir(settings.path.parent))


# -- the schema ----------------------------------------------------------------------------


def test_defaults_and_ranges_are_a1111s() -> None:
    for name, default in A1111_DEFAULTS.items():
        assert SETTINGS[name].a1111, name
        assert SETTINGS[name].default == default, name
        assert type(SETTINGS[name].default) is type(default), name
    for name, (low, high) in A1111_RANGES.items():
        assert (SETTINGS[name].minimum, SETTINGS[name].maximum) == (low, high), name
    # the one deliberate difference: CPU noise makes the same image on every machine
    assert SETTINGS["randn_source"].default == "CPU"
    assert set(SETTINGS["randn_source"].choices) == {"GPU", "CPU", "NV"}


def test_every_setting_a_parameter_reads_is_declared_with_the_same_default() -> None:
    for name, default in SETTING_DEFAULTS.items():
        assert SETTINGS[name].default == default, name
    for param in PARAMS:
        if spec(param).setting is not None:
            assert spec(param).setting in SETTINGS, param


def test_sections_in_order_and_every_setting_in_one() -> None:
    assert SECTIONS[:3] == ("Saving images", "Paths for saving", "Stable Diffusion")
    listed = [setting.name for section in SECTIONS for setting in in_section(section)]
    assert sorted(listed) == sorted(SETTINGS)


def test_defaults_are_valid_values() -> None:
    for setting in SETTINGS.values():
        assert convert(setting, setting.default) == setting.default, setting.name


def test_unused_settings_say_so() -> None:
    import dataclasses

    unused = dataclasses.replace(SETTINGS["ESRGAN_tile"], used=False)
    assert unused.description.endswith("(Not used yet.)")
    assert "Not used yet" not in SETTINGS["ESRGAN_tile"].description
    # every declared setting is read by now (samples_save and grid_save were the last)
    assert [name for name, spec in SETTINGS.items() if not spec.used] == []


def test_graphics_modes_match_the_widget() -> None:
    from sdtui.widgets.graphics import GRAPHICS_MODES

    assert SETTINGS["graphics"].choices == GRAPHICS_MODES


# -- the file ------------------------------------------------------------------------------


def test_no_file_means_defaults_and_writes_nothing(data_dirs) -> None:
    settings = Settings.load(data_dirs)
    assert settings.path == data_dirs.root / "sdtui" / "settings.json"
    assert settings["CLIP_stop_at_last_layers"] == 1 and settings.warnings == []
    assert not settings.path.exists()


def test_round_trip(data_dirs) -> None:
    settings = Settings.load(data_dirs)
    changes = {"CLIP_stop_at_last_layers": "2", "samples_format": "jpg", "s_noise": 0.5}
    assert settings.update(changes) == []
    data = file_data(settings)
    assert data["CLIP_stop_at_last_layers"] == 2 and data["samples_format"] == "jpg"
    assert data["s_noise"] == 0.5 and data["sd_model_checkpoint"] is None
    again = Settings.load(data_dirs)
    assert again.values == settings.values and again.warnings == []
    assert folder_files(settings) == ["settings.json"]  # no temporary file left


def test_invalid_values_are_rejected_with_messages_and_nothing_is_written(data_dirs) -> None:
    settings = Settings.load(data_dirs)
    problems = settings.update(
        {
            "eta_ddim": 0.5,  # valid, but not applied either
            "CLIP_stop_at_last_layers": 13,
            "samples_format": "bmp",
            "jpeg_quality": "high",
            "save_txt": "yes",
            "no_such_setting": 1,
        }
    )
    assert problems == [
        "Clip skip (CLIP_stop_at_last_layers) must be between 1 and 12, got 13",
        "File format for images (samples_format) 'bmp' is not one of: png, jpg, webp",
        "Quality for saved jpeg and webp images (jpeg_quality) must be a whole number, got 'high'",
        "Create a text file with infotext next to every image (save_txt) must be true or "
        "false, got 'yes'",
        "unknown setting 'no_such_setting'",
    ]
    assert not settings.path.exists()
    assert settings["eta_ddim"] == 0.0 and settings["CLIP_stop_at_last_layers"] == 1
    assert settings.update({"CLIP_stop_at_last_layers": 2}) == []
    before = settings.path.read_bytes()
    assert settings.update({"CLIP_stop_at_last_layers": 2.5, "s_noise": float("nan")})
    assert settings.update({"sd_vae": None}) == ["SD VAE (sd_vae) needs a value"]
    assert settings.path.read_bytes() == before


def test_a_failed_write_leaves_the_old_file_whole(data_dirs, monkeypatch) -> None:
    settings = Settings.load(data_dirs)
    assert settings.update({"CLIP_stop_at_last_layers": 2}) == []
    before = settings.path.read_bytes()

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    for target in ("fsync", "replace"):
        with monkeypatch.context() as patch:
            patch.setattr(os, target, fail)
            problems = settings.update({"CLIP_stop_at_last_layers": 3})
        assert len(problems) == 1 and "No space left on device" in problems[0], target
        assert settings.path.read_bytes() == before
        assert folder_files(settings) == ["settings.json"]
        assert settings["CLIP_stop_at_last_layers"] == 2


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\xff\xfe garbage"])
def test_a_file_that_does_not_parse_is_backed_up_and_replaced(data_dirs, text) -> None:
    path = data_dirs.own / "settings.json"
    raw = text.encode("latin-1")
    path.write_bytes(raw)
    settings = Settings.load(data_dirs)
    assert settings.values == {name: s.default for name, s in SETTINGS.items()}
    (warning,) = settings.warnings
    backups = [name for name in folder_files(settings) if name.startswith("settings.json.bad-")]
    assert len(backups) == 1 and backups[0] in warning and "does not parse" in warning
    assert (data_dirs.own / backups[0]).read_bytes() == raw
    assert file_data(settings)["CLIP_stop_at_last_layers"] == 1
    assert Settings.load(data_dirs).warnings == []


def test_bad_values_in_the_file_become_defaults_with_warnings(data_dirs) -> None:
    path = data_dirs.own / "settings.json"
    values = {"CLIP_stop_at_last_layers": "two", "jpeg_quality": 500, "eta_ddim": 1, "rho": 7}
    path.write_text(json.dumps(values))
    settings = Settings.load(data_dirs)
    assert settings["CLIP_stop_at_last_layers"] == 1 and settings["jpeg_quality"] == 80
    assert settings["eta_ddim"] == 1.0 and isinstance(settings["eta_ddim"], float)
    assert settings["rho"] == 7.0
    assert len(settings.warnings) == 2
    assert "CLIP_stop_at_last_layers" in settings.warnings[0]
    assert "between 1 and 100, got 500" in settings.warnings[1]


def test_unknown_keys_are_kept(data_dirs) -> None:
    path = data_dirs.own / "settings.json"
    unknown = {"some_extension_option": [1, {"a": "b"}], "sd_unet": "Automatic"}
    path.write_text(json.dumps({**unknown, "CLIP_stop_at_last_layers": 3}))
    settings = Settings.load(data_dirs)
    assert settings.warnings == []
    assert settings.update({"eta_ddim": 0.25}) == []
    data = file_data(settings)
    assert {key: data[key] for key in unknown} == unknown
    assert data["CLIP_stop_at_last_layers"] == 3 and data["eta_ddim"] == 0.25


def test_a1111s_config_json_is_never_read_or_written(data_dirs) -> None:
    config = data_dirs.root / "config.json"
    config.write_text(json.dumps({"CLIP_stop_at_last_layers": 5, "samples_format": "jpg"}))
    before, stamp = config.read_bytes(), config.stat().st_mtime_ns
    settings = Settings.load(data_dirs)
    assert settings["CLIP_stop_at_last_layers"] == 1
    assert settings.update({"CLIP_stop_at_last_layers": 2}) == []
    settings.path.write_text("{broken")
    Settings.load(data_dirs)
    Backend(data_dirs).apply_settings(settings)
    assert config.read_bytes() == before and config.stat().st_mtime_ns == stamp
    assert sorted(os.listdir(data_dirs.root)).count("config.json") == 1


# -- what the settings feed ----------------------------------------------------------------


def test_generation_defaults_feed_resolve(data_dirs) -> None:
    settings = Settings.load(data_dirs)
    assert settings.generation_defaults() == SETTING_DEFAULTS
    assert settings.update({"CLIP_stop_at_last_layers": 2, "randn_source": "NV"}) == []
    params = resolve(GenerationParams(seed=1), settings.generation_defaults())
    assert (params.clip_skip, params.rng, params.eta) == (2, "NV", 1.0)
    assert resolve(GenerationParams(clip_skip=3), settings.generation_defaults()).clip_skip == 3


def test_output_naming_follows_the_settings(data_dirs) -> None:
    context = NameContext(seed=5, prompt="a cat")
    default = Settings.load(data_dirs).output_naming("txt2img")
    for grid in (False, True):
        expected = OutputNaming().folder(data_dirs, "txt2img", context, grid=grid)
        assert default.folder(data_dirs, "txt2img", context, grid=grid) == expected
    settings = Settings.load(data_dirs)
    changes = {
        "outdir_txt2img_samples": "elsewhere/images",
        "save_to_dirs": False,
        "samples_filename_pattern": "[seed]-[prompt_words]",
        "samples_format": "webp",
        "outdir_grids": "/tmp/all-grids",
    }
    assert settings.update(changes) == []
    naming = settings.output_naming("txt2img")
    folder = naming.folder(data_dirs, "txt2img", context)
    assert folder == data_dirs.root / "elsewhere" / "images"
    assert naming.path(folder, context).name == "00000-5-a cat.webp"
    assert str(naming.folder(data_dirs, "txt2img", context, grid=True)) == "/tmp/all-grids"
    assert settings.update({"outdir_samples": "one"}) == []
    one = data_dirs.root / "one"
    assert settings.output_naming("img2img").folder(data_dirs, "img2img", context) == one


def test_the_backend_reads_and_applies_settings(data_dirs) -> None:
    (data_dirs.own / "settings.json").write_text(json.dumps({"CLIP_stop_at_last_layers": 2}))
    backend = Backend(data_dirs, device="cpu")
    assert backend.settings["CLIP_stop_at_last_layers"] == 2
    assert Backend(data_dirs, settings={"eta_ancestral": 0.5}).settings["eta_ancestral"] == 0.5
    settings = Settings.load(data_dirs)
    assert settings.update({"CLIP_stop_at_last_layers": 4}) == []
    backend.apply_settings(settings)
    assert backend.settings["CLIP_stop_at_last_layers"] == 4
    assert backend.user_settings is settings


def test_generate_cli_uses_the_settings(data_dirs, capsys) -> None:
    from sdtui.cli import main
    from sdtui.params.image_metadata import read_image_metadata
    from tests.tiny_models import write_tiny_checkpoint

    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    values = {
        "CLIP_stop_at_last_layers": 2,
        "samples_format": "jpg",
        "samples_filename_pattern": "[seed]-steps[steps]",
    }
    (data_dirs.own / "settings.json").write_text(json.dumps(values))
    argv = ["generate", "--prompt", "x", "--seed", "5", "--steps", "1", "--width", "64"]
    argv += ["--height", "64", "--device", "cpu", "--data-dir", str(data_dirs.root)]
    assert main(argv) == 0
    (path,) = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert path.endswith("/00000-5-steps1.jpg")
    assert "Clip skip: 2" in read_image_metadata(path).infotext
