"""The Script dropdown of the txt2img and img2img tabs: choosing a script shows its options,
Generate runs it (X/Y/Z plot on a tiny model: two images and a grid), a bad value is a
message and queues nothing, and each tab lists only the scripts of its mode."""

from __future__ import annotations

import pytest
from textual.widgets import Checkbox, Collapsible, Input, Select, TextArea
from textual.widgets._select import InvalidSelectValueError

from sdtui import hookimpl
from sdtui.params.image_metadata import read_image_metadata
from sdtui.plugins import PluginHost
from sdtui.runtime.job_events import Queued
from sdtui.screens.img2img import Img2ImgScreen
from sdtui.screens.txt2img import Txt2ImgScreen
from sdtui.services.script_options import ScriptError, ScriptOption
from sdtui.widgets.script_form import ScriptPanel
from tests.tiny_models import write_tiny_checkpoint
from tests.tui_helpers import make_app, wait_ready, wait_until

SIZE = (160, 50)


@pytest.fixture
def tiny_dirs(data_dirs):
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    return data_dirs


class OnlyTxt2Img:
    """A made-up script with one option of each kind."""

    name = "Only txt2img"
    modes = ("txt2img",)
    options = (
        ScriptOption("count", "Count", int, 3, minimum=1, maximum=9, help="how many"),
        ScriptOption("weight", "Weight", float, 0.5),
        ScriptOption("flip", "Flip", bool, False),
        ScriptOption("curve", "Curve", str, "Linear", choices=("Lazy", "Linear")),
        ScriptOption("lines", "Lines", str, "", multiline=True),
        ScriptOption("note", "Note", str, "hi"),
    )

    def run(self, context, request) -> None:  # never generated with here
        raise AssertionError("not run in these tests")


class OnlyImg2Img(OnlyTxt2Img):
    name = "Only img2img"
    modes = ("img2img",)


class Plugin:
    @hookimpl
    def register_scripts(self, register) -> None:
        register(OnlyTxt2Img())
        register(OnlyImg2Img())


def host_with_made_up_scripts() -> PluginHost:
    host = PluginHost(load_entry_points=False)
    host.add_plugin(Plugin(), name="made-up-scripts")
    return host


def made_up_app(dirs):
    """The app with the made-up scripts registered, without starting the runtime: the
    plugins are "loaded" and the tabs told so, as `Backend.start` would."""
    app = make_app(dirs)
    app.start_backend = False
    return app


async def load_plugins(pilot) -> None:
    backend = pilot.app.backend
    backend.host = host_with_made_up_scripts()
    backend._update(phase="ready", message="ready")
    await pilot.pause()


def control(screen, name: str):
    return screen.query_one(f"#script-opt-{name.replace('_', '-')}")


async def choose(pilot, name: str) -> ScriptPanel:
    """Open the Script group and pick `name`, as a user would in the select."""
    screen = pilot.app.screen
    panel = screen.script_panel
    await wait_until(pilot, lambda: panel.select is not None and panel.select.is_mounted)
    await wait_until(pilot, lambda: name == "None" or name in panel.scripts)
    screen.query_one("#script-group", Collapsible).collapsed = False
    panel.select.value = name
    await wait_until(
        pilot, lambda: panel.chosen == name and all(c.is_mounted for c in panel.controls.values())
    )
    return panel


def queued_jobs(app) -> list:
    events: list = []
    app.backend.add_listener(lambda e: events.append(e) if isinstance(e, Queued) else None)
    return events


async def test_xyz_plot_runs_from_the_txt2img_tab(tiny_dirs) -> None:
    app = make_app(tiny_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = app.screen
        assert isinstance(screen, Txt2ImgScreen)
        screen.prompt_box("prompt").text = "a red circle"
        for name, value in (("steps", "3"), ("width", "64"), ("height", "64"), ("seed", "7")):
            screen.query_one(f"#param-{name}", Input).value = value
        panel = await choose(pilot, "X/Y/Z plot")
        assert screen.query_one("#script-group", Collapsible).title == "Script: X/Y/Z plot"
        control(screen, "x_type").value = "Steps"
        control(screen, "x_values").value = "1,2"
        await pilot.pause()
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None and len(screen.results) >= 3)
        images = sorted((tiny_dirs.outputs / "txt2img-images").rglob("*.png"))
        grids = sorted((tiny_dirs.outputs / "txt2img-grids").rglob("*.png"))
        assert len(images) == 2 and len(grids) == 1
        steps = sorted(read_image_metadata(p).infotext.split("Steps: ")[1][0] for p in images)
        assert steps == ["1", "2"]  # the X axis, not the form's 3
        assert all("Seed: 7," in read_image_metadata(p).infotext for p in images)
        assert "Script: X/Y/Z plot" in read_image_metadata(grids[0]).infotext
        assert [r.grid for r in screen.results].count(True) == 1
        assert sorted(r.path.name for r in screen.results) == sorted(
            p.name for p in [*images, *grids]
        )
        # kept when leaving the tab and coming back, and across switching scripts
        await pilot.press("alt+2")
        await wait_until(pilot, lambda: isinstance(app.screen, Img2ImgScreen))
        await pilot.press("alt+1")
        await wait_until(pilot, lambda: app.screen is screen)
        assert panel.chosen == "X/Y/Z plot" and panel.select.value == "X/Y/Z plot"
        assert control(screen, "x_values").value == "1,2"
        await choose(pilot, "Prompt matrix")
        assert not screen.query("#script-opt-x-values")
        await choose(pilot, "X/Y/Z plot")
        assert control(screen, "x_values").value == "1,2"
        assert control(screen, "x_type").value == "Steps"


async def test_a_bad_script_value_is_a_message_and_queues_nothing(tiny_dirs) -> None:
    app = make_app(tiny_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        events = queued_jobs(app)
        screen = app.screen
        await choose(pilot, "X/Y/Z plot")
        control(screen, "x_type").value = "Steps"
        control(screen, "x_values").value = "1,a"
        await pilot.press("f5")
        await pilot.pause()
        control(screen, "x_values").value = "1,2"
        control(screen, "margin_size").value = "600"
        await pilot.press("f5")
        await pilot.pause()
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert len(errors) == 2, errors
        assert "X values" in errors[0] and "'a'" in errors[0]
        assert "Grid margins (px)" in errors[1] and "500" in errors[1]
        assert screen.job_id is None and events == []
        assert not list(tiny_dirs.outputs.rglob("*.png"))


async def test_each_tab_lists_the_scripts_of_its_mode(data_dirs) -> None:
    app = made_up_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await load_plugins(pilot)
        txt2img = app.screen
        panel = await choose(pilot, "Only txt2img")
        with pytest.raises(InvalidSelectValueError):
            panel.select.value = "Only img2img"
        assert "X/Y/Z plot" in panel.scripts  # the built-ins are there too
        await pilot.press("alt+2")
        await wait_until(pilot, lambda: isinstance(app.screen, Img2ImgScreen))
        img2img_panel = await choose(pilot, "Only img2img")
        assert img2img_panel is not panel
        with pytest.raises(InvalidSelectValueError):
            img2img_panel.select.value = "Only txt2img"
        await pilot.press("alt+1")
        await wait_until(pilot, lambda: app.screen is txt2img)
        assert panel.chosen == "Only txt2img"


async def test_options_become_controls_and_checked_values(data_dirs) -> None:
    app = made_up_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await load_plugins(pilot)
        screen = app.screen
        panel = await choose(pilot, "Only txt2img")
        kinds = {name: type(widget) for name, widget in panel.controls.items()}
        assert kinds == {
            "count": Input,
            "weight": Input,
            "flip": Checkbox,
            "curve": Select,
            "lines": TextArea,
            "note": Input,
        }
        assert panel.values() == {
            "count": 3,
            "weight": 0.5,
            "flip": False,
            "curve": "Linear",
            "lines": "",
            "note": "hi",
        }
        control(screen, "count").value = "9"
        control(screen, "weight").value = "1.25"
        control(screen, "flip").value = True
        control(screen, "curve").value = "Lazy"
        control(screen, "lines").text = "a\nb"
        assert panel.values() == {
            "count": 9,
            "weight": 1.25,
            "flip": True,
            "curve": "Lazy",
            "lines": "a\nb",
            "note": "hi",
        }
        control(screen, "count").value = "10"
        with pytest.raises(ScriptError, match="Count must be between 1 and 9"):
            panel.values()
        # "None": no options, no script
        await choose(pilot, "None")
        assert panel.script is None and panel.values() == {} and not panel.controls
        assert screen.query_one("#script-group", Collapsible).title == "Script"
        # the command palette's "Script" opens the group at its select
        screen.query_one("#script-group", Collapsible).collapsed = True
        await screen.run_action("script")
        await pilot.pause()
        assert app.focused is panel.select
        assert not screen.query_one("#script-group", Collapsible).collapsed


def batch_summary(app) -> list[str]:
    return [n.message for n in app._notifications if n.title == "img2img batch"]


@pytest.mark.slow  # ~15 s; the txt2img run above covers the same path
async def test_xyz_plot_runs_from_the_img2img_tab_and_on_each_batch_input(tiny_dirs) -> None:
    from sdtui.widgets.file_browser import PathInput
    from tests.test_tui_img2img import open_img2img, open_path, write_png

    write_png(tiny_dirs.outputs / "start.png", (64, 64))
    write_png(tiny_dirs.outputs / "batch-in" / "a.png", (64, 64))
    app = make_app(tiny_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = await open_img2img(pilot)
        await open_path(pilot, screen, "start.png")
        for name, value in (("steps", "2"), ("width", "64"), ("height", "64"), ("seed", "3")):
            screen.query_one(f"#param-{name}", Input).value = value
        await choose(pilot, "X/Y/Z plot")
        control(screen, "x_type").value = "Denoising"
        control(screen, "x_values").value = "0.5, 1"
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None and len(screen.results) >= 3)
        images = sorted((tiny_dirs.outputs / "img2img-images").rglob("*.png"))
        grids = sorted((tiny_dirs.outputs / "img2img-grids").rglob("*.png"))
        assert len(images) == 2 and len(grids) == 1
        strengths = sorted(
            read_image_metadata(p).infotext.split("Denoising strength: ")[1].split(",")[0]
            for p in images
        )
        assert strengths == ["0.5", "1"]
        # Batch: the plot runs on each input (A1111's process_batch)
        screen.image_input.mode = "batch"
        await pilot.pause()
        screen.query_one("#batch-input-dir", PathInput).value = "batch-in"
        screen.query_one("#batch-output-dir", PathInput).value = "batch-out"
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None and batch_summary(app))
        assert batch_summary(app) == ["1 done (3 images written)"]
        written = sorted(path.name for path in (tiny_dirs.outputs / "batch-out").iterdir())
        assert written == ["00000-a.png", "00001-a.png"]
        assert len(sorted((tiny_dirs.outputs / "img2img-grids").rglob("*.png"))) == 2
        assert [r.grid for r in screen.results].count(True) == 1


GRID_INFOTEXT = (
    "a cat\nSteps: 1, Sampler: Euler, Seed: 7, Size: 64x64, Script: X/Y/Z plot, "
    'X Type: Steps, X Values: "1-2", Y Type: CFG Scale, Y Values: "3,4.5", '
    'Fixed X Values: "1, 2", Version: v1.10.1'
)


async def test_a_pasted_infotext_selects_its_script_with_its_options(data_dirs) -> None:
    """A1111's paste: an X/Y/Z grid's infotext sets the Script select and its axes."""
    from sdtui.screens.pnginfo_fields import PASTED_SCRIPT

    app = made_up_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await load_plugins(pilot)
        screen = app.screen
        panel = await choose(pilot, "Only txt2img")
        control(screen, "count").value = "7"
        screen.prompt_box("prompt").text = GRID_INFOTEXT
        await screen.run_action("read_params")
        await wait_until(pilot, lambda: panel.chosen == "X/Y/Z plot" and panel.controls)
        await wait_until(pilot, lambda: all(c.is_mounted for c in panel.controls.values()))
        await wait_until(pilot, lambda: panel.select.value == "X/Y/Z plot")  # a posted change
        values = panel.values()
        assert (values["x_type"], values["x_values"]) == ("Steps", "1-2")
        assert (values["y_type"], values["y_values"]) == ("CFG Scale", "3,4.5")
        assert values["z_type"] == "Nothing" and panel.select.value == "X/Y/Z plot"
        assert screen.prompt_box("prompt").text == "a cat"
        assert panel.kept["Only txt2img"]["count"] == "7"  # the left script keeps its values
        # from PNG Info's "send to": the values carry the script's keys
        screen.fill({"steps": 3, PASTED_SCRIPT: {"Script": "only TXT2IMG", "Count": "4"}})
        await wait_until(pilot, lambda: panel.chosen == "Only txt2img" and panel.controls)
        await wait_until(pilot, lambda: all(c.is_mounted for c in panel.controls.values()))
        assert panel.values()["count"] == 4 and control(screen, "count").value == "4"
        # a script of the other tab is refused with a message; the choice stays
        screen.fill({PASTED_SCRIPT: {"Script": "Only img2img"}})
        await pilot.pause()
        assert panel.chosen == "Only txt2img"


def test_png_info_sends_the_script_keys_along() -> None:
    from sdtui.params.image_metadata import ImageMetadata
    from sdtui.screens.pnginfo_fields import PASTED_SCRIPT, parameters_to_send

    values = parameters_to_send(ImageMetadata(infotext=GRID_INFOTEXT))
    assert values["steps"] == 1
    assert values[PASTED_SCRIPT]["Script"] == "X/Y/Z plot"
    assert values[PASTED_SCRIPT]["X Values"] == "1-2"
    plain = parameters_to_send(ImageMetadata(infotext="a cat\nSteps: 1, Seed: 7"))
    assert PASTED_SCRIPT not in plain
