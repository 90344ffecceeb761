"""The img2img tab as a user drives it: opening an image, the sub-tabs, painting a mask and
inpainting on a tiny model, the size keys, and "send to" from txt2img and PNG Info.

Expected masks come from the drag's cells through the cell geometry worked out here by hand
(10x20-pixel cells, two half-block pixels a cell, the picture centred) and brute force
(`expected_stroke`); expected pixels from the input image written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from textual.widgets import Collapsible, Input, Select, Tabs

from sdtui.params.image_metadata import read_image_metadata
from sdtui.screens.img2img import Img2ImgScreen
from sdtui.screens.pnginfo import PngInfoScreen
from sdtui.screens.txt2img import Txt2ImgScreen
from sdtui.services.generation import SavedImage
from sdtui.widgets import graphics
from sdtui.widgets.file_browser import PathInput
from sdtui.widgets.graphics import Graphics
from sdtui.widgets.img2img_input import ImageInput
from sdtui.widgets.prompt_box import PromptBox
from tests.test_paint_layers import expected_stroke, white
from tests.tiny_models import write_tiny_checkpoint
from tests.tui_helpers import make_app, wait_ready, wait_until

SIZE = (160, 50)
INFOTEXT = (
    "a green square on a red background\n"
    "Negative prompt: blurry\n"
    "Steps: 13, Sampler: Euler a, Schedule type: Karras, CFG scale: 5.5, Seed: 4242, "
    "Size: 64x48, Model hash: 0123456789, Model: elsewhere, Version: v1.10.1"
)


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    """Half-blocks on 10x20 cells, whatever another test prepared."""
    monkeypatch.setattr(graphics, "_current", Graphics())


def gradient(size: tuple[int, int]) -> Image.Image:
    """A picture where every pixel differs from its neighbours."""
    width, height = size
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    array = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1)
    return Image.fromarray(array.astype(np.uint8))


def write_png(path: Path, size: tuple[int, int], infotext: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    if infotext is not None:
        info.add_text("parameters", infotext)
    gradient(size).save(path, pnginfo=info)
    return path


def quiet_app(dirs):
    app = make_app(dirs)
    app.start_backend = False  # no torch, no models: the screens alone
    return app


def field(app, name: str):
    return app.screen.query_one(f"#param-{name.replace('_', '-')}")


def messages(app) -> str:
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


async def open_img2img(pilot) -> Img2ImgScreen:
    await pilot.press("alt+2")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, Img2ImgScreen))
    return pilot.app.screen


async def open_path(pilot, screen: Img2ImgScreen, text: str) -> None:
    await pilot.press("ctrl+o")
    path_input = screen.query_one("#init-path", PathInput)
    assert pilot.app.focused is path_input
    path_input.value = text
    await pilot.press("enter")
    await pilot.pause()


def input_message(screen: Img2ImgScreen) -> tuple[str, bool]:
    message = screen.query_one("#input-message")
    return str(message.render()), message.has_class("-error")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


# -- opening images and the sub-tabs ---------------------------------------------------------


async def test_alt_2_opens_img2img_and_a_png_opens_by_path(data_dirs) -> None:
    picture = write_png(data_dirs.outputs / "pics" / "start.png", (40, 24))
    (data_dirs.outputs / "notes.png").write_text("a text file with an image's name")
    (data_dirs.outputs / "folder.png").mkdir()
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_img2img(pilot)
        assert [str(tab.render()) for tab in screen.query(".tab")][:2] == [
            "1 txt2img",
            "2 img2img",
        ]
        assert screen.current_params().denoising_strength == 0.75  # img2img's default
        await open_path(pilot, screen, "missing.png")
        text, error = input_message(screen)
        assert error and "no such file" in text and str(data_dirs.outputs / "missing.png") in text
        await open_path(pilot, screen, "notes.png")
        text, error = input_message(screen)
        assert error and "not an image sdtui can read" in text
        await open_path(pilot, screen, "folder.png")
        text, error = input_message(screen)
        assert error and "a folder" in text
        assert screen.image_input.image is None
        await open_path(pilot, screen, "pics/start.png")  # relative to the outputs folder
        text, error = input_message(screen)
        assert not error and "40×24" in text
        assert (pixels(screen.image_input.image) == pixels(Image.open(picture))).all()
        assert screen.query_one("#init-view").image is not None
        await pilot.press("alt+1")
        assert isinstance(app.screen, Txt2ImgScreen)
        await pilot.press("alt+2")
        assert app.screen is screen and screen.image_input.image is not None


async def test_sub_tabs_switch_by_keys_and_show_their_controls(data_dirs) -> None:
    write_png(data_dirs.outputs / "start.png", (32, 32))
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_img2img(pilot)
        await open_path(pilot, screen, "start.png")
        panel = screen.query_one(ImageInput)
        inpaint_group = next(c for c in screen.query(Collapsible) if c.title == "Inpaint")

        def shown() -> tuple:
            return (
                panel.mode,
                panel.canvas.display,
                screen.query_one("#mask-row").display,
                screen.query_one("#transparency-row").display,
                inpaint_group.display,
            )

        assert shown() == ("img2img", False, False, False, False)
        expected = [
            ("sketch", True, False, False, False),
            ("inpaint", True, False, False, True),
            ("inpaint_sketch", True, False, True, True),
            ("inpaint_upload", False, True, False, True),
            ("batch", False, False, False, True),  # a mask folder makes it inpainting
            ("img2img", False, False, False, False),
        ]
        for state in expected:
            await pilot.press("alt+m")
            await pilot.pause()
            assert shown() == state
            assert screen.query_one(Tabs).active == f"mode-{state[0]}"
        # the sub-tab row itself: focus it, then the arrows
        screen.query_one(Tabs).focus()
        await pilot.press("right", "right")
        await pilot.pause()
        assert panel.mode == "inpaint" and panel.canvas.mode == "inpaint"
        await pilot.press("alt+p")  # paint: the canvas takes the keys
        assert app.focused is panel.canvas.surface
        for _ in range(4):  # faster than the tab row's messages arrive
            panel.cycle_mode()
        await pilot.pause()
        assert panel.mode == "img2img" and screen.query_one(Tabs).active == "mode-img2img"


async def test_auto_size_and_resize_by(data_dirs) -> None:
    write_png(data_dirs.outputs / "wide.png", (100, 60))
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_img2img(pilot)
        await pilot.press("alt+d")  # no image yet: a message
        assert "Open an image first" in messages(app)
        await open_path(pilot, screen, "wide.png")
        await pilot.press("alt+d")
        params = screen.current_params()
        assert (params.width, params.height) == (96, 56)  # 100x60 down to multiples of 8
        screen.query_one("#resize-by", Input).value = "1.5"
        await pilot.pause()
        params = screen.current_params()
        assert (params.width, params.height) == (144, 88)  # 150x90 down to multiples of 8
        assert "→ 144×88" in str(screen.query_one("#size-hint").render())
        screen.query_one("#resize-by", Input).value = ""
        assert (screen.current_params().width, screen.current_params().height) == (96, 56)


# -- painting and generating ----------------------------------------------------------------


def cell_to_image(size: int, surface: tuple[int, int], cell: tuple[int, int]) -> tuple:
    """The image point under a cell's centre, for a square `size` picture on a surface of
    `surface` cells of 10x20 pixels: scaled to fit, centred (worked out by hand)."""
    columns_available, rows_available = surface
    scale = min(columns_available * 10 / size, rows_available * 20 / size)
    columns = min(columns_available, round(size * scale / 10))
    rows = min(rows_available, round(size * scale / 20))
    left, top = (columns_available - columns) // 2, (rows_available - rows) // 2
    return (
        (cell[0] - left + 0.5) * size / columns - 0.5,
        (cell[1] - top + 0.5) * size / rows - 0.5,
    )


async def test_paint_a_mask_with_the_mouse_and_inpaint(data_dirs, monkeypatch) -> None:
    write_tiny_checkpoint(data_dirs.checkpoints / "tiny.safetensors", "sd1")
    source = write_png(data_dirs.outputs / "start.png", (64, 64))
    app = make_app(data_dirs)
    received = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        backend = app.backend
        submit = backend.submit_img2img

        def recording_submit(params, init_images, mask=None):
            received.append((params, list(init_images), mask))
            return submit(params, init_images, mask)

        monkeypatch.setattr(backend, "submit_img2img", recording_submit)
        screen = await open_img2img(pilot)
        await pilot.press("f5")  # no image yet
        await pilot.pause()
        assert "Open an image first" in messages(app) and screen.job_id is None
        await open_path(pilot, screen, "start.png")
        await pilot.press("alt+m", "alt+m")  # img2img -> sketch -> inpaint
        await pilot.pause()
        for name, value in (("steps", 2), ("width", 64), ("height", 64), ("seed", 7)):
            field(app, name).value = str(value)
        field(app, "mask_blur").value = "0"
        fill = field(app, "inpainting_fill")
        assert isinstance(fill, Select)
        fill.value = "fill"
        screen.prompt_box().text = "a blue circle"
        await pilot.press("f5")  # nothing painted yet: refused, nothing queued
        await pilot.pause()
        assert "The mask is empty" in messages(app) and not received
        canvas = screen.image_input.canvas
        canvas.document.radius = 3
        surface = canvas.surface
        width, height = surface.size
        left, right, top, bottom = width // 4, 3 * width // 4, height // 3, 2 * height // 3
        path = [(left, top), (right, top), (right, bottom)]
        await pilot.mouse_down(surface, path[0])
        for cell in path[1:]:
            await pilot.hover(surface, cell)
        await pilot.mouse_up(surface, path[-1])
        await pilot.pause()
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.job_id is None and screen.results)
        # the job got the input image and the mask the drag painted
        (params, init_images, mask), = received  # fmt: skip
        assert (pixels(init_images[0]) == pixels(Image.open(source))).all()
        points = [cell_to_image(64, (width, height), cell) for cell in path]
        inside, edge = expected_stroke((64, 64), points, 3)
        assert inside - edge <= white(mask) <= inside
        assert len(inside) > 200, len(inside)  # a line, not dots
        assert (params.mask_blur, params.inpainting_fill) == (0, "fill")
        # unmasked pixels are the input's; the masked ones were repainted
        result = screen.results[0]
        assert result.path.parent.parent.name == "img2img-images"
        output, original = pixels(Image.open(result.path)), pixels(Image.open(source))
        masked = np.asarray(mask) > 0
        assert (output[~masked] == original[~masked]).all()
        assert (output[masked] != original[masked]).any()
        infotext = read_image_metadata(result.path).infotext
        assert infotext.startswith("a blue circle\nSteps: 2, ")
        assert "Denoising strength: 0.75" in infotext and "Masked content: fill" in infotext


# -- send to --------------------------------------------------------------------------------


async def test_send_to_img2img_and_inpaint_from_txt2img_results(data_dirs) -> None:
    # the image is 72x56, its infotext says 64x48 (a hires fix run, say)
    path = write_png(data_dirs.outputs / "txt2img-images" / "00001-4242.png", (72, 56), INFOTEXT)
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        txt2img = app.screen
        assert isinstance(txt2img, Txt2ImgScreen)
        await pilot.press("alt+i")  # nothing to send yet
        assert "No image yet" in messages(app)
        txt2img.result_panel.add(SavedImage(path, INFOTEXT, 4242))
        await pilot.pause()
        await pilot.press("alt+i")
        await wait_until(pilot, lambda: isinstance(app.screen, Img2ImgScreen))
        screen = app.screen
        await wait_until(pilot, lambda: screen.image_input.image is not None)
        assert screen.image_input.mode == "img2img"
        assert (pixels(screen.image_input.image) == pixels(Image.open(path))).all()
        params = screen.current_params()
        assert params.prompt == "a green square on a red background"
        assert params.negative_prompt == "blurry"
        assert (params.seed, params.steps, params.cfg_scale) == (4242, 13, 5.5)
        assert (params.sampler, params.schedule) == ("Euler a", "Karras")
        assert (params.width, params.height) == (72, 56)  # the image's size, as A1111's send
        assert params.model is None  # the selected checkpoint stays
        assert screen.query_one("#init-path", PathInput).value == str(path)
        await pilot.press("alt+1")
        screen.prompt_box().text = "changed"
        await pilot.press("alt+n")
        await wait_until(pilot, lambda: screen.image_input.mode == "inpaint")
        assert app.screen is screen
        assert screen.prompt_box().text == "a green square on a red background"
        params = screen.current_params()
        assert (params.width, params.height) == (64, 48)  # inpaint keeps the infotext's size
        document = screen.image_input.canvas.document
        assert document is not None and document.size == (72, 56)


async def test_send_to_img2img_from_png_info(data_dirs) -> None:
    with_parameters = write_png(data_dirs.outputs / "made.png", (48, 32), INFOTEXT)
    without = write_png(data_dirs.outputs / "plain.png", (40, 40))
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("alt+4")
        await wait_until(pilot, lambda: isinstance(app.screen, PngInfoScreen))
        pnginfo = app.screen
        await pnginfo.open_image(with_parameters)
        await pilot.press("alt+n")
        await wait_until(pilot, lambda: isinstance(app.screen, Img2ImgScreen))
        screen = app.screen
        await wait_until(pilot, lambda: screen.image_input.image is not None)
        assert screen.image_input.mode == "inpaint"
        assert screen.prompt_box().text == "a green square on a red background"
        assert screen.prompt_box("negative-prompt").text == "blurry"
        assert (pixels(screen.image_input.image) == pixels(Image.open(with_parameters))).all()
        # an image without parameters goes too; the prompt stays
        await pilot.press("alt+4")
        await pnginfo.open_image(without)
        await pilot.press("alt+i")
        await wait_until(pilot, lambda: screen.image_input.mode == "img2img")
        await wait_until(pilot, lambda: screen.image_input.image.size == (40, 40))
        assert screen.query_one("#prompt", PromptBox).text.startswith("a green square")
        assert (screen.current_params().width, screen.current_params().height) == (40, 40)


async def test_each_sub_tab_gives_the_job_its_image_and_mask(data_dirs) -> None:
    source = write_png(data_dirs.outputs / "start.png", (32, 32))
    mask_file = data_dirs.outputs / "mask.png"
    upload = Image.new("L", (16, 16), 0)  # any size: the job stretches it
    upload.paste(255, (0, 0, 8, 16))
    upload.save(mask_file)
    app = quiet_app(data_dirs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_img2img(pilot)
        panel = screen.image_input
        with pytest.raises(ValueError, match="Open an image first"):
            panel.inputs(4)
        await open_path(pilot, screen, "start.png")
        original = pixels(Image.open(source))
        init, mask = panel.inputs(4)
        assert mask is None and (pixels(init) == original).all()
        red = (255, 0, 0)
        panel.mode = "sketch"
        panel.canvas.colour = red
        panel.canvas.document.fill_rect((4, 4), (11, 11))  # an 8x8 red box
        init, mask = panel.inputs(4)
        assert mask is None
        expected = original.copy()
        expected[4:12, 4:12] = red
        assert (pixels(init) == expected).all()
        panel.mode = "inpaint"  # the sketch stays in its layer; the mask is a layer of its own
        init, mask = panel.inputs(4)
        assert (pixels(init) == original).all() and white(mask) == set()
        panel.canvas.document.fill_rect((20, 20), (23, 23))
        assert white(panel.inputs(4)[1]) == {(x, y) for x in range(20, 24) for y in range(20, 24)}
        panel.mode = "inpaint_sketch"  # the colour strokes: new content and the mask
        screen.query_one("#mask-transparency", Input).value = "50"
        await pilot.pause()
        init, mask = panel.inputs(0)
        box = {(x, y) for x in range(4, 12) for y in range(4, 12)}
        values = np.asarray(mask)
        assert {(x, y) for y, x in zip(*np.nonzero(values), strict=True)} == box
        assert values.max() in (127, 128)  # half transparent
        assert (pixels(init)[~(values > 0)] == original[~(values > 0)]).all()
        panel.mode = "inpaint_upload"
        with pytest.raises(ValueError, match="needs a mask"):
            panel.inputs(4)
        screen.query_one("#mask-path", PathInput).value = "mask.png"
        screen.query_one("#mask-path", PathInput).focus()
        await pilot.press("enter")
        await pilot.pause()
        init, mask = panel.inputs(4)
        assert (pixels(init) == original).all() and (pixels(mask) == pixels(upload)).all()
