"""A1111's "Send to img2img / inpaint / extras": an image (and its parameters) into a tab.

    send_image(app, "inpaint", image, infotext_values(infotext), "txt2img-images/00001-7.png")

The parameters are what the image's infotext carries (prompt, negative prompt, seed,
sampler, steps, CFG, size, ...), as PNG Info's "Send to txt2img" pastes them: the selected
checkpoint stays (A1111's `disable_weights_auto_swap`). The tab switches to img2img on the
sub-tab asked for; the img2img screen is built first if it was never opened.
"""

from __future__ import annotations

from typing import Any

from sdtui.screens.pnginfo_fields import parameters_to_send

IMG2IMG_TARGETS = ("img2img", "inpaint")  # send-to targets that land in the img2img tab


def tab_screen(app: Any, tab_id: str) -> Any:
    """The tab's screen, if it was ever opened (screens register on mount)."""
    return next((s for s in app.tab_screens if getattr(s, "TAB_ID", "") == tab_id), None)


def infotext_values(infotext: str | None) -> dict[str, Any]:
    """The field values an infotext pastes ({} for none)."""
    from sdtui.params.image_metadata import ImageMetadata

    return parameters_to_send(ImageMetadata(infotext=infotext)) or {}


def send_image(
    app: Any, target: str, image: Any, values: dict[str, Any], shown_path: str | None = None
) -> None:
    """Switch to img2img (`target` "img2img" or "inpaint") with `image` and `values`."""
    app.run_worker(_send(app, target, image, values, shown_path), group="send")


async def _send(
    app: Any, target: str, image: Any, values: dict[str, Any], shown_path: str | None
) -> None:
    await app.switch_mode("img2img")
    screen = tab_screen(app, "img2img")
    if screen is None:
        return
    screen.receive(image, values, target, shown_path)
    app.notify(f"Image and parameters sent to {target}.")


def send_to_extras(app: Any, path: Any) -> None:
    """Switch to the Extras tab with the image file `path` as its single image (the file,
    so its metadata goes along into the output)."""
    app.run_worker(_send_extras(app, path), group="send")


async def _send_extras(app: Any, path: Any) -> None:
    await app.switch_mode("extras")
    screen = tab_screen(app, "extras")
    if screen is None:
        return
    screen.receive(path)
    app.notify("Image sent to Extras.")
