"""The script framework's parts without generating: options, registration, infotext keys,
grid legends, prompt matrix combinations, prompt lines, X/Y/Z plans."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from PIL import Image
from sdtui_plugins.builtin.scripts.prompt_matrix import prompt_combinations
from sdtui_plugins.builtin.scripts.prompts_from_file import parse_line
from sdtui_plugins.builtin.scripts.xyz_axes import AXES
from sdtui_plugins.builtin.scripts.xyz_plot import run_order

from sdtui.engine.grid_annotations import (
    BACKGROUND,
    INACTIVE,
    GridAnnotation,
    draw_grid_annotations,
    draw_prompt_matrix,
)
from sdtui.params.codec import params_from_infotext
from sdtui.params.schema import GenerationParams
from sdtui.plugins import PluginHost
from sdtui.registry import RegistrationError, UnknownNameError
from sdtui.services.script_options import (
    ScriptError,
    ScriptOption,
    describe_script,
    parse_script_args,
    resolve_options,
)
from sdtui.services.scripts import ScriptRequest, find_script, infotext_with


@cache
def host() -> PluginHost:
    return PluginHost(load_entry_points=False)


# -- options ---------------------------------------------------------------------------------


class Demo:
    name = "Demo"
    options = (
        ScriptOption("loops", "Loops", int, 4, minimum=1, maximum=32),
        ScriptOption("strength", "Final denoising strength", float, 0.5, minimum=0, maximum=1),
        ScriptOption("curve", "Denoising curve", str, "Linear", choices=("Aggressive", "Linear")),
        ScriptOption("legend", "Draw legend", bool, True),
    )

    def run(self, context, request) -> None:
        pass


def test_options_by_name_or_label_typed_and_checked() -> None:
    given = parse_script_args(Demo(), ["LOOPS=8", "final denoising strength= 0.25", "Curve=aggr"])
    assert given == {"loops": "8", "strength": " 0.25", "curve": "aggr"}
    with pytest.raises(ScriptError, match="'aggr' is not one of: Aggressive, Linear"):
        resolve_options(Demo(), given)
    given["curve"] = "aggressive"
    values = resolve_options(Demo(), {**given, "draw_legend": "off"})
    assert values == {"loops": 8, "strength": 0.25, "curve": "Aggressive", "legend": False}
    assert resolve_options(Demo()) == {
        "loops": 4,
        "strength": 0.5,
        "curve": "Linear",
        "legend": True,
    }


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("loops=0", "Loops must be between 1 and 32, got 0"),
        ("loops=2.5", "Loops must be a whole number"),
        ("strength=nan", "must be a number"),
        ("legend=maybe", "Draw legend must be true or false"),
        ("speed=3", "Demo has no option 'speed'; its options: loops, strength, curve, legend"),
        ("loops", "--script-arg needs KEY=VALUE"),
    ],
)
def test_bad_options_say_what_is_wrong(pair: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message.replace("(", r"\(")):
        resolve_options(Demo(), parse_script_args(Demo(), [pair]))


def test_describe_lists_every_option() -> None:
    text = describe_script(Demo())
    assert text.startswith("Demo (txt2img, img2img)")
    assert "loops (Loops): int 1..32; default: 4." in text
    assert "curve (Denoising curve): one of: Aggressive, Linear; default: 'Linear'." in text


def test_registration_checks_modes_and_lookup_checks_the_tab() -> None:
    class Wrong(Demo):
        modes = ("txt2img", "extras")

    fresh = PluginHost(builtins=(), load_entry_points=False)
    with pytest.raises(RegistrationError, match="has `modes`"):
        fresh.scripts.add(Wrong(), "test")

    class Img2ImgOnly(Demo):
        name = "Only img2img"
        modes = ("img2img",)

    fresh.scripts.add(Img2ImgOnly(), "test")
    assert find_script(fresh, "only IMG2IMG", "img2img").name == "Only img2img"
    with pytest.raises(ScriptError, match="works in img2img, not txt2img"):
        find_script(fresh, "Only img2img", "txt2img")
    with pytest.raises(UnknownNameError, match="unknown script 'nope'; known: Only img2img"):
        find_script(fresh, "nope", "txt2img")


def test_builtin_scripts_answer_to_a1111_names_and_aliases() -> None:
    for name in ("X/Y/Z plot", "xyz", "x/y/z PLOT", "prompt matrix", "prompts_from_file"):
        assert find_script(host(), name, "txt2img") is not None


# -- infotext --------------------------------------------------------------------------------


def test_script_keys_go_before_version_and_read_back() -> None:
    text = "a cat\nNegative prompt: dog\nSteps: 2, Seed: 5, Size: 64x64, Version: sdtui 1"
    added = infotext_with(text, {"Script": "X/Y/Z plot", "X Values": "1,2", "Z Type": None})
    assert added == (
        "a cat\nNegative prompt: dog\n"
        'Steps: 2, Seed: 5, Size: 64x64, Script: X/Y/Z plot, X Values: "1,2", Version: sdtui 1'
    )
    parsed = params_from_infotext(added)
    assert parsed.unknown == {"Script": "X/Y/Z plot", "X Values": "1,2"}
    assert parsed.values["steps"] == 2 and parsed.values["negative_prompt"] == "dog"
    assert infotext_with("x\nSteps: 1, Seed: 2, CFG scale: 3", {"A": 1}).endswith(
        "CFG scale: 3, A: 1"
    )


# -- grid legends ----------------------------------------------------------------------------


def cells(columns: int, rows: int, size: int = 40) -> tuple[Image.Image, list[Image.Image]]:
    images = [
        Image.new("RGB", (size, size), (10 + 30 * i, 200 - 20 * i, 5 * i))
        for i in range(columns * rows)
    ]
    grid = Image.new("RGB", (columns * size, rows * size))
    for i, image in enumerate(images):
        grid.paste(image, (i % columns * size, i // columns * size))
    return grid, images


def test_legend_layout_puts_each_cell_below_and_right_of_its_labels() -> None:
    grid, images = cells(2, 3)
    hor = [[GridAnnotation("Steps: 1")], [GridAnnotation("Steps: 2")]]
    ver = [[GridAnnotation(f"CFG: {v}")] for v in (3, 5, 7)]
    out = draw_grid_annotations(grid, 40, 40, hor, ver, margin=6)
    pad_left = 40 * 3 // 4  # A1111: three quarters of a cell for the row labels
    pad_top = out.height - 3 * 40 - 2 * 6
    assert out.width == pad_left + 2 * 40 + 6 and pad_top > 0
    for i, image in enumerate(images):
        x = pad_left + (i % 2) * 46
        y = pad_top + (i // 2) * 46
        assert out.crop((x, y, x + 40, y + 40)).tobytes() == image.tobytes()
    assert out.getpixel((pad_left + 42, pad_top + 10)) == BACKGROUND  # the margin
    top = np.asarray(out.crop((pad_left, 0, out.width, pad_top)))
    left = np.asarray(out.crop((0, pad_top, pad_left, pad_top + 40)))
    assert top.min() < 200 and left.min() < 200  # text drawn in both bands


def test_no_row_labels_no_left_band_no_labels_no_top_band() -> None:
    grid, _ = cells(2, 1)
    out = draw_grid_annotations(grid, 40, 40, [[GridAnnotation("a")], [GridAnnotation("b")]], [[]])
    assert out.width == 80 and out.height > 40
    bare = draw_grid_annotations(grid, 40, 40, [[GridAnnotation()]] * 2, [[GridAnnotation()]])
    assert bare.tobytes() == grid.tobytes()


def test_prompt_matrix_legend_greys_inactive_parts() -> None:
    grid, _ = cells(2, 2)
    out = draw_prompt_matrix(grid, 40, 40, ["a cat", "red", "blue"])
    assert out.width == 40 * 3 // 4 + 80
    legend = np.asarray(out.crop((0, 0, out.width, out.height - 80))).reshape(-1, 3)
    colours = {tuple(int(c) for c in pixel) for pixel in legend}
    assert INACTIVE in colours  # the strike-through line of an inactive part


# -- prompt matrix ---------------------------------------------------------------------------


def test_prompt_matrix_combinations_as_a1111() -> None:
    assert prompt_combinations("a cat|red|blue") == [
        "a cat",
        "a cat, red",
        "a cat, blue",
        "a cat, red, blue",
    ]
    assert prompt_combinations("a cat|red|blue", at_start=True, delimiter=" ") == [
        "a cat",
        "red a cat",
        "blue a cat",
        "red blue a cat",
    ]
    assert prompt_combinations("a cat | red, | blue ") == [  # the first part as written
        "a cat ",
        "a cat , red",
        "a cat , blue",
        "a cat , red, blue",
    ]
    assert prompt_combinations("no bars") == ["no bars"]
    assert len(prompt_combinations("a|b|c|d|e")) == 16


# -- prompts from file -----------------------------------------------------------------------


def test_prompt_lines() -> None:
    assert parse_line("a cat, (red:1.2)") == {"prompt": "a cat, (red:1.2)"}
    assert parse_line('--prompt "a dog" --steps 10 --seed 5 --sampler_name "Euler a"') == {
        "prompt": "a dog",
        "steps": 10,
        "seed": 5,
        "sampler_name": "Euler a",
    }
    assert parse_line("--prompt a big dog --negative_prompt ugly, blurry --cfg_scale 6.5") == {
        "prompt": "a big dog",
        "negative_prompt": "ugly, blurry",
        "cfg_scale": 6.5,
    }
    assert parse_line("--tiling true --do_not_save_samples FALSE --n_iter 2") == {
        "tiling": True,
        "do_not_save_samples": False,
        "n_iter": 2,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--prompt x --stepz 3", "unknown tag --stepz; known: sd_model,"),
        ("--steps ten", "--steps needs a whole number, got 'ten'"),
        ("--cfg_scale high", "--cfg_scale needs a number"),
        ("--tiling yes", "--tiling needs true or false"),
        ("--seed", "--seed needs a value"),
        ('--prompt "open', "cannot split it into arguments"),
    ],
)
def test_bad_prompt_lines(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_line(line)


# -- X/Y/Z plans -----------------------------------------------------------------------------


def test_run_order_puts_the_costliest_axis_outermost() -> None:
    by_label = {axis.label: axis for axis in AXES}
    cheap, vae, checkpoint = by_label["Steps"], by_label["VAE"], by_label["Checkpoint name"]
    assert run_order((cheap, cheap, cheap), (2, 2, 1)) == [
        (0, 0, 0),
        (1, 0, 0),
        (0, 1, 0),
        (1, 1, 0),
    ]  # z, then y, then x
    assert run_order((checkpoint, cheap, vae), (2, 2, 2))[:4] == [
        (0, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (0, 1, 1),
    ]  # x outermost, then z, y the innermost loop
    assert run_order((cheap, vae, cheap), (2, 2, 1))[:2] == [(0, 0, 0), (1, 0, 0)]


def xyz_request(dirs, **options) -> ScriptRequest:
    script = find_script(host(), "xyz", "txt2img")
    options.setdefault("x_type", "Nothing")  # the default, Seed, needs values
    params = GenerationParams(prompt="a red cat", steps=2, seed=100, width=64, height=64)
    return ScriptRequest(params, resolve_options(script, options), "txt2img", host(), dirs)


def test_xyz_plan_values_seeds_and_order(data_dirs) -> None:
    xyz = find_script(host(), "xyz", "txt2img")
    request = xyz_request(
        data_dirs,
        x_type="VAE",
        x_values="automatic, None",
        y_type="cfg scale",
        y_values="3-4 (+0.5)",
        vary_seeds_x="true",
        vary_seeds_y="true",
    )
    plan = xyz.plan(request, fix_seeds=True)
    assert plan.values[0] == ["Automatic", "None"] and plan.values[1] == [3.0, 3.5, 4.0]
    assert plan.labels(0) == ["VAE: Automatic", "VAE: None"]
    assert plan.labels(1) == ["CFG Scale: 3.0", "CFG Scale: 3.5", "CFG Scale: 4.0"]
    assert [cell.index for cell in plan.cells[:3]] == [(0, 0, 0), (0, 1, 0), (0, 2, 0)]
    seeds = {cell.index: cell.params.seed for cell in plan.cells}
    assert seeds == {(x, y, 0): 100 + x + 2 * y for x in range(2) for y in range(3)}
    assert {(c.params.vae, c.params.cfg_scale) for c in plan.cells} == {
        (v, c) for v in ("Automatic", "None") for c in (3.0, 3.5, 4.0)
    }


def test_xyz_prompt_sr_order_and_size(data_dirs) -> None:
    xyz = find_script(host(), "xyz", "txt2img")
    request = xyz_request(
        data_dirs,
        x_type="Prompt S/R",
        x_values="red, blue",
        y_type="Prompt order",
        y_values="red, cat",
        z_type="Size",
        z_values="64x128",
    )
    cells = xyz.plan(request, fix_seeds=True).cells
    prompts = [c.params.prompt for c in cells]  # z, y, x: x changes fastest
    assert prompts == ["a red cat", "a blue cat", "a cat red", "a blue cat"]
    assert {(c.params.width, c.params.height) for c in cells} == {(64, 128)}


def test_xyz_face_restore_axis_as_a1111(data_dirs) -> None:
    xyz = find_script(host(), "xyz", "txt2img")
    request = xyz_request(data_dirs, x_type="Face restore", x_values="codeformer, GFPGAN, no, Yes")
    plan = xyz.plan(request, fix_seeds=True)
    assert plan.values[0] == ["CodeFormer", "GFPGAN", "False", "True"]
    assert plan.labels(0)[:3] == [
        "Face restore: CodeFormer",
        "Face restore: GFPGAN",
        "Face restore: False",
    ]
    cells = [(c.params.restore_faces, c.params.face_restoration_model) for c in plan.cells]
    # a name turns it on with that restorer; yes/no only switch it (the setting's restorer)
    assert cells == [(True, "CodeFormer"), (True, "GFPGAN"), (False, None), (True, None)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"x_type": "Face restore", "x_values": "GFPGAN, Gpfgan"},
            "unknown face restorer 'Gpfgan'",
        ),
        ({"y_type": "Sampler", "y_values": "Euler, Eular"}, "Y values: unknown sampler 'Eular'"),
        ({"x_type": "Steps", "x_values": "1, 0"}, "X values: Sampling steps must be between 1"),
        ({"x_type": "Steps", "x_values": ""}, "X values: no Steps values given"),
        ({"x_type": "Steps", "x_values": "a-b"}, "'a-b' is not a whole number"),
        ({"x_type": "Prompt S/R", "x_values": "dog, cat"}, "did not find 'dog'"),
        ({"z_type": "Size", "z_values": "big"}, "Size 'big' is not WIDTHxHEIGHT"),
        ({"x_type": "Checkpoint name", "x_values": "nowhere"}, "no checkpoint matches 'nowhere'"),
        ({"x_type": "VAE", "x_values": "missing.pt"}, "unknown VAE 'missing.pt'"),
        ({"x_type": "Cond. Image Mask Weight", "x_values": "1"}, "is for img2img only"),
        ({"x_type": "Schedule type", "x_values": "karras, Wobbly"}, "unknown schedule type"),
    ],
)
def test_xyz_bad_values_are_refused_up_front(data_dirs, options: dict, message: str) -> None:
    xyz = find_script(host(), "xyz", "txt2img")
    with pytest.raises(ScriptError, match=message):
        xyz.check(xyz_request(data_dirs, **options))
