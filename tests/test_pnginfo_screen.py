"""The PNG Info tab as a user drives it: open images by path or tree, read what they carry,
send the parameters to txt2img. Images are made here with PIL; infotexts are written by hand."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from textual.widgets import Button, DataTable, Input, Static, TextArea, Tree

from sdtui.app import SdtuiApp
from sdtui.keymap import APP_KEYS, PNGINFO_KEYS, split_keys
from sdtui.params.codec import RunFacts, infotext_from_params
from sdtui.params.image_metadata import ImageMetadata, save_image
from sdtui.params.schema import GenerationParams
from sdtui.screens.pnginfo import PngInfoScreen
from sdtui.screens.pnginfo_fields import parameter_rows, parameters_to_send
from sdtui.screens.txt2img import Txt2ImgScreen
from sdtui.services.backend import Backend
from sdtui.widgets.file_browser import PathInput, complete_path
from sdtui.widgets.image_view import ImageView
from tests.tui_helpers import wait_until

SIZE = (160, 50)
DAY = "txt2img-images/2024-05-06"
A1111_INFOTEXT = (
    "a red fox in a (snowy forest:1.2), detailed\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 17, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 987654321, Size: 48x32, "
    'Model hash: 0123456789, Model: someModel, Clip skip: 2, Frobnicate: "a, b", '
    "Version: v1.10.1"
)
FORGE_INFOTEXT = (
    "a castle on a hill\n"
    "Steps: 25, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, "
    "Seed: 42, Size: 56x40, Model hash: 0123456789, Model: flux1-dev-bnb-nf4-v2, "
    "Version: f2.0.1v1.10.1-previous-313-g8a042934, Module 1: ae, Module 2: clip_l"
)
COMFY_PROMPT = '{"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20}}}'
COMFY_WORKFLOW = '{"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}]}'


def _png(path: Path, text: dict[str, str], size: tuple[int, int] = (48, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    Image.new("RGB", size, (200, 40, 30)).save(path, pnginfo=info)
    return path


@pytest.fixture
def images(data_dirs) -> dict[str, Path]:
    day = data_dirs.outputs / DAY
    day.mkdir(parents=True)
    jpeg = day / "00003-photo.jpg"
    save_image(Image.new("RGB", (40, 24), (0, 90, 200)), jpeg, infotext=A1111_INFOTEXT)
    broken = day / "00004-broken.png"
    broken.write_text("this is not a PNG")
    return {
        "a1111": _png(day / "00001-987654321.png", {"parameters": A1111_INFOTEXT}),
        "comfy": _png(
            day / "00002-comfy.png", {"prompt": COMFY_PROMPT, "workflow": COMFY_WORKFLOW}
        ),
        "jpeg": jpeg,
        "broken": broken,
        "forge": _png(data_dirs.outputs / "forge.png", {"parameters": FORGE_INFOTEXT}),
        "prompt_only": _png(data_dirs.outputs / "prompt-only.png", {"parameters": "just a cat"}),
        "notes": _write(data_dirs.outputs / "notes.txt", "not an image"),
    }


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class PngInfoFirst(SdtuiApp):
    """Starts on the PNG Info tab: txt2img is built only when something is sent to it."""

    DEFAULT_MODE = "pnginfo"


def pnginfo_app(data_dirs) -> SdtuiApp:
    return PngInfoFirst(Backend(data_dirs, device="cpu"), start_backend=False)


async def open_tab(pilot) -> PngInfoScreen:
    await pilot.press("alt+4")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PngInfoScreen))
    return pilot.app.screen


async def wait_txt2img(pilot, prompt: str) -> Txt2ImgScreen:
    """Until the txt2img tab is shown with `prompt` pasted (it may be built first)."""
    app = pilot.app
    await wait_until(
        pilot,
        lambda: (
            isinstance(app.screen, Txt2ImgScreen) and app.screen.current_params().prompt == prompt
        ),
    )
    return app.screen


async def open_by_path(pilot, screen: PngInfoScreen, text: str) -> None:
    path_input = screen.query_one("#path", PathInput)
    path_input.focus()
    path_input.value = text
    await pilot.press("enter")
    await pilot.pause()


def table(screen: PngInfoScreen) -> dict[str, tuple[str, str]]:
    fields = screen.query_one("#fields", DataTable)
    rows = [fields.get_row_at(index) for index in range(fields.row_count)]
    return {str(key): (str(value), str(used_as)) for key, value, used_as in rows}


def message(screen: PngInfoScreen) -> str:
    widget = screen.query_one("#message", Static)
    return str(widget.render()) if widget.display else ""


async def test_a1111_png_typed_path(data_dirs, images) -> None:
    app = pnginfo_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tab(pilot)
        tabs = [str(label.render()) for label in screen.query(".tab")]
        assert "4 PNG Info" in tabs
        await open_by_path(pilot, screen, f"{DAY}/00001-987654321.png")
        assert screen.path == images["a1111"]
        assert screen.query_one("#infotext", TextArea).text == A1111_INFOTEXT
        assert screen.query_one("#image", ImageView).image.size == (48, 32)
        assert message(screen) == ""
        rows = table(screen)
        assert rows["Prompt"][0] == "a red fox in a (snowy forest:1.2), detailed"
        assert rows["Negative prompt"][0] == "blurry, lowres"
        assert rows["Steps"] == ("17", "steps = 17")
        assert rows["Sampler"] == ("DPM++ 2M Karras", "sampler = DPM++ 2M, schedule = Karras")
        assert rows["Size"] == ("48x32", "width = 48, height = 32")
        assert rows["Seed"] == ("987654321", "seed = 987654321")
        assert rows["Model hash"] == ("0123456789", "info")
        assert rows["Frobnicate"] == ("a, b", "unknown (kept)")  # quoted value, unquoted
        assert list(rows)[-1] == "Version"
        assert not screen.query_one("#json-section").display
        assert not screen.query_one("#other-section").display
        assert not screen.query_one("#send-txt2img", Button).disabled

        await pilot.press("alt+c")
        assert app.clipboard == A1111_INFOTEXT


OURS = GenerationParams(
    prompt="a tiny robot, [red:blue:0.5]",
    negative_prompt="noise",
    sampler="Euler a",
    steps=9,
    cfg_scale=4.5,
    seed=31337,
    width=40,
    height=56,
    clip_skip=2,
)


def save_ours(path: Path) -> None:
    """An image as sdtui writes it: our infotext and the JSON chunk."""
    infotext = infotext_from_params(OURS, RunFacts(seed=31337, model_name="tiny"))
    json_params = {k: v for k, v in dataclasses.asdict(OURS).items() if v is not None}
    save_image(Image.new("RGB", (40, 56)), path, infotext=infotext, params=json_params)


async def send_to_txt2img(pilot, path: str, prompt: str) -> GenerationParams:
    screen = await open_tab(pilot)
    await open_by_path(pilot, screen, path)
    await pilot.press("alt+t")
    return (await wait_txt2img(pilot, prompt)).current_params()


async def test_send_to_txt2img(data_dirs, images) -> None:
    save_ours(data_dirs.outputs / "ours.png")
    app = pnginfo_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        # txt2img was never opened: it is built, then filled; an absolute path works too
        fox = "a red fox in a (snowy forest:1.2), detailed"
        params = await send_to_txt2img(pilot, str(images["a1111"]), fox)
        assert params.negative_prompt == "blurry, lowres"
        assert (params.steps, params.sampler, params.schedule) == (17, "DPM++ 2M", "Karras")
        assert (params.seed, params.width, params.height) == (987654321, 48, 32)
        assert (params.cfg_scale, params.clip_skip) == (6.5, 2)
        assert params.model is None  # A1111 keeps the selected checkpoint

        # only a prompt (no parameter line): the prompt is pasted, the rest stays
        params = await send_to_txt2img(pilot, "prompt-only.png", "just a cat")
        assert (params.negative_prompt, params.steps, params.seed) == ("", 17, 987654321)

        # sdtui's own infotext reads back as what was generated
        params = await send_to_txt2img(pilot, "ours.png", OURS.prompt)
        for name in ("negative_prompt", "sampler", "steps", "cfg_scale", "seed", "clip_skip"):
            assert getattr(params, name) == getattr(OURS, name), name
        assert (params.width, params.height) == (40, 56)


async def test_forge_infotext_and_our_json_chunk(data_dirs, images) -> None:
    save_ours(data_dirs.outputs / "ours.png")
    app = pnginfo_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tab(pilot)
        await open_by_path(pilot, screen, "forge.png")
        rows = table(screen)
        assert rows["Distilled CFG Scale"] == ("3.5", "unknown (kept)")
        assert rows["Module 2"] == ("clip_l", "unknown (kept)")
        assert rows["Schedule type"] == ("Simple", "schedule = Simple")
        assert rows["Model"][1].startswith("model = flux1-dev-bnb-nf4-v2 (not sent")
        assert not screen.query_one("#json-section").display

        await open_by_path(pilot, screen, "ours.png")
        assert screen.query_one("#json-section").display
        shown = json.loads(screen.query_one("#json", TextArea).text)
        assert (shown["steps"], shown["sampler"], shown["seed"]) == (9, "Euler a", 31337)
        await open_by_path(pilot, screen, "prompt-only.png")
        assert table(screen) == {"Prompt": ("just a cat", "prompt")}


async def test_comfyui_chunks_are_listed_raw(data_dirs, images) -> None:
    app = pnginfo_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tab(pilot)
        await open_by_path(pilot, screen, f"{DAY}/00002-comfy.png")
        assert "no generation parameters" in message(screen)
        assert not screen.query_one("#infotext-section").display
        assert screen.query_one("#other-section").display
        raw = [area.text for area in screen.query("#other TextArea").results(TextArea)]
        assert raw == [COMFY_PROMPT, COMFY_WORKFLOW]
        titles = [str(c.title) for c in screen.query("#other Collapsible")]
        assert titles[0].startswith("prompt") and titles[1].startswith("workflow")
        assert screen.query_one("#send-txt2img", Button).disabled
        await pilot.press("alt+t")  # nothing to send: a message, the tab stays
        await pilot.pause()
        assert app.screen is screen


async def test_jpeg_exif_and_files_that_are_not_images(data_dirs, images) -> None:
    app = pnginfo_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tab(pilot)
        await open_by_path(pilot, screen, f"{DAY}/00003-photo.jpg")
        assert screen.query_one("#infotext", TextArea).text == A1111_INFOTEXT
        assert table(screen)["Steps"] == ("17", "steps = 17")
        for text, expected in (
            (f"{DAY}/00004-broken.png", "Not an image"),
            ("notes.txt", "Not an image"),
            ("missing.png", "no such file"),
            ("txt2img-images", "is a folder"),
        ):
            await open_by_path(pilot, screen, text)
            assert expected in message(screen), text
            assert screen.query_one("#image", ImageView).image is None
            assert not screen.query_one("#infotext-section").display
            assert screen.query_one("#send-txt2img", Button).disabled


async def test_open_from_the_tree(data_dirs, images) -> None:
    app = pnginfo_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tab(pilot)
        tree = screen.query_one("#tree", Tree)
        tree.focus()
        node = tree.root
        for part in (*DAY.split("/"), "00001-987654321.png"):
            await wait_until(
                pilot, lambda n=node, p=part: any(c.label.plain == p for c in n.children)
            )
            names = [child.label.plain for child in node.children]
            assert "notes.txt" not in names and not any(n.startswith(".") for n in names)
            node = next(child for child in node.children if child.label.plain == part)
            tree.move_cursor(node)
            await pilot.press("enter")
        await wait_until(pilot, lambda: screen.path == images["a1111"])
        assert screen.query_one("#path", PathInput).value == f"{DAY}/00001-987654321.png"
        assert table(screen)["Seed"] == ("987654321", "seed = 987654321")


async def test_path_completion_and_send_to_extras(data_dirs, images) -> None:
    app = pnginfo_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tab(pilot)
        path_input = screen.query_one("#path", PathInput)
        assert app.focused is path_input
        await pilot.press(*"txt")
        await wait_until(pilot, lambda: path_input.suggestion == "txt2img-images/")
        await pilot.press("tab")
        assert path_input.value == "txt2img-images/"
        await wait_until(pilot, lambda: path_input.suggestion == f"{DAY}/")
        await pilot.press("tab")
        await pilot.press(*"00001")
        await wait_until(pilot, lambda: path_input.suggestion.endswith("00001-987654321.png"))
        await pilot.press("right", "enter")
        await pilot.pause()
        assert screen.path == images["a1111"]
        assert not screen.query_one("#send-extras", Button).disabled
        assert not screen.query_one("#send-img2img", Button).disabled
        await pilot.press("alt+e")  # the file goes to Extras as its single image
        await wait_until(pilot, lambda: getattr(app.screen, "TAB_ID", "") == "extras")
        extras_path = app.screen.query_one("#extras-path", PathInput)
        await wait_until(pilot, lambda: extras_path.value == f"{DAY}/00001-987654321.png")


def test_complete_path(tmp_path) -> None:
    (tmp_path / "b-folder").mkdir()
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "a.txt").write_bytes(b"")
    (tmp_path / ".hidden.png").write_bytes(b"")
    assert complete_path("a", tmp_path) == "a.png"
    assert complete_path("a.png", tmp_path) is None  # complete already
    assert complete_path("b", tmp_path) == "b-folder/"
    assert complete_path("", tmp_path) is None
    assert complete_path(".h", tmp_path) == ".hidden.png"
    assert complete_path(f"{tmp_path}/b", Path("/nonexistent")) == f"{tmp_path}/b-folder/"
    assert complete_path("zzz/q", tmp_path) is None


def test_pnginfo_keys_work_while_typing() -> None:
    """Screen actions must not be keys the path input or the tree use themselves."""
    from textual.widgets import DirectoryTree

    taken = {
        key
        for widget in (Input, TextArea, DirectoryTree, PathInput)
        for binding in widget.BINDINGS
        for key in split_keys(binding.key if hasattr(binding, "key") else binding[0])
    }
    for spec in PNGINFO_KEYS:
        assert not set(split_keys(spec.keys)) & taken, spec.id
    app_keys = {key for spec in APP_KEYS for key in split_keys(spec.keys)}
    assert not {key for spec in PNGINFO_KEYS for key in split_keys(spec.keys)} & app_keys


def test_parameters_to_send() -> None:
    assert parameters_to_send(None) is None
    assert parameters_to_send(ImageMetadata()) is None
    assert parameters_to_send(ImageMetadata(items={"prompt": COMFY_PROMPT})) is None
    # without an infotext, sdtui's JSON chunk is used; keys that are no field are dropped
    only_json = ImageMetadata(params={"steps": 12, "styles": ["a"], "model": "x", "bogus": 1})
    assert parameters_to_send(only_json) == {"steps": 12, "styles": ("a",)}
    sent = parameters_to_send(ImageMetadata(infotext=A1111_INFOTEXT, params={"steps": 99}))
    assert sent is not None and sent["steps"] == 17 and "model" not in sent


def test_parameter_rows_name_the_fields_they_set() -> None:
    rows = parameter_rows(
        "x\nSteps: 4, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, "
        "Denoising strength: 0.5, Hires upscale: 2, Hires upscaler: Latent"
    )
    used_as = {key: read_as for key, _value, read_as in rows}
    assert used_as["Hires upscale"] == "enable_hires = True, hires_scale = 2.0"
    assert used_as["Denoising strength"] == "denoising_strength = 0.5"
    assert used_as["Sampler"] == "sampler = Euler"
