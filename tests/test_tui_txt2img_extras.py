"""txt2img beyond generating: styles, the extra-networks picker, `<lora:` completion, Save /
Zip of the results, and failures that leave the app working."""

from __future__ import annotations

import csv
import zipfile

from textual.widgets import Input

from sdtui.screens.extra_networks import ExtraNetworksScreen
from sdtui.screens.style_dialog import StyleNameDialog
from sdtui.screens.txt2img import Txt2ImgScreen
from sdtui.widgets.prompt_completion import CompletingPromptBox
from tests.tiny_models import write_tiny_checkpoint
from tests.tui_helpers import make_app, wait_ready, wait_until

SIZE = (160, 50)
STYLES = (
    "name,prompt,negative_prompt\n"
    'Cinematic,"cinematic still {prompt}, film grain",cartoon\n'
    "Sharp,sharp focus,\n"
)


def quiet_app(dirs):
    app = make_app(dirs)
    app.start_backend = False  # no torch, no models: the screen alone
    return app


def box(app, box_id: str = "prompt") -> CompletingPromptBox:
    return app.screen.query_one(f"#{box_id}", CompletingPromptBox)


def field(app, name: str) -> Input:
    return app.screen.query_one(f"#param-{name.replace('_', '-')}")


def messages(app) -> str:
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


def touch(path, content: bytes = b"not read by the listing") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


# -- styles ----------------------------------------------------------------------------------


async def test_selected_styles_go_into_the_request_and_apply_folds_them(data_dirs) -> None:
    data_dirs.styles.write_text(STYLES, encoding="utf-8")
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        box(app).text = "a cat"
        box(app, "negative-prompt").text = "ugly"
        await pilot.press("ctrl+t")  # opens the list and focuses it; Space selects
        await pilot.press("space", "down", "space")
        await pilot.pause()
        assert screen.current_params().styles == ("Cinematic", "Sharp")
        assert screen.current_params().prompt == "a cat"  # the job folds them in
        await pilot.press("alt+a")
        await pilot.pause()
        assert box(app).text == "cinematic still a cat, film grain, sharp focus"
        assert box(app, "negative-prompt").text == "ugly, cartoon"
        assert screen.current_params().styles == ()
        await pilot.press("alt+a")  # nothing selected: a message, prompts unchanged
        assert box(app).text == "cinematic still a cat, film grain, sharp focus"


async def test_save_as_style_writes_styles_csv_and_asks_before_overwriting(data_dirs) -> None:
    data_dirs.styles.write_text("name,prompt,negative_prompt\nOld,old style,\n", "utf-8")
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        box(app).text = 'a red fox, "quoted"'
        box(app, "negative-prompt").text = "blurry"
        await pilot.press("alt+y")
        assert isinstance(app.screen, StyleNameDialog)
        await pilot.press(*"Fox", "enter")
        await pilot.pause()
        assert isinstance(app.screen, Txt2ImgScreen)
        assert data_dirs.styles.read_text("utf-8") == (
            'name,prompt,negative_prompt\nOld,old style,\nFox,"a red fox, ""quoted""",blurry\n'
        )
        box(app).text = "a grey wolf"
        await pilot.press("alt+y", *"Fox", "enter")
        assert isinstance(app.screen, StyleNameDialog)  # asks first; nothing written yet
        assert 'Fox,"a red fox' in data_dirs.styles.read_text("utf-8")
        await pilot.press("enter")
        await pilot.pause()
        assert data_dirs.styles.read_text("utf-8") == (
            "name,prompt,negative_prompt\nOld,old style,\nFox,a grey wolf,blurry\n"
        )
        names = [str(o.prompt) for o in app.screen.styles_panel.selection_list.options]
        assert names == ["Old", "Fox"]


# -- extra networks --------------------------------------------------------------------------


async def test_picker_inserts_at_the_cursor_and_toggles_styles(data_dirs) -> None:
    touch(data_dirs.lora / "add_detail.safetensors")
    touch(data_dirs.lora / "sub" / "grain.pt")
    touch(data_dirs.lora / "add_detail.preview.png")  # a card picture, not a network
    touch(data_dirs.embeddings / "EasyNegative.pt")
    data_dirs.styles.write_text(STYLES, encoding="utf-8")
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        prompt = box(app)
        prompt.text = "a cat, dog"
        prompt.focus()
        prompt.text_area.cursor_location = (0, 5)  # after "a cat"
        await pilot.press("ctrl+n")
        picker = app.screen
        assert isinstance(picker, ExtraNetworksScreen)
        assert picker.sections[0].names == ["add_detail", "grain"]
        await pilot.press(*"grai", "enter")
        await pilot.pause()
        assert prompt.text == "a cat <lora:grain:1>, dog"
        assert prompt.text_area.cursor_location == (0, 20)
        # embeddings go in by name; the negative prompt when it had the focus last
        negative = box(app, "negative-prompt")
        negative.focus()
        await pilot.press("ctrl+n", "tab", "enter")
        await pilot.pause()
        assert negative.text == "EasyNegative"
        # styles are toggled, and the picker stays open
        await pilot.press("ctrl+n", "tab", "tab", "down", "enter")
        assert isinstance(app.screen, ExtraNetworksScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.current_params().styles == ("Sharp",)


async def test_lora_completion_while_typing(data_dirs) -> None:
    touch(data_dirs.lora / "add_detail.safetensors")
    touch(data_dirs.lora / "grain.safetensors")
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        prompt = box(app)
        await pilot.click("#prompt TextArea")
        await pilot.press(*"a <lora:")
        await pilot.pause()
        assert prompt.completion_open
        assert [str(o.prompt) for o in prompt.suggestions.options] == ["add_detail", "grain"]
        await pilot.press("g")
        await pilot.pause()
        assert [str(o.prompt) for o in prompt.suggestions.options] == ["grain"]
        await pilot.press("tab")
        await pilot.pause()
        assert prompt.text == "a <lora:grain:1>"
        assert not prompt.completion_open
        assert prompt.text_area.has_focus  # Tab did not move the focus
        # Esc closes the list and does nothing else; Enter accepts as Tab does
        await pilot.press(*" <lora:ad")
        await pilot.pause()
        assert prompt.completion_open
        app.screen.forever = True  # Interrupt (Esc) would turn "generate forever" off
        await pilot.press("escape")
        assert not prompt.completion_open and prompt.text_area.has_focus
        assert app.screen.forever
        await pilot.press("i")
        await pilot.pause()
        assert not prompt.completion_open  # no name contains "adi"
        await pilot.press("backspace")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert prompt.text == "a <lora:grain:1> <lora:add_detail:1>"


# -- results and failures (tiny model) --------------------------------------------------------


async def test_save_and_zip_the_batch(data_dirs) -> None:
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    app = make_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = app.screen
        box(app).text = "a red circle"
        box(app, "negative-prompt").text = "blurry, ugly"
        for name, value in (("steps", 2), ("width", 64), ("height", 64), ("seed", 7)):
            field(app, name).value = str(value)
        field(app, "batch_size").value = "2"
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None and screen.results)
        assert [r.grid for r in screen.results] == [False, False, True]
        await pilot.press("alt+right")  # from the grid to the first image
        assert screen.selected == 0
        await pilot.press("alt+s")
        await pilot.pause()
        folder = data_dirs.root / "log" / "images"
        saved = folder / "00000-7-a red circle.png"
        assert saved.read_bytes() == screen.results[0].path.read_bytes()
        with open(folder / "log.csv", encoding="utf-8", newline="") as file:
            rows = list(csv.reader(file))
        assert rows[0] == [
            "prompt", "seed", "width", "height", "sampler", "cfgs", "steps", "filename",
            "negative_prompt", "sd_model_name", "sd_model_hash",
        ]  # fmt: skip
        assert rows[1][:9] == [
            "a red circle", "7", "64", "64", "DPM++ 2M", "7", "2", saved.name, "blurry, ugly",
        ]  # fmt: skip
        assert rows[1][9] == "tiny" and len(rows[1][10]) == 10
        # Zip: the whole batch (both images and the grid), saved and zipped
        await pilot.press("alt+z")
        await pilot.pause()
        archives = list(folder.glob("*.zip"))
        assert len(archives) == 1 and archives[0].name.endswith("_[tiny]_7-8.zip")
        with zipfile.ZipFile(archives[0]) as archive:
            names = sorted(archive.namelist())
            contents = {name: archive.read(name) for name in names}
        assert names == ["00001-7-a red circle.png", "00002-8-a red circle.png", "grid-0000.png"]
        originals = [result.path.read_bytes() for result in screen.results]
        assert [contents[name] for name in names] == originals
        assert len((folder / "log.csv").read_text("utf-8").splitlines()) == 3  # one row a click
        selected = screen.results[screen.selected].path
        await pilot.press("alt+e")  # the selected image's file becomes Extras' single image
        await wait_until(pilot, lambda: getattr(app.screen, "TAB_ID", "") == "extras")
        extras_path = app.screen.query_one("#extras-path")
        await wait_until(pilot, lambda: extras_path.path == selected)


async def test_failures_are_messages_and_the_app_keeps_working(data_dirs) -> None:
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    touch(data_dirs.checkpoints / "zz-broken.safetensors", b"\x10\x00garbage, not a model")
    touch(data_dirs.lora / "add_detail.safetensors")
    app = make_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        screen = app.screen
        for name, value in (("steps", 2), ("width", 64), ("height", 64), ("seed", 3)):
            field(app, name).value = str(value)
        # a misspelt LoRA: the message lists the close name and says what to do
        box(app).text = "a cat <lora:add_detial:1>"
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None)
        text = messages(app)
        assert "no LoRA named 'add_detial'" in text and "close names: add_detail" in text
        assert "Ctrl+N lists the LoRA files" in text
        # a broken checkpoint: named, with what to do
        box(app).text = "a cat"
        field(app, "model").value = "zz-broken.safetensors"
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None)
        text = messages(app)
        assert "Generation failed: Cannot read a model file" in text
        assert "zz-broken.safetensors: truncated or corrupt safetensors file" in text
        assert "Choose another checkpoint" in text
        assert "CheckpointError" in (data_dirs.own / "last-error.txt").read_text()
        # the next generation with a good model works
        field(app, "model").value = "tiny.safetensors"
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None)
        assert [r.seed for r in screen.results] == [3]
        assert screen.results[0].path.is_file()


async def test_a_broken_default_checkpoint_is_reported_at_start(data_dirs) -> None:
    touch(data_dirs.checkpoints / "broken.safetensors", b"\x10\x00garbage, not a model")
    app = make_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Loading the checkpoint failed" in messages(app))
        assert "broken.safetensors" in messages(app)
        box(app).text = "still typing"  # the app still works
        await pilot.press("ctrl+t")
        assert app.screen.styles_panel.collapsed is False
